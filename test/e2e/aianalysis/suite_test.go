// Package aianalysis_test is aianalysis's E2E suite, run by `go run magefile.go e2e:aianalysis`.
package aianalysis_test

import (
	"testing"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
)

func TestAianalysis(t *testing.T) { e2eenv.Run(t, "aianalysis") }

var env = e2eenv.Setup("aianalysis", []string{"datastorage"}, nil)
