package testbed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/testbed-dev/testbed/engine"
)

// DefaultParallel is how many services e2e:all runs at once when
// E2E_PARALLEL is unset: one per core, and one per 3 GiB of available
// memory (a kind node with a service's stack), at least 1.
func DefaultParallel() int {
	n := runtime.NumCPU()
	if avail := memAvailable(); avail > 0 {
		n = min(n, int(avail/(3<<30)))
	}
	return max(1, n)
}

func memAvailable() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// Outcome is one service's line in the e2e:all summary.
type Outcome struct {
	Service   string
	Setup     time.Duration
	Suite     time.Duration
	Total     time.Duration
	Err       error
	Artifacts string
}

// All runs every service's E2E, up to parallel at once. With
// Options.OneCluster they share one kind cluster per cluster shape, each
// in a namespace of its own (see oneCluster); otherwise each gets its own
// cluster (cluster name, host ports, kubeconfig, temporary paths). Each
// service's output is printed whole when it ends. It runs them all and
// fails after, unless failFast.
func (t *Testbed) All(ctx context.Context, parallel int, failFast bool) ([]Outcome, error) {
	services := t.Topo.ServiceNames()
	if parallel < 1 {
		parallel = DefaultParallel()
	}
	t.initOnce()
	ones, err := t.sharing(services)
	if err != nil {
		return nil, err
	}
	if len(ones) > 0 {
		fmt.Fprintf(t.Out, "testbed: e2e of %d services, %d at once, %d of them on one cluster: %s\n", len(services), parallel, len(ones), strings.Join(services, ", "))
	} else {
		fmt.Fprintf(t.Out, "testbed: e2e of %d services, %d cluster(s) at once: %s\n", len(services), parallel, strings.Join(services, ", "))
	}
	outcomes := make([]Outcome, len(services))
	for i, svc := range services {
		outcomes[i].Service = svc // "not run" unless it starts
	}
	pr := newAllPrinter(t.Out)
	t0 := time.Now()
	ferr := eachService(ctx, services, parallel, func(ctx context.Context, i int, svc string, release func()) error {
		var buf bytes.Buffer
		pr.line(svc, "▶ start")
		res, err := t.run(ctx, svc, PartsE2E, runEnv{out: &buf, progress: pr.progress(svc), plain: true, one: ones[svc], suiteDone: release})
		dir, _ := artifacts(t.Opts, svc) // a topology's service: a valid name
		o := Outcome{Service: svc, Err: err, Artifacts: dir}
		if res != nil {
			o.Total = res.Total
			o.Setup, o.Suite, _ = suiteTimes(res, svc)
		}
		outcomes[i] = o
		pr.block(svc, buf.String(), err == nil, o.Total)
		if err != nil && failFast {
			return fmt.Errorf("%s: %w", svc, err)
		}
		return nil
	})
	derr := t.deleteOnes(context.WithoutCancel(ctx), ones)
	wall := time.Since(t0)
	writeSummary(t.Out, outcomes, wall)
	var errs []error
	for _, o := range outcomes {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.Service, firstLineErr(o.Err)))
		}
	}
	if ferr != nil && len(errs) == 0 {
		errs = append(errs, ferr)
	}
	if derr != nil {
		errs = append(errs, derr)
	}
	return outcomes, errors.Join(errs...)
}

// eachService calls run for every service in order, parallel at once. A
// service holds its slot while it is set up and tested: run's release
// gives it back (when the suite ends), so the next service starts while
// this one's teardown (diagnostics, deleting its namespace or cluster)
// runs. An error from run stops the start of any more (failing fast).
func eachService(ctx context.Context, services []string, parallel int, run func(ctx context.Context, i int, svc string, release func()) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	slots := make(chan struct{}, parallel)
	for i, svc := range services {
		select {
		case slots <- struct{}{}:
		case <-gctx.Done():
		}
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			var once sync.Once
			release := func() { once.Do(func() { <-slots }) }
			err := run(gctx, i, svc, release)
			if err != nil {
				cancel() // before the slot is free: nothing starts after a failure
			}
			release()
			return err
		})
	}
	return g.Wait()
}

// allPrinter prints e2e:all as it goes: one line per step of every service
// as the step starts and ends, prefixed by the service, and each service's
// whole output in one piece when the service ends (a ::group:: under GitHub
// Actions), so that parallel services never interleave their blocks.
type allPrinter struct {
	mu     sync.Mutex
	w      io.Writer
	github bool
}

// newAllPrinter frames services as groups under GitHub Actions.
func newAllPrinter(w io.Writer) *allPrinter {
	return &allPrinter{w: w, github: inGitHubActions()}
}

// line prints one progress line of a service.
func (p *allPrinter) line(svc, s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[%s] %s\n", svc, s)
}

// progress is the writer of a service's step lines (engine.Options.Progress).
func (p *allPrinter) progress(svc string) io.Writer {
	return &lineWriter{line: func(s string) { p.line(svc, s) }}
}

// block prints a service's whole output.
func (p *allPrinter) block(svc, out string, ok bool, total time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	head := fmt.Sprintf("%s %s (%s)", map[bool]string{true: "✓", false: "✗"}[ok], svc, total.Round(100*time.Millisecond))
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if p.github {
		fmt.Fprintf(p.w, "::group::%s\n%s\n::endgroup::\n", head, strings.Join(lines, "\n"))
		return
	}
	fmt.Fprintf(p.w, "┌ %s\n", svc)
	for _, l := range lines {
		fmt.Fprintf(p.w, "│ %s\n", l)
	}
	fmt.Fprintf(p.w, "└ %s\n", head)
}

// lineWriter calls line for each complete line written to it.
type lineWriter struct {
	mu   sync.Mutex
	part []byte
	line func(string)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.part = append(w.part, b...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.line(string(w.part[:i]))
		w.part = w.part[i+1:]
	}
}

func writeSummary(w io.Writer, outcomes []Outcome, wall time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nservice\tsetup\tsuite\ttotal\tresult\tartifacts")
	var sum time.Duration
	for _, o := range outcomes {
		result := "passed"
		switch {
		case o.Err != nil:
			result = "FAILED"
		case o.Total == 0:
			result = "not run"
		}
		sum += o.Total
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.Service, o.Setup.Round(100*time.Millisecond), o.Suite.Round(100*time.Millisecond),
			o.Total.Round(100*time.Millisecond), result, o.Artifacts)
	}
	tw.Flush()
	fmt.Fprintf(w, "wall time %s; the services' own times add up to %s\n", wall.Round(100*time.Millisecond), sum.Round(100*time.Millisecond))
}

// firstLineErr is err's first line, for a summary (the whole error is in
// the service's own output); err itself when it has one line.
func firstLineErr(err error) error {
	if s := engine.FirstLine(err.Error()); s != err.Error() {
		return errors.New(s)
	}
	return err
}
