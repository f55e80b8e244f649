// Package cmdline is the command layer's side of testbed: signals, exit
// codes and the process's last cleanups. Targets (magefiles) use it; the
// library does not.
package cmdline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/testbed-dev/testbed"
	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/atexit"
)

// Exit codes of the targets: a failure is 1, bad input 2, an interrupt 130
// (as a shell reports a command stopped by SIGINT).
const (
	ExitFailure     = 1
	ExitInput       = 2
	ExitInterrupted = 130
)

// Commands are the targets' command lines the library's messages advise.
var Commands = testbed.Commands{
	Create: "go run magefile.go cluster:create %s",
	Delete: "go run magefile.go cluster:delete %s",
}

// ErrInterrupted is the cause of a run's cancellation by SIGINT or SIGTERM.
var ErrInterrupted = errors.New("interrupted by a signal")

// ExitCode maps a target's error to its exit code. An interrupt is 130
// even when the work it cut short ended without an error (the signal came
// during the last cleanup, after the suite passed): the person asked the
// command to stop, and `mage e2e:x && next` must not go on to next.
func ExitCode(ctx context.Context, err error) int {
	switch {
	case errors.Is(context.Cause(ctx), ErrInterrupted):
		return ExitInterrupted
	case err == nil:
		return 0
	case errors.Is(err, testbed.ErrInput):
		return ExitInput
	}
	return ExitFailure
}

// RunnerHurry is how long a cancelled run may spend on diagnostics before
// it hurries, under a runner that kills a cancelled step at a known time:
// GitHub Actions (GITHUB_ACTIONS=true) sends SIGINT, SIGTERM 7.5 s later
// and SIGKILL 2.5 s after that, so the run hurries 3 s after the SIGINT,
// leaving about 7 s to delete its cluster (the timeline is written before
// the deletion starts). 0
// elsewhere: a person's Ctrl-C gets full diagnostics.
func RunnerHurry() time.Duration {
	if os.Getenv("GITHUB_ACTIONS") == "true" {
		return 3 * time.Second
	}
	return 0
}

// exit is os.Exit; a test replaces it.
var exit = os.Exit

// CatchInterrupt takes SIGINT and SIGTERM over from mage, whose own handler
// gives a target 5 s to clean up and then exits: too short to collect
// diagnostics and delete a cluster.
//
//   - The first signal cancels the returned context (cause ErrInterrupted):
//     the run stops and cleans up under its finally steps' deadlines.
//
//   - A SIGTERM after that means "hurry" (GitHub Actions cancels a job with
//     SIGINT, then SIGTERM 7.5 s later, then kills): diagnostics are cut
//     short or skipped, the cluster is deleted at once.
//
//   - A second SIGINT (a person pressing Ctrl-C again) exits at once, after
//     the process's registered cleanups (atexit: the suite's process group,
//     temporary directories), saying what is left.
//
//   - With hurryAfter > 0, the run also hurries that long after the first
//     signal without waiting for a SIGTERM: a runner that kills at a known
//     time (RunnerHurry) leaves room for the deletion and the timeline.
//
// stop restores the default handling.
//
// mage registers its handler in parallel with starting the target, so the
// take-over is repeated shortly after (seen: mage's handler, registered
// after ours, cancelled the run first). The returned context does not
// inherit mage's cancellation, only its deadline (mage -t).
//
// Long (82 lines) on purpose: one state machine over one signal channel,
// whose closures share its six channels; split, they would pass them all.
func CatchInterrupt(parent context.Context, out io.Writer, hurryAfter time.Duration) (context.Context, func()) {
	ch := make(chan os.Signal, 3)
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
	hurry := make(chan struct{})
	ctx, cancel := context.WithCancelCause(engine.WithHurry(base, hurry))
	done := make(chan struct{})
	ended := make(chan struct{})
	interrupted := func(s os.Signal) {
		fmt.Fprintf(out, "testbed: %s: stopping and cleaning up (SIGTERM: hurry, skip diagnostics; a second interrupt exits at once)\n", s)
		cancel(ErrInterrupted)
		hurried := false
		var timer <-chan time.Time
		if hurryAfter > 0 {
			t := time.NewTimer(hurryAfter)
			defer t.Stop()
			timer = t.C
		}
		for {
			select {
			case <-timer:
				if !hurried {
					hurried = true
					fmt.Fprintf(out, "testbed: %s since the signal: hurrying: diagnostics cut short, deleting what the run made before the runner kills the job\n", hurryAfter)
					close(hurry)
				}
			case s := <-ch:
				if s == syscall.SIGTERM && !hurried {
					hurried = true
					fmt.Fprintln(out, "testbed: SIGTERM: hurrying: diagnostics skipped, deleting what the run made")
					close(hurry)
					continue
				}
				if s == syscall.SIGTERM {
					continue // already hurrying; a kill follows if the runner is done waiting
				}
				fmt.Fprintln(out, "testbed: second interrupt: exiting before the cleanup finished; `go run magefile.go cluster:prune` deletes the clusters left")
				atexit.Run()
				exit(ExitInterrupted)
				return
			case <-done:
				return
			}
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
