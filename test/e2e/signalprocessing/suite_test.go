// Package signalprocessing_test is signalprocessing's E2E suite, run by `go run magefile.go e2e:signalprocessing`.
package signalprocessing_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
)

func TestSignalprocessing(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "signalprocessing E2E")
}

var env *e2eenv.Env

var _ = BeforeSuite(func() {
	e, skip, err := e2eenv.Load("signalprocessing")
	if skip != "" {
		Skip(skip)
	}
	Expect(err).NotTo(HaveOccurred())
	env = e
})
