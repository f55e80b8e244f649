package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func noop(context.Context, io.Writer) error { return nil }

// recorder logs step starts and ends in the order they happen.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, s)
}

func (r *recorder) step(name string) func(context.Context, io.Writer) error {
	return func(context.Context, io.Writer) error {
		r.add("start " + name)
		r.add("end " + name)
		return nil
	}
}

func (r *recorder) index(s string) int {
	for i, l := range r.log {
		if l == s {
			return i
		}
	}
	return -1
}

func TestStepNeverStartsBeforeItsNeeds(t *testing.T) {
	t.Parallel()
	for _, mode := range []Mode{Dataflow, Phased, Sequential} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			p := &Plan{Name: "diamond", Steps: []Step{
				{Name: "a", Phase: PhaseBuild, Run: rec.step("a")},
				{Name: "b", Phase: PhaseCluster, Needs: []string{"a"}, Run: rec.step("b")},
				{Name: "c", Phase: PhaseCluster, Needs: []string{"a"}, Run: rec.step("c")},
				{Name: "d", Phase: PhaseLoad, Needs: []string{"b", "c"}, Run: rec.step("d")},
			}}
			res, err := Run(context.Background(), p, Options{Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range p.Steps {
				for _, n := range s.Needs {
					if rec.index("end "+n) > rec.index("start "+s.Name) {
						t.Errorf("%s started before its need %s ended: %v", s.Name, n, rec.log)
					}
				}
			}
			for _, s := range res.Steps {
				if s.State != Done {
					t.Errorf("%s: state %s", s.Name, s.State)
				}
			}
		})
	}
}

