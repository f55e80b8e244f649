package aianalysis_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
	"github.com/testbed-dev/testbed/test/platform/controller"
)

var _ = Describe("AI analysis", func() {
	It("asks holmesgpt-api and records its analysis", func(ctx SpecContext) {
		rr := e2eenv.Unique("rr")
		name := "ai-" + rr
		env.Reconcile(ctx, 30*time.Second, controller.AIAnalyses, "AIAnalysis", name, map[string]any{
			"remediationRequest": rr, "alertName": "DiskFull"})
		// Written out by hand: what holmesgpt-api's stand-in is specified to
		// conclude for DiskFull, not computed with the code the service runs.
		Expect(env.Status(ctx, controller.AIAnalyses, name, "recommendedWorkflow")).To(Equal("clean-logs"))
		Expect(env.Status(ctx, controller.AIAnalyses, name, "rootCause")).To(Equal("log volume filled by debug logging"))
		Expect(env.AuditTypes(ctx, rr)).To(ConsistOf("aianalysis.completed"))
	})
})
