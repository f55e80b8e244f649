// Package remediationorchestrator_test is remediationorchestrator's E2E suite, run by `go run magefile.go e2e:remediationorchestrator`.
package remediationorchestrator_test

import (
	"testing"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
)

func TestRemediationorchestrator(t *testing.T) { e2eenv.Run(t, "remediationorchestrator") }

var env = e2eenv.Setup("remediationorchestrator", []string{"datastorage", "notification"}, nil)
