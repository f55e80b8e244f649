package signalprocessing_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
	"github.com/testbed-dev/testbed/test/platform/controller"
)

var _ = Describe("signal processing", func() {
	It("classifies a signal and records it", func(ctx SpecContext) {
		rr := e2eenv.Unique("rr")
		name := "sp-" + rr
		env.Reconcile(ctx, 30*time.Second, controller.SignalProcessings, "SignalProcessing", name, map[string]any{
			"remediationRequest": rr, "alertName": "HighCPU", "severity": "critical", "namespace": "prod"})
		Expect(env.Status(ctx, controller.SignalProcessings, name, "priority")).To(Equal("P1"))
		Expect(env.Status(ctx, controller.SignalProcessings, name, "environment")).To(Equal("production"))
		Expect(env.AuditTypes(ctx, rr)).To(ConsistOf("signalprocessing.completed"))
	})
})