// TestClassCapHolds holds every capped step until the test releases it
// and counts the steps that have started: with the cap at l, exactly l
// start, and one more each time one is released. A cap that is too loose
// shows more starts than allowed; one too tight never reaches l and fails
// by the deadline, not by hanging.
func TestClassCapHolds(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 2, 3} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			t.Parallel()
			const steps = 7
			started := make(chan string, steps)
			release := make(chan struct{})
			build := func(name string) func(context.Context, io.Writer) error {
				return func(ctx context.Context, _ io.Writer) error {
					started <- name
					select {
					case <-release:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			p := &Plan{Name: "builds", Limits: map[string]int{"build": limit}}
			for i := range steps {
				name := fmt.Sprint("b", i)
				p.Steps = append(p.Steps, Step{Name: name, Class: "build", Run: build(name)})
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := Run(ctx, p, Options{})
				errc <- err
			}()
			deadline := time.After(10 * time.Second)
			// awaitStarts waits for n more starts, then checks that no other
			// step starts within a grace period the scheduler needs far less
			// than (it starts every eligible step in one pass).
			running := 0
			awaitStarts := func(n int) {
				t.Helper()
				for range n {
					select {
					case <-started:
						running++
					case <-deadline:
						cancel()
						t.Fatalf("only %d capped step(s) started, want %d: the cap is too tight", running, limit)
					}
				}
				select {
				case s := <-started:
					t.Fatalf("%s started while %d capped steps were running: the cap %d is too loose", s, running, limit)
				case <-time.After(100 * time.Millisecond):
				}
			}
			awaitStarts(limit)
			for left := steps - limit; left > 0; left-- {
				release <- struct{}{} // one ends: one more may start
				running--
				awaitStarts(1)
			}
			close(release)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestStallIsAnInternalError: nothing running, nothing eligible, nothing
// failed and the context alive is a scheduler bug, reported with the steps
// that never started, not a success.
func TestStallIsAnInternalError(t *testing.T) {
	t.Parallel()
	p := &Plan{Name: "stall", Steps: []Step{
		{Name: "a", Run: noop},
		{Name: "b", Needs: []string{"a"}, Run: noop},
	}}
	// Needs no valid plan has: b waits for a step that never runs.
	needs := func(_ Mode, i int) []string {
		if i == 1 {
			return []string{"ghost"}
		}
		return nil
	}
	res, err := run(context.Background(), p, Options{}, needs)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("err = %v, want ErrStalled", err)
	}
	if !strings.Contains(err.Error(), "b (waits for ghost)") {
		t.Errorf("the error does not name the step and what it waits for: %v", err)
	}
	if res.Steps[1].State != Skipped {
		t.Errorf("b: state %s, want skipped", res.Steps[1].State)
	}
}

func TestFailureCancelsRunningAndSkipsPending(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	var sawCancel atomic.Bool
	p := &Plan{Name: "fail", Steps: []Step{
		{Name: "slow", Run: func(ctx context.Context, _ io.Writer) error {
			close(started)
			<-ctx.Done()
			sawCancel.Store(true)
			return ctx.Err()
		}},
		{Name: "boom", Run: func(context.Context, io.Writer) error {
			<-started
			return errors.New("disk full")
		}},
		{Name: "after", Needs: []string{"boom"}, Run: noop},
	}}
	res, err := Run(context.Background(), p, Options{})
	var se *StepError
	if !errors.As(err, &se) || se.Step != "boom" || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error %v: want the failing step and its cause", err)
	}
	if !sawCancel.Load() {
		t.Error("the running step never saw the cancellation")
	}
	want := map[string]State{"slow": Canceled, "boom": Failed, "after": Skipped}
	for _, s := range res.Steps {
		if s.State != want[s.Name] {
			t.Errorf("%s: state %s, want %s", s.Name, s.State, want[s.Name])
		}
	}
}

func TestFinallyStepsRunAfterFailureAndReportEveryError(t *testing.T) {
	t.Parallel()
	var ran []string
	var finCtxErr error
	p := &Plan{Name: "fin", Steps: []Step{
		{Name: "boom", Run: func(context.Context, io.Writer) error { return errors.New("bad") }},
	}, Finally: []Step{
		{Name: "diagnose", OnFailure: true, Run: func(ctx context.Context, _ io.Writer) error {
			ran = append(ran, "diagnose")
			finCtxErr = ctx.Err()
			return errors.New("no logs")
		}},
		{Name: "teardown", Run: func(context.Context, io.Writer) error {
			ran = append(ran, "teardown")
			return errors.New("cluster busy")
		}},
	}}
	_, err := Run(context.Background(), p, Options{})
	if strings.Join(ran, ",") != "diagnose,teardown" {
		t.Fatalf("finally steps ran %v", ran)
	}
	if finCtxErr != nil {
		t.Errorf("finally step got a canceled context: %v", finCtxErr)
	}
	for _, want := range []string{`step "boom": bad`, `step "diagnose": no logs`, `step "teardown": cluster busy`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestOnFailureStepSkippedOnSuccess(t *testing.T) {
	t.Parallel()
	var ran []string
	p := &Plan{Name: "ok", Steps: []Step{{Name: "a", Run: noop}}, Finally: []Step{
		{Name: "diagnose", OnFailure: true, Run: func(context.Context, io.Writer) error { ran = append(ran, "diagnose"); return nil }},
		{Name: "teardown", Run: func(context.Context, io.Writer) error { ran = append(ran, "teardown"); return nil }},
	}}
	if _, err := Run(context.Background(), p, Options{}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(ran, ",") != "teardown" {
		t.Errorf("ran %v, want only teardown", ran)
	}
}

// TestOnSuccessStepRunsOnlyWhenThePlanPassed: work for the next run
// (OnSuccess) runs after a pass, after the teardown before it; after a
// failure or an interrupt it does not run.
func TestOnSuccessStepRunsOnlyWhenThePlanPassed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		step func(context.Context, io.Writer) error
		ctx  func() context.Context
		want string
	}{
		{"passed", noop, context.Background, "teardown,next"},
		{"failed", func(context.Context, io.Writer) error { return errors.New("boom") }, context.Background, "teardown"},
		{"interrupted", noop, func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, "teardown"},
	} {
		var ran []string
		p := &Plan{Name: tc.name, Steps: []Step{{Name: "a", Run: tc.step}}, Finally: []Step{
			{Name: "teardown", Run: func(context.Context, io.Writer) error { ran = append(ran, "teardown"); return nil }},
			{Name: "next", OnSuccess: true, Run: func(context.Context, io.Writer) error { ran = append(ran, "next"); return nil }},
		}}
		Run(tc.ctx(), p, Options{})
		if got := strings.Join(ran, ","); got != tc.want {
			t.Errorf("%s: ran %s, want %s", tc.name, got, tc.want)
		}
	}
	// An interrupt while it runs (here: during the teardown) ends it.
	ctx, cancel := context.WithCancel(context.Background())
	var cut error
	p := &Plan{Name: "cut", Steps: []Step{{Name: "a", Run: noop}}, Finally: []Step{
		{Name: "teardown", Run: func(context.Context, io.Writer) error { cancel(); return nil }},
		{Name: "next", OnSuccess: true, Run: func(ctx context.Context, _ io.Writer) error {
			select {
			case <-ctx.Done():
				cut = ctx.Err()
			case <-time.After(10 * time.Second):
			}
			return cut
		}},
	}}
	Run(ctx, p, Options{})
	if cut == nil {
		t.Error("an interrupt did not end the OnSuccess step")
	}
	bad := &Plan{Name: "both", Steps: []Step{{Name: "a", Run: noop}}, Finally: []Step{{Name: "x", OnSuccess: true, OnFailure: true, Run: noop}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "both OnFailure and OnSuccess") {
		t.Errorf("a step marked both: %v", err)
	}
}

func TestInterruptCancelsAndRunsFinally(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	tornDown := false
	p := &Plan{Name: "ctrl-c", Steps: []Step{
		{Name: "wait", Run: func(ctx context.Context, _ io.Writer) error {
			cancel() // what SIGINT does to the run's context
			<-ctx.Done()
			return ctx.Err()
		}},
		{Name: "never", Needs: []string{"wait"}, Run: noop},
	}, Finally: []Step{{Name: "teardown", Run: func(context.Context, io.Writer) error { tornDown = true; return nil }}}}
	res, err := Run(ctx, p, Options{})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("error %v, want interrupted", err)
	}
	if res.Steps[0].State != Canceled || res.Steps[1].State != Skipped {
		t.Errorf("states %s/%s, want canceled/skipped", res.Steps[0].State, res.Steps[1].State)
	}
	if !tornDown {
		t.Error("teardown did not run after the interrupt")
	}
}

func TestPanicBecomesErrorWithStack(t *testing.T) {
	t.Parallel()
	p := &Plan{Name: "panic", Steps: []Step{{Name: "oops", Run: func(context.Context, io.Writer) error {
		var m map[string]int
		m["x"] = 1
		return nil
	}}}}
	_, err := Run(context.Background(), p, Options{})
	if err == nil || !strings.Contains(err.Error(), `step "oops": panic: assignment to entry in nil map`) || !strings.Contains(err.Error(), "engine_test.go") {
		t.Fatalf("error %v: want the panic and its stack", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		plan Plan
		want string
	}{
		{"duplicate", Plan{Steps: []Step{{Name: "a", Run: noop}, {Name: "a", Run: noop}}}, `two steps are named "a"`},
		{"unknown need", Plan{Steps: []Step{{Name: "a", Needs: []string{"zz"}, Run: noop}}}, `"a" needs "zz"`},
		{"cycle", Plan{Steps: []Step{
			{Name: "a", Needs: []string{"c"}, Run: noop},
			{Name: "b", Needs: []string{"a"}, Run: noop},
			{Name: "c", Needs: []string{"b"}, Run: noop},
		}}, "cycle: a → b → c → a"},
		{"bad limit", Plan{Steps: []Step{{Name: "a", Run: noop}}, Limits: map[string]int{"build": 0}}, "limit 0"},
		{"no run", Plan{Steps: []Step{{Name: "a"}}}, "nothing to run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.plan.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestModeOrdering checks what each mode allows to overlap: a chain b1→b2
// in the build phase and an independent cluster step c.
func TestModeOrdering(t *testing.T) {
	t.Parallel()
	build := func(rec *recorder, name string, gate <-chan struct{}) func(context.Context, io.Writer) error {
		return func(context.Context, io.Writer) error {
			rec.add("start " + name)
			if gate != nil {
				<-gate
			}
			rec.add("end " + name)
			return nil
		}
	}
	t.Run("dataflow overlaps the cluster with the builds", func(t *testing.T) {
		rec := &recorder{}
		gate := make(chan struct{})
		p := &Plan{Name: "m", Steps: []Step{
			{Name: "b1", Phase: PhaseBuild, Run: build(rec, "b1", gate)},
			{Name: "c", Phase: PhaseCluster, Run: func(context.Context, io.Writer) error { rec.add("start c"); close(gate); return nil }},
		}}
		if _, err := Run(context.Background(), p, Options{Mode: Dataflow}); err != nil {
			t.Fatal(err)
		}
		// b1 can only end after c started: they overlapped.
		if rec.index("start c") > rec.index("end b1") {
			t.Errorf("no overlap: %v", rec.log)
		}
	})
	t.Run("phased waits for the whole build phase", func(t *testing.T) {
		rec := &recorder{}
		p := &Plan{Name: "m", Steps: []Step{
			{Name: "b1", Phase: PhaseBuild, Run: build(rec, "b1", nil)},
			{Name: "b2", Phase: PhaseBuild, Needs: []string{"b1"}, Run: build(rec, "b2", nil)},
			{Name: "c", Phase: PhaseCluster, Run: build(rec, "c", nil)},
			// a need on a later phase is dropped in phased mode
			{Name: "apply", Phase: PhaseApply, Needs: []string{"ready"}, Run: build(rec, "apply", nil)},
			{Name: "ready", Phase: PhaseWait, Needs: []string{"c"}, Run: build(rec, "ready", nil)},
		}}
		if _, err := Run(context.Background(), p, Options{Mode: Phased}); err != nil {
			t.Fatal(err)
		}
		if rec.index("start c") < rec.index("end b2") {
			t.Errorf("cluster started inside the build phase: %v", rec.log)
		}
		if rec.index("start ready") < rec.index("end apply") {
			t.Errorf("wait phase started before apply ended: %v", rec.log)
		}
	})
	t.Run("sequential runs one at a time in plan order", func(t *testing.T) {
		rec := &recorder{}
		p := &Plan{Name: "m", Steps: []Step{
			{Name: "x", Run: build(rec, "x", nil)},
			{Name: "y", Run: build(rec, "y", nil)},
			{Name: "z", Needs: []string{"x"}, Run: build(rec, "z", nil)},
		}}
		if _, err := Run(context.Background(), p, Options{Mode: Sequential}); err != nil {
			t.Fatal(err)
		}
		want := "start x,end x,start y,end y,start z,end z"
		if got := strings.Join(rec.log, ","); got != want {
			t.Errorf("order %s, want %s", got, want)
		}
	})
}

// fakeClock advances by a fixed step on every reading, so durations are
// deterministic without sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func TestOutputBlocksAreWholeAndOrdered(t *testing.T) {
	t.Parallel()
	for _, style := range []Style{Plain, GitHub} {
		var out bytes.Buffer
		p := &Plan{Name: "out", Steps: []Step{
			{Name: "a", Run: func(_ context.Context, w io.Writer) error {
				fmt.Fprintln(w, "a1")
				fmt.Fprintln(w, "a2")
				return nil
			}},
			{Name: "b", Run: func(_ context.Context, w io.Writer) error {
				fmt.Fprintln(w, "b1")
				return errors.New("b broke")
			}},
		}}
		_, err := Run(context.Background(), p, Options{Out: &out, Style: style, Mode: Sequential, Now: (&fakeClock{}).now})
		if err == nil {
			t.Fatal("want b's failure")
		}
		var want string
		if style == Plain {
			want = "▶ a\n┌ a\n│ a1\n│ a2\n└ ✓ a (1s)\n▶ b\n┌ b\n│ b1\n└ ✗ b (1s): b broke\n"
		} else {
			want = "▶ a\n::group::✓ a (1s)\na1\na2\n::endgroup::\n▶ b\n::group::✗ b (1s): b broke\nb1\n::endgroup::\n"
		}
		if got := out.String(); got != want {
			t.Errorf("style %d output:\n%s\nwant:\n%s", style, got, want)
		}
	}
}

func TestParallelBlocksNeverInterleave(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := &Plan{Name: "par"}
	for i := range 8 {
		name := fmt.Sprint("s", i)
		p.Steps = append(p.Steps, Step{Name: name, Run: func(_ context.Context, w io.Writer) error {
			for j := range 50 {
				fmt.Fprintf(w, "%s line %d\n", name, j)
			}
			return nil
		}})
	}
	if _, err := Run(context.Background(), p, Options{Out: &out, Style: GitHub}); err != nil {
		t.Fatal(err)
	}
	// Inside each group every line belongs to that group's step.
	var cur string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		switch {
		case strings.HasPrefix(l, "::group::"):
			cur = strings.Fields(l)[1]
		case l == "::endgroup::", strings.HasPrefix(l, "▶ "):
			cur = ""
		default:
			if !strings.HasPrefix(l, cur+" ") {
				t.Fatalf("line %q inside the block of %q", l, cur)
			}
		}
	}
}

func TestAnalyzeCriticalPathAndBound(t *testing.T) {
	t.Parallel()
	s := func(name string, start, end int, class string, needs ...string) StepResult {
		return StepResult{Name: name, Start: time.Duration(start) * time.Second, End: time.Duration(end) * time.Second, Class: class, Needs: needs, State: Done}
	}
	tests := []struct {
		name      string
		res       Result
		path      string
		pathLen   time.Duration
		bound     time.Duration
		efficient float64
	}{
		{
			name: "chain beats parallel branch",
			res: Result{Makespan: 10 * time.Second, Steps: []StepResult{
				s("build", 0, 4, ""), s("cluster", 0, 3, ""),
				s("load", 4, 5, "", "build", "cluster"), s("apply", 5, 10, "", "load"),
			}},
			path: "build → load → apply", pathLen: 10 * time.Second, bound: 10 * time.Second, efficient: 1,
		},
		{
			name: "capped class dominates",
			res: Result{Makespan: 20 * time.Second, Limits: map[string]int{"build": 1}, Steps: []StepResult{
				s("b1", 0, 6, "build"), s("b2", 6, 12, "build"), s("b3", 12, 18, "build"),
				s("test", 18, 20, "", "b3"),
			}},
			path: "b3 → test", pathLen: 8 * time.Second, bound: 18 * time.Second, efficient: 0.9,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.res.Analyze()
			if got := strings.Join(a.CriticalPath, " → "); got != tt.path {
				t.Errorf("path %s, want %s", got, tt.path)
			}
			if a.PathLength != tt.pathLen || a.Bound != tt.bound {
				t.Errorf("length %s bound %s, want %s %s", a.PathLength, a.Bound, tt.pathLen, tt.bound)
			}
			if a.Efficiency != tt.efficient {
				t.Errorf("efficiency %.3f, want %.3f", a.Efficiency, tt.efficient)
			}
		})
	}
}

func TestTimelineFilesAndGantt(t *testing.T) {
	t.Parallel()
	p := &Plan{Name: "files", Steps: []Step{{Name: "a", Run: noop}, {Name: "b", Needs: []string{"a"}, Run: noop}}}
	res, err := Run(context.Background(), p, Options{Now: (&fakeClock{}).now})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths, err := res.Save(dir)
	if err != nil || len(paths) != 2 {
		t.Fatalf("save: %v %v", paths, err)
	}
	var g bytes.Buffer
	res.WriteGantt(&g)
	if !strings.Contains(g.String(), "critical path 2s: a → b") {
		t.Errorf("gantt lacks the critical path:\n%s", g.String())
	}
}

func BenchmarkIndependentSteps(b *testing.B) { benchPlan(b, false) }
func BenchmarkChainOfSteps(b *testing.B)     { benchPlan(b, true) }

// benchPlan measures scheduling overhead per step on 1000 no-op steps.
func benchPlan(b *testing.B, chain bool) {
	const n = 1000
	p := &Plan{Name: "bench"}
	for i := range n {
		s := Step{Name: fmt.Sprint("s", i), Run: noop}
		if chain && i > 0 {
			s.Needs = []string{fmt.Sprint("s", i-1)}
		}
		p.Steps = append(p.Steps, s)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := Run(context.Background(), p, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/step")
}

// TestCappedClassServesTheLongestChainFirst: two loads are ready at once
// and the import class allows one; the one a longer chain waits on goes first.
func TestCappedClassServesTheLongestChainFirst(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	p := &Plan{Name: "prio", Limits: map[string]int{"import": 1}, Steps: []Step{
		{Name: "load app", Class: "import", Run: rec.step("load app")},
		{Name: "load db", Class: "import", Run: rec.step("load db")},
		{Name: "apply app", Needs: []string{"load app", "ready db"}, Run: rec.step("apply app")},
		{Name: "apply db", Needs: []string{"load db"}, Run: rec.step("apply db")},
		{Name: "ready db", Needs: []string{"apply db"}, Run: rec.step("ready db")},
	}}
	if _, err := Run(context.Background(), p, Options{}); err != nil {
		t.Fatal(err)
	}
	if rec.index("start load db") > rec.index("start load app") {
		t.Errorf("load app went first although load db heads the longer chain: %v", rec.log)
	}
}

// TestGanttIsDeterministic: the per-class lines come in the order of the
// class names, whatever the map order, so two prints of one result match.
func TestGanttIsDeterministic(t *testing.T) {
	t.Parallel()
	res := &Result{Plan: "classes", Mode: Dataflow, Makespan: 4 * time.Second, Total: 4 * time.Second,
		Limits: map[string]int{"zeta": 1, "alpha": 1, "mid": 2, "beta": 1}}
	for i, c := range []string{"zeta", "alpha", "mid", "beta"} {
		res.Steps = append(res.Steps, StepResult{Name: c, Class: c, State: Done, Start: time.Duration(i) * time.Second, End: time.Duration(i+1) * time.Second})
	}
	var first bytes.Buffer
	res.WriteGantt(&first)
	var order []string
	for _, l := range strings.Split(first.String(), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "class" {
			order = append(order, f[1])
		}
	}
	if want := []string{"alpha:", "beta:", "mid:", "zeta:"}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("class lines in order %v, want %v", order, want)
	}
	for range 20 {
		var again bytes.Buffer
		res.WriteGantt(&again)
		if again.String() != first.String() {
			t.Fatalf("two prints differ:\n%s\n---\n%s", first.String(), again.String())
		}
	}
}

// TestHurryCutsDiagnosticsNotTeardown: once asked to hurry, a running
// OnFailure step is cut short, a later one skipped, and teardown still runs.
func TestHurryCutsDiagnosticsNotTeardown(t *testing.T) {
	t.Parallel()
	hurry := make(chan struct{})
	diagStarted := make(chan struct{})
	var teardown atomic.Bool
	p := &Plan{Name: "hurry", Steps: []Step{
		{Name: "fail", Run: func(context.Context, io.Writer) error { return errors.New("boom") }},
	}, Finally: []Step{
		{Name: "diagnose", OnFailure: true, Run: func(ctx context.Context, _ io.Writer) error {
			close(diagStarted)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(30 * time.Second):
				return errors.New("not cut short")
			}
		}},
		{Name: "more diagnostics", OnFailure: true, Run: func(context.Context, io.Writer) error {
			t.Error("an OnFailure step ran after the hurry")
			return nil
		}},
		{Name: "delete", Run: func(context.Context, io.Writer) error { teardown.Store(true); return nil }},
	}}
	go func() {
		<-diagStarted
		close(hurry)
	}()
	t0 := time.Now()
	res, err := Run(WithHurry(context.Background(), hurry), p, Options{})
	if err == nil {
		t.Fatal("a failed plan succeeded")
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("the run took %s: the diagnostics were not cut short", d)
	}
	if !teardown.Load() {
		t.Error("teardown did not run")
	}
	states := map[string]State{}
	for _, s := range res.Steps {
		states[s.Name] = s.State
	}
	if states["more diagnostics"] != Skipped || states["delete"] != Done {
		t.Errorf("states %v", states)
	}
}

// TestProgressLinesComeAsStepsStartAndEnd checks that Options.Progress gets
// a line when a step starts, before its block is printed, and a line with
// the state when it ends, and nothing of the step's own output.
func TestProgressLinesComeAsStepsStartAndEnd(t *testing.T) {
	t.Parallel()
	var progress bytes.Buffer
	var seenAtB string
	p := &Plan{Name: "progress", Steps: []Step{
		{Name: "a", Run: func(_ context.Context, w io.Writer) error {
			fmt.Fprintln(w, "a's own output")
			return nil
		}},
		{Name: "b", Needs: []string{"a"}, Run: func(_ context.Context, w io.Writer) error {
			seenAtB = progress.String() // while b runs: a ended, b started
			return errors.New("b broke\nsecond line")
		}},
	}}
	_, err := Run(context.Background(), p, Options{Out: io.Discard, Progress: &progress, Mode: Sequential, Now: (&fakeClock{}).now})
	if err == nil {
		t.Fatal("want b's failure")
	}
	if want := "▶ a\n✓ a (1s)\n▶ b\n"; seenAtB != want {
		t.Errorf("progress while b ran:\n%s\nwant:\n%s", seenAtB, want)
	}
	if want := "▶ a\n✓ a (1s)\n▶ b\n✗ b (1s): b broke …\n"; progress.String() != want {
		t.Errorf("progress:\n%s\nwant:\n%s", progress.String(), want)
	}
}

// TestCheckpointBeforeEachFinallyStep: before a teardown step runs, the
// checkpoint has the result so far, the steps that ended included, so a
// process killed during the teardown has written its timeline.
func TestCheckpointBeforeEachFinallyStep(t *testing.T) {
	t.Parallel()
	var seen [][]string
	p := &Plan{Name: "cp", Steps: []Step{{Name: "a", Run: noop}}, Finally: []Step{
		{Name: "teardown", Run: noop},
	}}
	res, err := Run(context.Background(), p, Options{Checkpoint: func(r *Result) {
		var names []string
		for _, s := range r.Steps {
			names = append(names, s.Name+":"+string(s.State))
		}
		seen = append(seen, names)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || strings.Join(seen[0], ",") != "a:done" {
		t.Fatalf("checkpoints %v, want one before the teardown holding a:done", seen)
	}
	if len(res.Steps) != 2 {
		t.Errorf("the checkpoint's copy changed the result: %v", res.Steps)
	}
}

// TestHurryWatchEndsWithItsStep: the watch that would cut an OnFailure
// step short on a hurry ends with the step when no hurry comes; goleak
// finds it if it is left waiting.
func TestHurryWatchEndsWithItsStep(t *testing.T) {
	before := goleak.IgnoreCurrent()
	never := make(chan struct{})
	p := &Plan{Name: "no-hurry", Steps: []Step{
		{Name: "fail", Run: func(context.Context, io.Writer) error { return errors.New("boom") }},
	}, Finally: []Step{
		{Name: "diagnose", OnFailure: true, Run: func(context.Context, io.Writer) error { return nil }},
	}}
	if _, err := Run(WithHurry(context.Background(), never), p, Options{}); err == nil {
		t.Fatal("a failed plan succeeded")
	}
	if err := goleak.Find(before); err != nil {
		t.Fatal(err)
	}
}
