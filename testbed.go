package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/topology"
)

// TopologyFile is the topology's default path inside the repository
// (E2E_TOPOLOGY changes it).
const TopologyFile = "deploy/topology.yaml"

// Testbed is the configured platform.
type Testbed struct {
	Opts Options
	Topo *topology.Topology
	// Out receives the run's output (stderr by default).
	Out io.Writer

	// Commands names, in messages, the commands that do what a message
	// advises; the command layer sets it (its own target names).
	Commands Commands

	// StepSummary, when set, is a Markdown file each run's timeline is
	// appended to as a mermaid gantt. The command layer sets it from
	// GITHUB_STEP_SUMMARY; the library never reads that variable, so
	// testbed's own tests write nothing into a CI job's summary.
	StepSummary string

	once *processOnce // what the runs of one process do once between them
}

// runEnv is what one run is given besides its Testbed: where its output
// goes and how it is framed, whether it warms a cluster, and in e2e:all
// the cluster it shares and what to call when its suite ends. Run gives
// its run the Testbed's output; All, Warm and the benches give each of
// theirs its own.
type runEnv struct {
	out      io.Writer
	progress io.Writer // a line per step start and end (e2e:all's live view)
	plain    bool      // steps without ::group:: (e2e:all groups whole services)
	warming  bool      // the plan of a warm cluster: made, deployed, paused
	// one is the cluster e2e:all runs this service on with others.
	one *oneCluster
	// suiteDone is called when the service's suite ends: e2e:all then
	// starts the next service while this one's teardown runs.
	suiteDone func()
	// suites keeps compiled suites between runs (e2e:watch); nil: each
	// run compiles its own.
	suites *suiteCache
	// noInline compiles the repository's packages without inlining
	// (e2e:watch: a save's compile in 0.6× the time).
	noInline bool
	// nodeImages is what the held cluster's nodes hold (e2e:watch): listed
	// by its first run, kept up to date by each load, so that a save's
	// run asks the nodes nothing (a crictl call cost 0.4 s a save here).
	nodeImages *nodeImages
}

// Commands are the command lines (with %s for the service) a message
// advises; empty ones are left out of the message.
type Commands struct {
	Create string // creates a service's cluster
	Delete string // deletes a service's cluster
}

// hint wraps err with the command that deals with it, when there is one.
func (t *Testbed) hint(err error, service string) error {
	var cmd string
	switch {
	case errors.Is(err, cluster.ErrBusy):
		return err // its own run deletes it
	case errors.Is(err, cluster.ErrExists):
		cmd = t.Commands.Delete
	case errors.Is(err, cluster.ErrMissing):
		cmd = t.Commands.Create
	}
	if cmd == "" || err == nil {
		return err
	}
	return fmt.Errorf("%w\n  run: %s", err, fmt.Sprintf(cmd, service))
}

// New returns a Testbed of the topology with the options. It reads no
// environment variable: a command layer fills opts with OptionsFromEnv.
func New(topo *topology.Topology, opts Options) *Testbed {
	return &Testbed{Opts: opts, Topo: topo, Out: os.Stderr, once: &processOnce{}}
}

// Load returns a Testbed of the topology file opts.Topology names, its
// paths relative to opts.Root. Its errors are bad input (ErrInput).
func Load(opts Options) (*Testbed, error) {
	topo, err := topology.Load(opts.Topology, opts.Root)
	if err != nil {
		return nil, &InputError{err}
	}
	return New(topo, opts), nil
}

// scope is the clusters of the topology: named <name>-<service>, their
// state under the user's cache in testbed/<name>.
func (t *Testbed) scope() cluster.Scope { return cluster.Scope(t.Topo.Name) }

// inGitHubActions reports a step of a GitHub Actions job (GITHUB_ACTIONS,
// which every runner sets).
func inGitHubActions() bool { return os.Getenv("GITHUB_ACTIONS") == "true" }

// style picks the output framing: GitHub Actions groups, a live status line
// on a terminal, plain lines otherwise.
func (env runEnv) style() engine.Style {
	if env.plain {
		return engine.Plain
	}
	if inGitHubActions() {
		return engine.GitHub
	}
	if f, ok := env.out.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		return engine.Live
	}
	return engine.Plain
}

// Run runs the parts of a service's E2E environment, prints the timeline,
// and writes it under E2E_ARTIFACTS/<service>.
func (t *Testbed) Run(ctx context.Context, service string, parts Parts) (*engine.Result, error) {
	return t.run(ctx, service, parts, runEnv{out: t.Out})
}

