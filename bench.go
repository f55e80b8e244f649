package testbed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/topology"
)

// BenchDeploy measures deploy-and-wait of a service's stack in each mode on
// its existing cluster: before each run the namespace is deleted, so every
// mode starts from the same empty state; images stay loaded. Runs are
// interleaved (seq, phased, dataflow, seq, …) so drift hits every mode alike.
func (t *Testbed) BenchDeploy(ctx context.Context, service string, n int) error {
	c, err := t.serviceCluster(service, io.Discard)
	if err != nil {
		return err
	}
	if err := c.EnsureKubeconfig(ctx); err != nil {
		return t.hint(err, service)
	}
	k, err := kube.NewClient(c.Kubeconfig)
	if err != nil {
		return err
	}
	k.Manager = kube.ManagerFor(t.Topo.Name)
	modes := []engine.Mode{engine.Sequential, engine.Phased, engine.Dataflow}
	times := map[engine.Mode][]time.Duration{}
	var bounds []time.Duration
	for i := range n {
		for _, m := range modes {
			if err := k.DeleteNamespace(ctx, t.Topo.Namespace); err != nil {
				return fmt.Errorf("resetting namespace %s: %w", t.Topo.Namespace, err)
			}
			o := t.Opts
			o.Mode = m
			res, err := t.variant(t.Topo, o, io.Discard).Run(ctx, service, PartsDeploy)
			if err != nil {
				return fmt.Errorf("run %d, mode %s: %w", i+1, m, err)
			}
			times[m] = append(times[m], res.Makespan)
			if m == engine.Dataflow {
				bounds = append(bounds, res.Analyze().Bound)
			}
			fmt.Fprintf(t.Out, "run %d %-10s makespan %s\n", i+1, m, res.Makespan.Round(100*time.Millisecond))
		}
	}
	writeBenchTable(t.Out, fmt.Sprintf("deploy:parallel %s, %d run(s) per mode, same cluster", service, n), modes, times, bounds)
	return nil
}

// writeBenchTable prints makespans per mode, each mode's ratio to dataflow,
// and dataflow's lower bound and efficiency (bound ÷ makespan, per run).
func writeBenchTable(w io.Writer, title string, modes []engine.Mode, times map[engine.Mode][]time.Duration, bounds []time.Duration) {
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
	df := median(times[engine.Dataflow])
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\n%s\nmode\tmedian\tmin\tmax\t× dataflow\n", title)
	for _, m := range modes {
		ts := times[m]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\n", m, r(median(ts)), r(slices.Min(ts)), r(slices.Max(ts)), float64(median(ts))/float64(df))
	}
	tw.Flush()
	var effs []float64
	for i, b := range bounds {
		effs = append(effs, float64(b)/float64(times[engine.Dataflow][i]))
	}
	slices.Sort(effs)
	fmt.Fprintf(w, "dataflow: lower bound %s (median), efficiency (bound ÷ makespan of the same run) median %.2f, min %.2f\n",
		r(median(bounds)), effs[len(effs)/2], effs[0])
}

func median(ts []time.Duration) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchTopology holds benchmark-only services (the synthetic stack).
const benchTopology = "deploy/bench/topology.yaml"

// BenchSetup measures a service's whole setup (build, fresh cluster, load,
// deploy; no suite) in each mode, n times, interleaved. A warm-up build
// first makes every mode's builds "cached", so the modes differ only in
// scheduling; with Opts.Rebuild every run builds instead (bench:setup
// heavy: builds that take as long as the origin's). Timelines go to E2E_ARTIFACTS/<service>/bench/<mode>-<run>/.
func (t *Testbed) BenchSetup(ctx context.Context, service string, n int) error {
	t.initOnce()
	topo := t.Topo
	if _, ok := t.Topo.Services[service]; !ok {
		if bt, err := topology.Load(filepath.Join(t.Opts.Root, benchTopology), t.Opts.Root); err == nil && bt.Services[service] != nil {
			topo = bt
		}
	}
	if _, err := topo.Service(service); err != nil {
		return &InputError{err}
	}
	quiet := t.Opts
	quiet.Warm = false // a fresh cluster per run: warm clusters are the column of their own
	builds := "build cached"
	if t.Opts.Rebuild {
		// Every run builds, as when the code changed: what overlapping the
		// builds with the cluster buys shows.
		builds = "every image rebuilt (E2E_REBUILD=1)"
		fmt.Fprintf(t.Out, "bench:setup %s: every run rebuilds its images (E2E_REBUILD=1); a fresh cluster per run\n", service)
	} else {
		if _, err := t.variant(topo, quiet, io.Discard).Run(ctx, service, PartsBuild); err != nil {
			return fmt.Errorf("warm-up build: %w", err)
		}
		fmt.Fprintf(t.Out, "bench:setup %s: builds cached by a warm-up build; a fresh cluster per run\n", service)
	}
	modes := []engine.Mode{engine.Sequential, engine.Phased, engine.Dataflow}
	times := map[engine.Mode][]time.Duration{}
	var bounds, warm []time.Duration
	setup := Parts{Build: true, Create: true, Load: true, Deploy: true, Destroy: true}
	for i := range n {
		for _, m := range modes {
			o := quiet
			o.Mode, o.KeepCluster, o.ReuseCluster = m, false, false
			var out bytes.Buffer
			res, err := t.variant(topo, o, &out).Run(ctx, service, setup)
			base, aerr := artifacts(t.Opts, service)
			dir := filepath.Join(base, "bench", fmt.Sprintf("%s-%d", m, i+1))
			if res != nil && aerr == nil {
				if _, serr := res.Save(dir); serr == nil {
					_ = os.WriteFile(filepath.Join(dir, "output.txt"), out.Bytes(), 0o644)
				}
			}
			if err != nil {
				return fmt.Errorf("run %d, mode %s (output in %s): %w", i+1, m, dir, err)
			}
			times[m] = append(times[m], res.Makespan)
			if m == engine.Dataflow {
				bounds = append(bounds, res.Analyze().Bound)
			}
			fmt.Fprintf(t.Out, "run %d %-10s makespan %s (lower bound %s)\n", i+1, m, res.Makespan.Round(100*time.Millisecond), res.Analyze().Bound.Round(100*time.Millisecond))
		}
		// The warm column, after the fresh runs (the first of which refuses
		// an existing cluster before anything is made): a warm cluster made
		// untimed, as cluster:warm makes it ahead of time, then the same
		// setup claiming it.
		if err := t.variant(topo, quiet, io.Discard).Warm(ctx, service, 1); err != nil {
			return fmt.Errorf("run %d, warming: %w", i+1, err)
		}
		o := quiet
		o.Mode, o.Warm = engine.Dataflow, true
		res, err := t.variant(topo, o, io.Discard).Run(ctx, service, setup)
		if err != nil {
			return fmt.Errorf("run %d, warm: %w", i+1, err)
		}
		warm = append(warm, res.Makespan)
		fmt.Fprintf(t.Out, "run %d %-10s makespan %s\n", i+1, "warm", res.Makespan.Round(100*time.Millisecond))
	}
	writeBenchTable(t.Out, fmt.Sprintf("setup of %s (%s, fresh cluster, load, deploy, wait), %d run(s) per mode", service, builds, n), modes, times, bounds)
	fmt.Fprintf(t.Out, "warm cluster claimed (dataflow): median %s, min %s, max %s, %.2f × dataflow on a fresh cluster\n",
		median(warm).Round(100*time.Millisecond), slices.Min(warm).Round(100*time.Millisecond), slices.Max(warm).Round(100*time.Millisecond),
		float64(median(warm))/float64(median(times[engine.Dataflow])))
	fmt.Fprintf(t.Out, "timelines: %s\n", filepath.Join(t.Opts.Artifacts, service, "bench"))
	return nil
}

