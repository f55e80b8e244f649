// Package workflowexecution_test is workflowexecution's E2E suite, run by `go run magefile.go e2e:workflowexecution`.
package workflowexecution_test

import (
	"testing"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
)

func TestWorkflowexecution(t *testing.T) { e2eenv.Run(t, "workflowexecution") }

var env = e2eenv.Setup("workflowexecution", []string{"datastorage"}, nil)
