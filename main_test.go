package testbed

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/testbed-dev/testbed/internal/cluster"
)

// Every goroutine a test starts, through this package or a client it
// uses, must have ended when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testScope is the scope of the clusters the tests make: the reference
// platform's, so that cluster:prune removes what a killed test left.
const testScope = cluster.Scope("testbed")
