package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Mode selects how a plan is scheduled.
type Mode string

// The scheduling modes.
const (
	Dataflow   Mode = "dataflow"
	Phased     Mode = "phased"
	Sequential Mode = "sequential"
)

// ParseMode accepts "" (dataflow) and the three mode names.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", Dataflow:
		return Dataflow, nil
	case Phased, Sequential:
		return Mode(s), nil
	}
	return "", fmt.Errorf("unknown mode %q: use dataflow, phased or sequential", s)
}

// State is what became of a step.
type State string

// The states a step ends in.
const (
	Done     State = "done"
	Failed   State = "failed"
	Canceled State = "canceled" // started, then cut short by another failure or Ctrl-C
	Skipped  State = "skipped"  // never started
)

// Options configure a run.
type Options struct {
	Mode Mode
	// Out receives the step blocks and status lines; nil discards them.
	Out io.Writer
	// Style chooses how output is framed; zero is Plain.
	Style Style
	// Progress, when set, receives one line as each step starts ("▶ name")
	// and one as it ends ("✓ name (1.2s)", or ✗/⊘ with the error's first
	// line), as they happen: e2e:all shows these while it holds the blocks.
	Progress io.Writer
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// FinallyTimeout bounds each finally step (default 5 min): they run
	// after Ctrl-C too, so they cannot inherit the canceled context.
	FinallyTimeout time.Duration
	// Checkpoint, when set, receives the result so far (a copy) before
	// each finally step: a process killed during its teardown (a CI
	// runner's SIGKILL) has then already written the timeline up to it.
	Checkpoint func(*Result)
}

// StepResult records one step's outcome.
type StepResult struct {
	Name    string        `json:"name"`
	Needs   []string      `json:"needs,omitempty"`
	Class   string        `json:"class,omitempty"`
	Phase   string        `json:"phase,omitempty"`
	Finally bool          `json:"finally,omitempty"`
	State   State         `json:"state"`
	Start   time.Duration `json:"start_ns"` // since the run started
	End     time.Duration `json:"end_ns"`
	Error   string        `json:"error,omitempty"`
}

// Duration is how long the step ran.
func (r StepResult) Duration() time.Duration { return r.End - r.Start }

// Result is the timeline of a run.
type Result struct {
	Plan    string         `json:"plan"`
	Mode    Mode           `json:"mode"`
	Started time.Time      `json:"started"`
	Steps   []StepResult   `json:"steps"`
	Limits  map[string]int `json:"limits,omitempty"`
	// Makespan is the time from the start to the end of the last non-finally step.
	Makespan time.Duration `json:"makespan_ns"`
	Total    time.Duration `json:"total_ns"`
}

// StepError is the error of the step that failed the plan.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("step %q: %v", e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

type event struct {
	i          int
	err        error
	afterAbort bool // the run was already canceled when the step returned
	end        time.Time
}

// Run executes the plan and returns its timeline. The error is the first
// step failure (a *StepError), or the context's error if the run was
// interrupted, joined with every error a finally step met.
func Run(ctx context.Context, p *Plan, o Options) (*Result, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return run(ctx, p, o, p.effectiveNeeds)
}

