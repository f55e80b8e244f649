package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
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
func CatchInterrupt(ctx context.Context, out io.Writer) (context.Context, func()) {
	signal.Reset(syscall.SIGINT, syscall.SIGTERM)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		select {
		case s := <-ch:
			fmt.Fprintf(out, "testbed: %s: stopping and cleaning up (a second one exits at once)\n", s)
			cancel(ErrInterrupted)
		case <-done:
			return
		}
		select {
		case <-ch:
			fmt.Fprintln(out, "testbed: second interrupt: exiting before the cleanup finished; `go run magefile.go cluster:prune` deletes the clusters left")
			os.Exit(ExitInterrupted)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		<-ended
		cancel(nil)
	}
}
