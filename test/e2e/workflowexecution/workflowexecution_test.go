package workflowexecution_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
	"github.com/testbed-dev/testbed/test/platform/controller"
)

var _ = Describe("workflow execution", func() {
	It("runs the workflow and records the result", func(ctx SpecContext) {
		rr := e2eenv.Unique("rr")
		name := "we-" + rr
		env.Reconcile(ctx, 30*time.Second, controller.WorkflowExecutions, "WorkflowExecution", name, map[string]any{
			"remediationRequest": rr, "workflow": "restart-pod"})
		Expect(env.Status(ctx, controller.WorkflowExecutions, name, "result")).To(Equal("Succeeded"))
		Expect(env.AuditTypes(ctx, rr)).To(ConsistOf("workflowexecution.completed"))
	})
})