// variant is a Testbed for one of a bench's runs: t's commands and
// process cache, with its own topology, options and output. With
// opts.Rebuild it gets a cache of its own: it builds its images itself
// rather than share what an earlier run of the process built.
func (t *Testbed) variant(topo *topology.Topology, opts Options, out io.Writer) *Testbed {
	once := t.once
	if opts.Rebuild || once == nil {
		once = &processOnce{}
	}
	return &Testbed{Opts: opts, Topo: topo, Out: out, Commands: t.Commands, StepSummary: t.StepSummary, once: once}
}

// BenchSoak runs a service's full E2E n times back to back, each with a
// fresh cluster. Each run's output goes to E2E_ARTIFACTS/<service>/soak/
// run-<i>.log; one line per run here, then the failures and the spread of
// the times. It fails when a run failed or left its cluster behind.
func (t *Testbed) BenchSoak(ctx context.Context, service string, n int) error {
	c, err := t.serviceCluster(service, io.Discard)
	if err != nil {
		return err
	}
	base, err := artifacts(t.Opts, service)
	if err != nil {
		return err
	}
	dir := filepath.Join(base, "soak")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var totals, setups, suites []time.Duration
	var failed []string
	for i := 1; i <= n; i++ {
		if ctx.Err() != nil {
			break
		}
		logPath := filepath.Join(dir, fmt.Sprintf("run-%d.log", i))
		f, err := os.Create(logPath)
		if err != nil {
			return err
		}
		o := t.Opts
		o.Warm = false // a fresh cluster each
		t0 := time.Now()
		res, err := t.variant(t.Topo, o, f).Run(ctx, service, PartsE2E)
		f.Close()
		total := time.Since(t0)
		verdict := "passed"
		if err != nil {
			verdict = "FAILED: " + firstLineErr(err).Error()
			failed = append(failed, fmt.Sprintf("run %d (%s)", i, logPath))
		}
		line := fmt.Sprintf("run %2d/%d  %s  total %s", i, n, verdict, total.Round(100*time.Millisecond))
		if res != nil {
			if setup, suite, ok := suiteTimes(res, service); ok {
				line += fmt.Sprintf("  setup %s  suite %s", setup.Round(100*time.Millisecond), suite.Round(100*time.Millisecond))
				if err == nil {
					setups, suites = append(setups, setup), append(suites, suite)
				}
			}
		}
		if err == nil {
			totals = append(totals, total)
		}
		if ok, _ := c.Exists(context.WithoutCancel(ctx)); ok && !t.Opts.KeepCluster {
			failed = append(failed, fmt.Sprintf("run %d left cluster %s", i, t.scope().NameFor(service)))
			line += "  (cluster left behind)"
		}
		fmt.Fprintln(t.Out, line)
	}
	fmt.Fprintf(t.Out, "\nbench:soak %s: %d run(s), %d failure(s)\n", service, n, len(failed))
	tw := tabwriter.NewWriter(t.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "of passed runs\tmedian\tmin\tmax\n")
	for _, m := range []struct {
		name string
		ts   []time.Duration
	}{{"total", totals}, {"setup", setups}, {"suite", suites}} {
		if len(m.ts) > 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.name, median(m.ts).Round(100*time.Millisecond), slices.Min(m.ts).Round(100*time.Millisecond), slices.Max(m.ts).Round(100*time.Millisecond))
		}
	}
	tw.Flush()
	fmt.Fprintf(t.Out, "logs: %s\n", dir)
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if len(failed) > 0 {
		return fmt.Errorf("bench:soak %s: %d of %d runs failed: %v", service, len(failed), n, failed)
	}
	return nil
}
