package testbed

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestCatchInterruptTakesOverFromALaterHandler registers a handler the way
// mage does, just after the target started; the take-over drops it, and a
// SIGINT then reaches testbed only, as the cause ErrInterrupted.
func TestCatchInterruptTakesOverFromALaterHandler(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	ctx, stop := CatchInterrupt(parent, io.Discard)
	defer stop()
	mage := make(chan os.Signal, 1)
	signal.Notify(mage, syscall.SIGINT) // after ours, as in mage's runTarget
	defer signal.Stop(mage)

	time.Sleep(700 * time.Millisecond) // past both take-overs
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGINT did not cancel the run")
	}
	if !errors.Is(context.Cause(ctx), ErrInterrupted) {
		t.Errorf("cause %v, want ErrInterrupted", context.Cause(ctx))
	}
	if ExitCode(ctx, context.Cause(ctx)) != ExitInterrupted {
		t.Errorf("exit code %d, want %d", ExitCode(ctx, context.Cause(ctx)), ExitInterrupted)
	}
	select {
	case <-mage:
		t.Error("the later handler still got the signal: mage would exit 5 s later, mid-cleanup")
	case <-time.After(200 * time.Millisecond):
	}
	// mage cancelling its context does not cancel a run that cleans up.
	ctx2, stop2 := CatchInterrupt(parent, io.Discard)
	defer stop2()
	cancelParent()
	if ctx2.Err() != nil {
		t.Error("mage's cancellation reached the run")
	}
}

func TestExitCodes(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		err  error
		want int
	}{{nil, 0}, {errors.New("boom"), ExitFailure}, {&InputError{errors.New("unknown service")}, ExitInput}} {
		if got := ExitCode(ctx, tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
