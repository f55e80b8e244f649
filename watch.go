package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/affected"
	"github.com/testbed-dev/testbed/internal/watch"
)

// PartsWatch is what e2e:watch runs on the cluster it holds after the
// first run: the service's images (only the changed ones are rebuilt),
// their loads, every component applied (an unchanged one is a no-op, a
// changed one rolls) and waited for, and the suite.
var PartsWatch = Parts{Build: true, Load: true, Deploy: true, Suite: true}

// Watch is e2e:watch, the inner loop a developer keeps open. It holds the
// service's cluster (the one testbed made and kept, or one it makes and
// keeps), runs the suite, then watches the files testbed maps to the
// service (its images' Dockerfiles, contexts and Go packages, its
// components' manifests, its suite's package, the topology). On a save it
// rebuilds only the images whose inputs changed, loads them, applies,
// waits and reruns the suite, and prints the verdict with the time from
// the save. A save during a run cancels it and starts again; a failed
// build or apply is shown and the watch goes on. When ctx ends (Ctrl-C),
// it deletes the cluster if it made it, and nothing else.
func (t *Testbed) Watch(ctx context.Context, service string) error {
	c, err := t.serviceCluster(service, io.Discard)
	if err != nil {
		return err
	}
	existed, err := c.Exists(ctx)
	if err != nil {
		return err
	}
	if existed && !c.Made() && !t.Opts.ReuseCluster {
		return &InputError{fmt.Errorf("cluster %s exists and testbed did not make it: e2e:watch would deploy into it; set E2E_REUSE_CLUSTER=1 to use it anyway (it is never deleted)", c.Name)}
	}
	suites, err := newSuiteCache()
	if err != nil {
		return err
	}
	defer suites.remove()
	own := t.variant(t.Topo, t.Opts, t.Out)
	own.once = &processOnce{} // its images, forgotten one by one as they change
	w := &watchLoop{t: own, service: service, out: t.Out, suites: suites, held: existed, nodeImages: &nodeImages{}}
	if err := w.scan(ctx); err != nil {
		return err
	}
	if !existed {
		defer w.deleteMade(ctx)
	}
	return w.loop(ctx)
}

// watchLoop is the state of one e2e:watch.
type watchLoop struct {
	t       *Testbed // the watch's own: its once holds the images built, kept between runs
	service string
	out     io.Writer
	suites  *suiteCache      // the suite compiled, kept until its inputs change
	held    bool             // the service's cluster exists: runs connect to it
	inputs  []affected.Input // the service's (ci:affected's map)
	topo    affected.Path    // the topology file: a save reloads it
	poller  *watch.Poller
	// nodeImages is what the cluster's nodes hold, listed once and kept
	// up to date by the runs' loads.
	nodeImages *nodeImages
}

// scan reads what the service is made from and starts watching it.
func (w *watchLoop) scan(ctx context.Context) error {
	all, err := w.t.inputs(ctx)
	if err != nil {
		return err
	}
	topo, err := filepath.Rel(w.t.Opts.Root, w.t.Opts.Topology)
	if err != nil {
		return err
	}
	w.topo, w.inputs = affected.File(topo), nil
	for _, in := range all {
		if in.Services != nil && slices.Contains(in.Services, w.service) {
			w.inputs = append(w.inputs, in)
		}
	}
	paths := []affected.Path{w.topo}
	for _, in := range w.inputs {
		paths = append(paths, in.Paths...)
	}
	if w.poller == nil {
		w.poller = &watch.Poller{Root: w.t.Opts.Root}
	}
	return w.poller.Start(paths)
}

// iteration is one run in flight.
type iteration struct {
	cancel context.CancelFunc
	done   chan runOutcome
}

type runOutcome struct {
	res *engine.Result
	err error
}

func (w *watchLoop) loop(ctx context.Context) error {
	pctx, stopPolling := context.WithCancel(ctx)
	changes, pollErr := make(chan watch.Change), make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := w.poller.Next(pctx)
			if err != nil {
				pollErr <- err
				return
			}
			select {
			case changes <- c:
			case <-pctx.Done():
				return
			}
		}
	})
	defer func() { stopPolling(); wg.Wait() }()

	var last *watch.Change // the save the running iteration answers (nil: the first run)
	for {
		it := w.start(ctx)
		select {
		case o := <-it.done:
			it.cancel()
			w.report(o, last)
			fmt.Fprintf(w.out, "e2e:watch %s: watching %d files; save one to run again, Ctrl-C to end\n", w.service, w.poller.Len())
			select {
			case c := <-changes:
				last = w.changed(ctx, c)
			case err := <-pollErr:
				return ignoreEnd(ctx, err)
			case <-ctx.Done():
				return nil
			}
		case c := <-changes:
			fmt.Fprintf(w.out, "e2e:watch %s: %s changed during the run: starting again\n", w.service, strings.Join(c.Files, ", "))
			it.cancel()
			<-it.done
			last = w.changed(ctx, c)
		case err := <-pollErr:
			it.cancel()
			<-it.done
			return ignoreEnd(ctx, err)
		case <-ctx.Done():
			it.cancel()
			<-it.done
			return nil
		}
	}
}

