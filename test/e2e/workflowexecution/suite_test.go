// Package workflowexecution_test is workflowexecution's E2E suite, run by `go run magefile.go e2e:workflowexecution`.
package workflowexecution_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
)

func TestWorkflowexecution(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "workflowexecution E2E")
}

var env *e2eenv.Env

var _ = BeforeSuite(func() {
	e, skip, err := e2eenv.Load("workflowexecution")
	if skip != "" {
		Skip(skip)
	}
	Expect(err).NotTo(HaveOccurred())
	env = e
})
