package cluster

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestWaitKindIsBounded: after an interrupt, the wait for kind's create
// (which takes no context) deletes the nodes under it until it returns,
// but no longer than its bound, and stops at once when asked to hurry.
func TestWaitKindIsBounded(t *testing.T) {
	t.Parallel()
	wait := func(done chan error, hurry chan struct{}, bound time.Duration) (bool, int, time.Duration) {
		dels := 0
		t0 := time.Now()
		res := make(chan bool, 1)
		go func() { res <- waitKind(done, hurry, bound, 10*time.Millisecond, func() { dels++ }) }()
		select {
		case stopped := <-res:
			return stopped, dels, time.Since(t0)
		case <-time.After(10 * time.Second):
			t.Fatal("waitKind still waits 10 s later for a kind that never returns")
			return false, 0, 0
		}
	}

	// kind returns after a few deletions.
	done := make(chan error, 1)
	go func() { time.Sleep(50 * time.Millisecond); done <- nil }()
	if stopped, dels, _ := wait(done, nil, time.Minute); !stopped || dels < 2 {
		t.Errorf("kind returned: stopped %v after %d deletions; want stopped after at least 2", stopped, dels)
	}

	// kind never returns: the bound ends the wait.
	if stopped, dels, took := wait(make(chan error), nil, 200*time.Millisecond); stopped || dels < 2 || took < 200*time.Millisecond {
		t.Errorf("stuck kind: stopped %v, %d deletions, %s; want not stopped, deleted repeatedly, after the bound", stopped, dels, took)
	}

	// Asked to hurry: one deletion, then the wait ends.
	hurry := make(chan struct{})
	close(hurry)
	if stopped, dels, _ := wait(make(chan error), hurry, time.Minute); stopped || dels != 1 {
		t.Errorf("hurry: stopped %v after %d deletions; want not stopped, after 1", stopped, dels)
	}
}

// TestWithDeadlineLetsTheCallItGivesUpOnEnd: when the run ends during a
// call that takes no context (kind's cluster list, a `docker ps`), the
// call that ends in a moment has ended when withDeadline returns, so its
// process does not outlive the run (the fault suite found one alive); a
// call that hangs is left after the grace.
func TestWithDeadlineLetsTheCallItGivesUpOnEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var ended atomic.Bool
	_, err := withDeadline(ctx, time.Minute, "listing", func() (int, error) {
		time.Sleep(200 * time.Millisecond)
		ended.Store(true)
		return 1, nil
	})
	if !errors.Is(err, context.Canceled) || !ended.Load() {
		t.Errorf("err %v, call ended %v: want canceled, after the call ended", err, ended.Load())
	}
	hang := make(chan struct{})
	defer close(hang)
	t0 := time.Now()
	_, err = withDeadline(ctx, time.Minute, "listing", func() (int, error) { <-hang; return 0, nil })
	if !errors.Is(err, context.Canceled) || time.Since(t0) > deadlineGrace+time.Second {
		t.Errorf("a hanging call: %v after %s", err, time.Since(t0))
	}
}
