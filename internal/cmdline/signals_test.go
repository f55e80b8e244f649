package cmdline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/testbed-dev/testbed"
	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/atexit"
)

// TestCatchInterruptTakesOverFromALaterHandler registers a handler the way
// mage does, just after the target started; the take-over drops it, and a
// SIGINT then reaches testbed only, as the cause ErrInterrupted.
func TestCatchInterruptTakesOverFromALaterHandler(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	ctx, stop := CatchInterrupt(parent, io.Discard, 0)
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
	ctx2, stop2 := CatchInterrupt(parent, io.Discard, 0)
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
	}{{nil, 0}, {errors.New("boom"), ExitFailure}, {&testbed.InputError{Err: errors.New("unknown service")}, ExitInput}, {fmt.Errorf("wrapped: %w", &testbed.InputError{Err: errors.New("no topology")}), ExitInput}} {
		if got := ExitCode(ctx, tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	// An interrupt during the last cleanup of a run that passed is still an
	// interrupt (the fault suite's SIGINT at a random moment found exit 0).
	interrupted, cancel := context.WithCancelCause(ctx)
	cancel(ErrInterrupted)
	if got := ExitCode(interrupted, nil); got != ExitInterrupted {
		t.Errorf("ExitCode(nil) after an interrupt = %d, want %d", got, ExitInterrupted)
	}
}

// hurryClosed reports whether the run has been asked to hurry, through what
// the engine reads (a plan whose OnFailure step sees its context end).
func hurryClosed(ctx context.Context) bool {
	ran := false
	p := &engine.Plan{Name: "probe", Steps: []engine.Step{{Name: "fail", Run: func(context.Context, io.Writer) error { return errors.New("x") }}},
		Finally: []engine.Step{{Name: "diag", OnFailure: true, Run: func(context.Context, io.Writer) error { ran = true; return nil }}}}
	engine.Run(context.WithoutCancel(ctx), p, engine.Options{})
	return !ran
}

// TestSIGTERMAfterSIGINTHurriesAndASecondSIGINTExits: the CI runner's
// SIGINT, SIGTERM sequence hurries the cleanup without abandoning it; a
// second SIGINT runs the registered cleanups, then exits 130.
func TestSIGTERMAfterSIGINTHurriesAndASecondSIGINTExits(t *testing.T) {
	var code atomic.Int32
	exited := make(chan struct{})
	exit = func(c int) { code.Store(int32(c)); close(exited) }
	defer func() { exit = os.Exit }()
	ctx, stop := CatchInterrupt(context.Background(), io.Discard, 0)
	defer stop()
	time.Sleep(700 * time.Millisecond) // past both take-overs
	if hurryClosed(ctx) {
		t.Fatal("hurrying before any signal")
	}
	kill := func(s syscall.Signal) {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), s); err != nil {
			t.Fatal(err)
		}
	}
	kill(syscall.SIGINT)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGINT did not cancel the run")
	}
	if hurryClosed(ctx) {
		t.Error("one SIGINT already hurries: diagnostics would be skipped")
	}
	kill(syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for !hurryClosed(ctx) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !hurryClosed(ctx) {
		t.Fatal("SIGTERM after SIGINT did not hurry the run")
	}
	select {
	case <-exited:
		t.Fatal("SIGTERM after SIGINT exited: the cleanup would be abandoned")
	case <-time.After(300 * time.Millisecond):
	}
	var cleaned atomic.Bool
	defer atexit.Register(func() { cleaned.Store(true) })()
	kill(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("a second SIGINT did not exit")
	}
	if code.Load() != ExitInterrupted {
		t.Errorf("exit code %d, want %d", code.Load(), ExitInterrupted)
	}
	if !cleaned.Load() {
		t.Error("the registered cleanups did not run before the exit")
	}
}

// TestHurryAfterHurriesWithoutASIGTERM: under a runner that kills at a
// known time, one SIGINT cancels the run and it hurries hurryAfter later
// on its own; a run never signalled never hurries.
func TestHurryAfterHurriesWithoutASIGTERM(t *testing.T) {
	ctx, stop := CatchInterrupt(context.Background(), io.Discard, 300*time.Millisecond)
	defer stop()
	time.Sleep(700 * time.Millisecond) // past both take-overs, and past hurryAfter
	if hurryClosed(ctx) {
		t.Fatal("hurrying before any signal")
	}
	t0 := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
	if hurryClosed(ctx) {
		t.Error("hurrying at once: the diagnostics got no time")
	}
	for !hurryClosed(ctx) && time.Since(t0) < 5*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if !hurryClosed(ctx) {
		t.Fatal("no hurry 5 s after the SIGINT")
	}
	if d := time.Since(t0); d < 250*time.Millisecond {
		t.Errorf("hurried %s after the SIGINT, before hurryAfter", d)
	}
}

func TestRunnerHurry(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "true")
	if RunnerHurry() <= 0 || RunnerHurry() >= 7500*time.Millisecond {
		t.Errorf("under GitHub Actions: %s, want a hurry before the runner's SIGTERM", RunnerHurry())
	}
	t.Setenv("GITHUB_ACTIONS", "")
	if RunnerHurry() != 0 {
		t.Errorf("outside CI: %s, want 0 (full diagnostics)", RunnerHurry())
	}
}
