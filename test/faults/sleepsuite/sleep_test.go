// Package sleepsuite is the suite of the fault suite's sleepy-suite
// service: it runs until interrupted, so that Ctrl-C lands inside a suite.
package sleepsuite

import (
	"os"
	"os/signal"
	"testing"
	"time"
)

func TestSleepUntilInterrupted(t *testing.T) {
	if os.Getenv("E2E_KUBECONFIG") == "" {
		t.Skip("the fault suite runs this through e2e:run sleepy-suite")
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt)
	t.Log("suite sleeping until interrupted")
	select {
	case <-ch:
		t.Fatal("interrupted")
	case <-time.After(3 * time.Minute):
	}
}
