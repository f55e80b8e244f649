package testbed

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts, through this package or a client it
// uses, must have ended when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
