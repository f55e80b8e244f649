// Package holmesgptapi_test is holmesgpt-api's E2E suite, run by `go run magefile.go e2e:holmesgpt-api`.
package holmesgptapi_test

import (
	"testing"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
)

func TestHolmesgptApi(t *testing.T) { e2eenv.Run(t, "holmesgpt-api") }

var env = e2eenv.Setup("holmesgpt-api", []string{"holmesgpt-api"}, nil)
