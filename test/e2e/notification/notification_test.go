package notification_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
	"github.com/testbed-dev/testbed/test/platform/controller"
	"github.com/testbed-dev/testbed/test/platform/pipeline"
)

var _ = Describe("notification", func() {
	It("delivers a NotificationRequest exactly once", func(ctx SpecContext) {
		rr := e2eenv.Unique("rr")
		name := "nr-" + rr
		env.Reconcile(ctx, 30*time.Second, controller.NotificationRequests, "NotificationRequest", name, map[string]any{
			"remediationRequest": rr, "channel": "e2e-sink", "subject": "HighCPU remediated", "body": "restart-pod: Succeeded"})
		mine := func(ctx context.Context) ([]pipeline.Delivery, error) {
			all, err := env.Deliveries(ctx)
			var out []pipeline.Delivery
			for _, d := range all {
				if d.Name == name {
					out = append(out, d)
				}
			}
			return out, err
		}
		Expect(mine(ctx)).To(HaveLen(1))
		By("staying delivered once while its status is re-read and resynced")
		Consistently(mine).WithContext(ctx).WithTimeout(3 * time.Second).Should(HaveLen(1))
		Expect(env.AuditTypes(ctx, rr)).To(ConsistOf("notification.completed"))
	})
})
