// Package notification_test is notification's E2E suite, run by `go run magefile.go e2e:notification`.
package notification_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
)

func TestNotification(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "notification E2E")
}

var env *e2eenv.Env

var _ = BeforeSuite(func() {
	e, skip, err := e2eenv.Load("notification")
	if skip != "" {
		Skip(skip)
	}
	Expect(err).NotTo(HaveOccurred())
	env = e
})
