// Package signalprocessing_test is signalprocessing's E2E suite, run by `go run magefile.go e2e:signalprocessing`.
package signalprocessing_test

import (
	"testing"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
)

func TestSignalprocessing(t *testing.T) { e2eenv.Run(t, "signalprocessing") }

var env = e2eenv.Setup("signalprocessing", []string{"datastorage"}, nil)