// run is Run with the run's own output and framing.
func (t *Testbed) run(ctx context.Context, service string, parts Parts, env runEnv) (*engine.Result, error) {
	p, r, err := t.plan(service, parts, env)
	if err != nil {
		return nil, err
	}
	defer r.close()
	out := env.out
	fmt.Fprintf(out, "testbed: %s, mode %s, %s\n", service, t.Opts.Mode, r.source.describe(r))
	// The timeline is written before each teardown step too: killed while
	// deleting its cluster, a run still leaves it.
	dir, err := artifacts(r.cfg, r.name)
	if err != nil {
		return nil, &InputError{err}
	}
	checkpoint := func(res *engine.Result) { res.Save(dir) }
	res, err := engine.Run(ctx, p, engine.Options{Mode: t.Opts.Mode, Out: out, Style: env.style(), Progress: env.progress, Checkpoint: checkpoint})
	if res == nil {
		return nil, err
	}
	fmt.Fprintln(out)
	res.WriteGantt(out)
	if paths, serr := res.Save(dir); serr != nil {
		err = errors.Join(err, serr)
	} else {
		fmt.Fprintf(out, "  timeline: %s\n", paths[0])
	}
	if !r.source.sharedCluster() && (parts.Create || parts.Deploy) {
		// Whatever is left now is left on purpose: kept, or not this run's.
		if ok, _ := r.cluster.Exists(context.WithoutCancel(ctx)); ok {
			fmt.Fprintf(out, "  cluster %s is left running (kubeconfig %s)", r.cluster.Name, r.cluster.Kubeconfig)
			switch {
			case !r.cluster.Made():
				fmt.Fprint(out, "; testbed did not make it, so it stays yours to delete")
			case t.Commands.Delete != "":
				fmt.Fprintf(out, "; delete it with: "+t.Commands.Delete, service)
			}
			fmt.Fprintln(out)
		}
	}
	if t.StepSummary != "" {
		if f, ferr := os.OpenFile(t.StepSummary, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); ferr == nil {
			res.WriteMermaid(f)
			f.Close()
		}
	}
	if setup, suite, ok := suiteTimes(res, service); ok {
		fmt.Fprintf(out, "  setup %s (until the suite started), suite %s\n", setup.Round(100*time.Millisecond), suite.Round(100*time.Millisecond))
	}
	verdict := "passed"
	if err != nil {
		verdict = "FAILED"
	}
	fmt.Fprintf(out, "testbed: %s %s in %s\n", service, verdict, res.Total.Round(100*time.Millisecond))
	return res, err
}

// Show prints a service's plan in every mode.
func (t *Testbed) Show(w io.Writer, service string) error {
	p, err := t.Plan(service, PartsE2E)
	if err != nil {
		return err
	}
	for _, m := range []engine.Mode{engine.Dataflow, engine.Phased, engine.Sequential} {
		p.Describe(w, m)
		fmt.Fprintln(w)
	}
	return nil
}

// Delete deletes a service's cluster if testbed made it (a cluster of
// that name made by someone else is refused, ErrInput); a missing cluster
// is not an error.
func (t *Testbed) Delete(ctx context.Context, service string) error {
	c, err := t.serviceCluster(service, t.Out)
	if err != nil {
		return err
	}
	if !c.Made() {
		exists, err := c.Exists(ctx)
		if err != nil {
			return err
		}
		if exists {
			return &InputError{fmt.Errorf("cluster %s: testbed did not make it (no record in its cache directory), so it does not delete it; if it is yours to delete: kind delete cluster --name %s", c.Name, c.Name)}
		}
	}
	return c.Delete(ctx, t.Out)
}

// serviceCluster is a service's kind cluster, <name>-<service> (it may not
// exist); an unknown service is bad input.
func (t *Testbed) serviceCluster(service string, w io.Writer) (*cluster.Cluster, error) {
	if _, err := t.Topo.Service(service); err != nil {
		return nil, &InputError{err}
	}
	return t.scope().Open(t.scope().NameFor(service), w)
}

// Prune deletes the clusters testbed made for this topology (warm ones
// too) and the node images it baked for it, except a cluster a running
// process holds (the run that made or claimed it, still running).
// Clusters whose names merely share the prefix (made by someone else) are
// named and left alone, as is every other topology's.
func (t *Testbed) Prune(ctx context.Context) error {
	names, others, err := t.scope().List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if why, inUse := t.scope().InUse(n); inUse {
			fmt.Fprintf(t.Out, "left %s: %s; prune again when it has ended\n", n, why)
			continue
		}
		c, err := t.scope().Open(n, t.Out)
		if err == nil {
			err = c.Delete(ctx, t.Out)
		}
		errs = append(errs, err)
	}
	if len(names) == 0 {
		fmt.Fprintf(t.Out, "no clusters of %s\n", t.Topo.Name)
	}
	for _, n := range others {
		fmt.Fprintf(t.Out, "left %s: its name starts with %s but testbed did not make it for %s (no made record in its cache directory); delete it with kind if it is yours\n", n, t.scope().Prefix(), t.Topo.Name)
	}
	errs = append(errs, t.pruneBaked(ctx))
	return errors.Join(errs...)
}

// WriteMatrix writes the GitHub Actions matrix of the topology's services:
// {"service":[...]} with each service's mage target name.
func (t *Testbed) WriteMatrix(w io.Writer) error {
	var targets []string
	for _, s := range t.Topo.ServiceNames() {
		targets = append(targets, mageTarget(s))
	}
	b, err := json.Marshal(map[string][]string{"service": targets})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// mageTarget is the e2e target of a service: mage names cannot hold a
// hyphen, and it matches names without regard to case.
func mageTarget(service string) string {
	return strings.ReplaceAll(service, "-", "")
}

// suiteTimes reads from a timeline how long the setup took (until the suite
// started) and how long the suite ran; ok is false when no suite ran.
func suiteTimes(res *engine.Result, service string) (setup, suite time.Duration, ok bool) {
	for _, st := range res.Steps {
		if st.Name == "suite "+service && st.State != engine.Skipped {
			return st.Start, st.Duration(), true
		}
	}
	return 0, 0, false
}
