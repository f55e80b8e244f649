package remediationorchestrator_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
	"github.com/testbed-dev/testbed/test/platform/controller"
	"github.com/testbed-dev/testbed/test/platform/pipeline"
)

var _ = Describe("remediation orchestration", func() {
	It("runs a RemediationRequest through to a delivered notification", func(ctx SpecContext) {
		rr := e2eenv.Unique("rr")
		env.Reconcile(ctx, 60*time.Second, controller.RemediationRequests, "RemediationRequest", rr, map[string]any{
			"fingerprint": rr, "alertName": "HighCPU", "severity": "critical", "namespace": "prod"})

		for _, child := range []struct {
			gvr  schema.GroupVersionResource
			name string
		}{{controller.SignalProcessings, "sp-" + rr}, {controller.AIAnalyses, "ai-" + rr}, {controller.WorkflowExecutions, "we-" + rr}, {controller.NotificationRequests, "nr-" + rr}} {
			Expect(env.Status(ctx, child.gvr, child.name, "phase")).To(Equal(pipeline.Completed), child.name)
		}
		Expect(env.Status(ctx, controller.WorkflowExecutions, "we-"+rr, "workflow")).To(Equal("restart-pod"))

		deliveries, err := env.Deliveries(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(deliveries).To(ContainElement(And(HaveField("Name", "nr-"+rr), HaveField("Body", "workflow restart-pod: Succeeded"))))
		Expect(env.AuditTypes(ctx, rr)).To(ContainElements("remediation.Processing", "signalprocessing.completed",
			"aianalysis.completed", "workflowexecution.completed", "notification.completed", "remediation.completed"))
	})
})