// run schedules a validated plan; needsOf gives the needs the scheduler
// honours for step i in a mode (a test hands it needs no valid plan has).
// The steps run first (runSteps), then the finally steps (runFinally).
func run(ctx context.Context, p *Plan, o Options, needsOf func(Mode, int) []string) (*Result, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FinallyTimeout == 0 {
		o.FinallyTimeout = 5 * time.Minute
	}
	mode, err := ParseMode(string(o.Mode))
	if err != nil {
		return nil, err
	}
	out := newPrinter(o.Out, o.Style, o.Now)
	out.progress = o.Progress
	defer out.close()

	start := o.Now()
	res := &Result{Plan: p.Name, Mode: mode, Started: start, Limits: p.Limits}
	for _, s := range p.Steps {
		res.Steps = append(res.Steps, StepResult{Name: s.Name, Needs: s.Needs, Class: s.Class, Phase: s.Phase.String(), State: Skipped})
	}
	sc := &scheduler{p: p, o: o, mode: mode, out: out, res: res, start: start,
		needs: make([][]string, len(p.Steps)), state: make([]int, len(p.Steps)),
		unfinished: map[Phase]int{}, done: map[string]bool{}, classRunning: map[string]int{}}
	for i, s := range p.Steps {
		sc.needs[i] = needsOf(mode, i)
		sc.unfinished[s.Phase]++
	}
	planErr := sc.runSteps(ctx)
	if planErr == nil && ctx.Err() != nil {
		planErr = fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	for _, r := range res.Steps {
		if r.End > res.Makespan {
			res.Makespan = r.End
		}
	}
	finErrs := sc.runFinally(ctx, planErr != nil)
	res.Total = sc.since(o.Now())
	return res, errors.Join(append([]error{planErr}, finErrs...)...)
}

// scheduler is the state of one run of a plan's steps.
type scheduler struct {
	p     *Plan
	o     Options
	mode  Mode
	out   *printer
	res   *Result
	start time.Time

	needs        [][]string    // step i's needs in the mode
	state        []int         // pending, running, finished
	unfinished   map[Phase]int // per phase, for the phased barrier
	done         map[string]bool
	classRunning map[string]int
	nRunning     int
}

func (sc *scheduler) since(t time.Time) time.Duration { return t.Sub(sc.start) }

// eligible reports whether step i may start now.
func (sc *scheduler) eligible(i int) bool {
	s := sc.p.Steps[i]
	if sc.state[i] != pending {
		return false
	}
	if sc.mode == Sequential && sc.nRunning > 0 {
		return false
	}
	if l, capped := sc.p.Limits[s.Class]; capped && sc.classRunning[s.Class] >= l {
		return false
	}
	for _, nd := range sc.needs[i] {
		if !sc.done[nd] {
			return false
		}
	}
	if sc.mode == Phased {
		for ph, left := range sc.unfinished {
			if ph < s.Phase && left > 0 {
				return false
			}
		}
	}
	return true
}

// runSteps starts every step as soon as it is eligible, in priority
// order, until all finished or, after a failure or a cancel, until those
// running finished. It returns the first failure, or a stall.
func (sc *scheduler) runSteps(ctx context.Context) error {
	n := len(sc.p.Steps)
	g, gctx := errgroup.WithContext(ctx)
	events := make(chan event, n)
	order := sc.p.priorityOrder()
	var planErr error
	for finished := 0; finished < n; finished++ {
		if gctx.Err() == nil {
			for _, i := range order {
				if sc.eligible(i) {
					sc.launch(gctx, g, events, i)
				}
			}
		}
		if sc.nRunning == 0 {
			if gctx.Err() == nil && planErr == nil {
				// Nothing runs, nothing can start, nothing failed and
				// nobody cancelled: a bug of the scheduler, not a success.
				planErr = stalled(sc.p, sc.state, sc.needs, sc.done)
			}
			break
		}
		if err := sc.finish(<-events); err != nil && planErr == nil {
			planErr = err
		}
	}
	_ = g.Wait() // every step goroutine has sent its event; this only joins them
	return planErr
}

// launch starts step i; its end comes back on events.
func (sc *scheduler) launch(gctx context.Context, g *errgroup.Group, events chan<- event, i int) {
	s := sc.p.Steps[i]
	sc.state[i] = running
	sc.nRunning++
	sc.classRunning[s.Class]++
	t0 := sc.o.Now()
	sc.res.Steps[i].Start = sc.since(t0)
	w := sc.out.begin(s.Name, t0)
	now := sc.o.Now
	g.Go(func() error {
		err := safeRun(gctx, s, w)
		events <- event{i: i, err: err, afterAbort: gctx.Err() != nil, end: now()}
		return err
	})
}

// finish records a step's end; it returns the step's failure (not a
// cancel's) as a *StepError.
func (sc *scheduler) finish(ev event) error {
	s := sc.p.Steps[ev.i]
	sc.state[ev.i] = finished
	sc.unfinished[s.Phase]--
	sc.nRunning--
	sc.classRunning[s.Class]--
	r := &sc.res.Steps[ev.i]
	r.End = sc.since(ev.end)
	var failed error
	switch {
	case ev.err == nil:
		r.State = Done
		sc.done[s.Name] = true
	case ev.afterAbort:
		r.State = Canceled
		r.Error = ev.err.Error()
	default:
		r.State = Failed
		r.Error = ev.err.Error()
		failed = &StepError{Step: s.Name, Err: ev.err}
	}
	sc.out.end(s.Name, r.State, r.Duration(), ev.err)
	return failed
}

// runFinally runs the finally steps one after the other, each with its
// own deadline and never cancelled by ctx: those that only explain a
// failure when the run failed (and not when asked to hurry).
func (sc *scheduler) runFinally(ctx context.Context, failed bool) []error {
	var errs []error
	hurry := Hurry(ctx)
	for _, s := range sc.p.Finally {
		if s.OnFailure && !failed || s.OnSuccess && failed {
			continue
		}
		if s.OnFailure && closed(hurry) {
			// Asked to hurry: what only explains a failure is skipped,
			// what undoes the run (teardown) is not.
			t0 := sc.since(sc.o.Now())
			sc.res.Steps = append(sc.res.Steps, StepResult{Name: s.Name, Finally: true, State: Skipped, Start: t0, End: t0, Error: "skipped: asked to hurry"})
			sc.out.skip(s.Name, "asked to hurry")
			continue
		}
		if err := sc.runFinallyStep(ctx, s, hurry); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// runFinallyStep checkpoints the timeline, then runs one finally step; a
// step that only explains a failure is cut short if asked to hurry while
// it runs.
func (sc *scheduler) runFinallyStep(ctx context.Context, s Step, hurry <-chan struct{}) error {
	if sc.o.Checkpoint != nil {
		cp := *sc.res
		cp.Steps = slices.Clone(sc.res.Steps)
		cp.Total = sc.since(sc.o.Now())
		sc.o.Checkpoint(&cp)
	}
	parent := context.WithoutCancel(ctx)
	if s.OnSuccess {
		parent = ctx // work for the next run stops at an interrupt
	}
	fctx, cancel := context.WithTimeout(parent, sc.o.FinallyTimeout)
	defer cancel()
	if s.OnFailure && hurry != nil {
		// The watch ends with the step.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-hurry:
				cancel()
			case <-stop:
			}
		}()
	}
	t0 := sc.o.Now()
	w := sc.out.begin(s.Name, t0)
	err := safeRun(fctx, s, w)
	r := StepResult{Name: s.Name, Finally: true, State: Done, Start: sc.since(t0), End: sc.since(sc.o.Now())}
	if err != nil {
		r.State, r.Error = Failed, err.Error()
	}
	sc.res.Steps = append(sc.res.Steps, r)
	sc.out.end(s.Name, r.State, r.Duration(), err)
	if err != nil {
		return &StepError{Step: s.Name, Err: err}
	}
	return nil
}

type hurryKey struct{}

// WithHurry returns a context whose run hurries once ch is closed: finally
// steps that only explain a failure (OnFailure: diagnostics) are cut short
// or skipped, and teardown runs at once. A CI runner that cancels a job
// sends SIGINT, then SIGTERM 7.5 s later, then kills: the SIGTERM means
// "hurry", not "abandon the cleanup".
func WithHurry(ctx context.Context, ch <-chan struct{}) context.Context {
	return context.WithValue(ctx, hurryKey{}, ch)
}

// Hurry is the channel WithHurry gave ctx (nil when none): code under a
// step that waits on something it cannot cancel stops waiting when it is
// closed.
func Hurry(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(hurryKey{}).(<-chan struct{})
	return ch
}

func closed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// What the scheduler knows of a step while the run goes.
const (
	pending = iota
	running
	finished
)

// ErrStalled is the cause of a run that stopped with steps that never
// became ready although nothing failed: a scheduler bug.
var ErrStalled = errors.New("internal error: the run stalled")

// stalled names every step that never started and what it still waited for.
func stalled(p *Plan, state []int, needs [][]string, done map[string]bool) error {
	var waiting []string
	for i, s := range p.Steps {
		if state[i] != pending {
			continue
		}
		var open []string
		for _, n := range needs[i] {
			if !done[n] {
				open = append(open, n)
			}
		}
		w := s.Name
		if len(open) > 0 {
			w += " (waits for " + strings.Join(open, ", ") + ")"
		}
		waiting = append(waiting, w)
	}
	return fmt.Errorf("%w: nothing runs and nothing failed, yet %d step(s) never started: %s", ErrStalled, len(waiting), strings.Join(waiting, "; "))
}

// safeRun runs a step and turns a panic into an error carrying its stack.
func safeRun(ctx context.Context, s Step, w io.Writer) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}()
	return s.Run(ctx, w)
}
