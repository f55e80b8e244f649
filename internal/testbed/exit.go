package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Exit codes of the targets: a failure is 1, bad input 2, an interrupt 130
// (as a shell reports a command stopped by SIGINT).
const (
	ExitFailure     = 1
	ExitInput       = 2
	ExitInterrupted = 130
)

// ErrInterrupted is the cause of a run's cancellation by SIGINT or SIGTERM.
var ErrInterrupted = errors.New("interrupted by a signal")

// InputError is bad input: an unknown service, a knob's bad value, an
// invalid topology. Nothing was started.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// ExitCode maps a target's error to its exit code.
func ExitCode(ctx context.Context, err error) int {
	var in *InputError
	switch {
	case err == nil:
		return 0
	case errors.Is(context.Cause(ctx), ErrInterrupted):
		return ExitInterrupted
	case errors.As(err, &in):
		return ExitInput
	}
	return ExitFailure
}

// CatchInterrupt takes SIGINT and SIGTERM over from mage, whose own handler
// gives a target 5 s to clean up and then exits: too short to collect
// diagnostics and delete a cluster. The first signal cancels the returned
// context (cause ErrInterrupted) and the run cleans up under its finally
// steps' deadlines; a second one exits at once, saying what is left.
// stop restores the default handling.
//
// mage registers its handler in parallel with starting the target, so the
// take-over is repeated shortly after (seen: mage's handler, registered
// after ours, cancelled the run first). The returned context does not
// inherit mage's cancellation, only its deadline (mage -t).
func CatchInterrupt(parent context.Context, out io.Writer) (context.Context, func()) {
	ch := make(chan os.Signal, 2)
	takeOver := func() {
		// Ignore, not Reset: between dropping the other handlers and
		// registering ours, a signal is ignored rather than fatal.
		signal.Ignore(syscall.SIGINT, syscall.SIGTERM)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	}
	takeOver()
	base := context.WithoutCancel(parent)
	var cancelDeadline context.CancelFunc = func() {}
	if d, ok := parent.Deadline(); ok {
		base, cancelDeadline = context.WithDeadline(base, d)
	}
	ctx, cancel := context.WithCancelCause(base)
	done := make(chan struct{})
	ended := make(chan struct{})
	interrupted := func(s os.Signal) {
		fmt.Fprintf(out, "testbed: %s: stopping and cleaning up (a second one exits at once)\n", s)
		cancel(ErrInterrupted)
		select {
		case <-ch:
			fmt.Fprintln(out, "testbed: second interrupt: exiting before the cleanup finished; `go run magefile.go cluster:prune` deletes the clusters left")
			os.Exit(ExitInterrupted)
		case <-done:
		}
	}
	go func() {
		defer close(ended)
		for _, d := range []time.Duration{50 * time.Millisecond, 500 * time.Millisecond} {
			select {
			case s := <-ch:
				interrupted(s)
				return
			case <-time.After(d):
				takeOver()
			case <-done:
				return
			}
		}
		select {
		case s := <-ch:
			interrupted(s)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		<-ended
		cancel(nil)
		cancelDeadline()
	}
}
