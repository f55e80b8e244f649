// Package holmesgptapi_test is holmesgpt-api's E2E suite, run by `go run magefile.go e2e:holmesgpt-api`.
package holmesgptapi_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
)

func TestHolmesgptApi(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "holmesgpt-api E2E")
}

var env *e2eenv.Env

var _ = BeforeSuite(func() {
	e, skip, err := e2eenv.Load("holmesgpt-api")
	if skip != "" {
		Skip(skip)
	}
	Expect(err).NotTo(HaveOccurred())
	env = e
})
