package engine

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the engine starts (steps, the coordinator, the live
// status ticker) must have ended when a test's Run returns: goleak fails
// the package otherwise.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