// ignoreEnd is err unless it is the end of ctx.
func ignoreEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

// start runs the service once: the whole E2E (kept) until the cluster
// exists, then PartsWatch on it.
func (w *watchLoop) start(ctx context.Context) *iteration {
	opts := w.t.Opts
	// Kept, and reused: a first run cut short may have left the cluster
	// it was making (the watch's own: it refused one testbed did not make).
	opts.KeepCluster, opts.ReuseCluster = true, true
	parts := PartsWatch
	if !w.held {
		parts = PartsE2E
	}
	tb := w.t.variant(w.t.Topo, opts, w.out)
	rctx, cancel := context.WithCancel(ctx)
	it := &iteration{cancel: cancel, done: make(chan runOutcome, 1)}
	go func() {
		res, err := tb.run(rctx, w.service, parts, runEnv{out: w.out, suites: w.suites, noInline: true, nodeImages: w.nodeImages})
		it.done <- runOutcome{res, err}
	}()
	return it
}

// changed takes a change in: the images whose inputs it touches are
// rebuilt by the next run, and a changed topology is read again.
func (w *watchLoop) changed(ctx context.Context, c watch.Change) *watch.Change {
	fmt.Fprintf(w.out, "\ne2e:watch %s: %s saved\n", w.service, strings.Join(c.Files, ", "))
	if slices.ContainsFunc(c.Files, w.topo.Match) {
		w.reload(ctx) // every image and the suite forgotten
		return &c
	}
	for _, in := range w.inputs {
		if !slices.ContainsFunc(c.Files, func(f string) bool {
			return slices.ContainsFunc(in.Paths, func(p affected.Path) bool { return p.Match(f) })
		}) {
			continue
		}
		switch {
		case in.Image != "":
			w.t.once.images.forget(in.Image)
		case in.Suite:
			w.suites.bins.forget(w.t.Topo.Services[w.service].Suite)
		}
	}
	return &c
}

// reload reads the topology again; one that does not load is shown and
// the watch goes on with the one before.
func (w *watchLoop) reload(ctx context.Context) {
	topo, err := Load(w.t.Opts)
	if err == nil {
		_, err = topo.Topo.Service(w.service)
	}
	if err != nil {
		fmt.Fprintf(w.out, "e2e:watch %s: the topology does not load, so the run uses the one before: %v\n", w.service, err)
		return
	}
	w.t = w.t.variant(topo.Topo, w.t.Opts, w.t.Out)
	w.t.once = &processOnce{} // an image's definition may have changed
	w.suites.bins = onceMap[compiledSuite]{}
	if err := w.scan(ctx); err != nil {
		fmt.Fprintf(w.out, "e2e:watch %s: %v\n", w.service, err)
	}
}

// report prints a run's verdict and, after a save, the time from it to the
// suite's start and to the verdict.
func (w *watchLoop) report(o runOutcome, save *watch.Change) {
	if o.res != nil && !w.held {
		// The first run made (or reused) the cluster and kept it.
		for _, st := range o.res.Steps {
			if st.Name == stepCluster && st.State == engine.Done {
				w.held = true
			}
		}
	}
	verdict := "passed"
	if o.err != nil {
		verdict = "FAILED: " + o.err.Error()
	}
	if o.res == nil || save == nil {
		fmt.Fprintf(w.out, "e2e:watch %s: %s\n", w.service, verdict)
		return
	}
	fmt.Fprintf(w.out, "e2e:watch %s: %s; %s\n", w.service, verdict, fromSave(o.res, w.service, save.Saved))
}

// fromSave says how long after saved the suite started and ended.
func fromSave(res *engine.Result, service string, saved time.Time) string {
	for _, st := range res.Steps {
		if st.Name != "suite "+service || st.State == engine.Skipped {
			continue
		}
		start := res.Started.Add(st.Start)
		return fmt.Sprintf("from the save: suite started after %s, verdict after %s (suite %s)",
			start.Sub(saved).Round(10*time.Millisecond), start.Add(st.Duration()).Sub(saved).Round(10*time.Millisecond), st.Duration().Round(10*time.Millisecond))
	}
	return fmt.Sprintf("from the save: ended after %s, before the suite", res.Started.Add(res.Total).Sub(saved).Round(10*time.Millisecond))
}

// deleteMade deletes the service's cluster when testbed made it: the
// watch found none, so the one there now is the watch's.
func (w *watchLoop) deleteMade(ctx context.Context) {
	c, err := w.t.serviceCluster(w.service, w.out)
	if err != nil || !c.Made() {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if ok, err := c.Exists(dctx); err != nil || !ok {
		return
	}
	fmt.Fprintf(w.out, "e2e:watch %s: deleting cluster %s, which it made\n", w.service, c.Name)
	if err := c.Delete(dctx, w.out); err != nil {
		fmt.Fprintf(w.out, "e2e:watch %s: deleting %s: %v\n", w.service, c.Name, err)
	}
}
