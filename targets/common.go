// Package targets is testbed's Mage targets, for a repository to import
// into its magefile:
//
//	//go:build mage
//
//	package main
//
//	import (
//		"context"
//
//		"github.com/magefile/mage/mg"
//
//		//mage:import
//		"github.com/testbed-dev/testbed/targets"
//	)
//
//	// E2e runs a service's E2E suite.
//	type E2e mg.Namespace
//
//	// Web builds, deploys and runs web's suite in a fresh cluster.
//	func (E2e) Web(ctx context.Context) error { return targets.E2E(ctx, "web") }
//
// The imported targets (build:images, cluster:*, deploy:parallel,
// plan:show, e2e:run, e2e:all, ci:*, bench:*) work on the topology file
// Topology names (E2E_TOPOLOGY overrides it), found in the directory mage
// runs in or the nearest one above that holds it. Their knobs are the
// environment variables of testbed.Knobs.
//
// Exit codes: 1 a failure, 2 bad input (testbed.ErrInput), 130 an
// interrupt. The first Ctrl-C cancels the run, which still collects its
// diagnostics and deletes what it made.
package targets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/magefile/mage/mg"

	"github.com/testbed-dev/testbed"
	"github.com/testbed-dev/testbed/internal/cmdline"
)

// Topology is the topology file, relative to the repository root: the
// targets look for it from the directory mage runs in upwards. A magefile
// may set it in an init function.
var Topology = testbed.TopologyFile

// Service names a service of the topology (a type of its own, so that
// mage does not list E2E as a target).
type Service string

// E2E runs a service's E2E in a fresh environment, as e2e:run does: the
// body of a one-line per-service target.
func E2E(ctx context.Context, service Service) error {
	return run(ctx, string(service), testbed.PartsE2E)
}

// load reads the knobs and the topology of the repository mage runs in:
// the nearest directory, from the working one upwards, that holds
// Topology. E2E_TOPOLOGY names another topology file, relative to that
// directory (or absolute).
func load() (*testbed.Testbed, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	env := os.Getenv("E2E_TOPOLOGY")
	for d := dir; ; d = filepath.Dir(d) {
		_, err := os.Stat(filepath.Join(d, Topology))
		if err == nil || (filepath.Dir(d) == d && filepath.IsAbs(env)) {
			if err != nil {
				d = dir // an absolute E2E_TOPOLOGY outside any repository
			}
			opts, err := testbed.OptionsFromEnv(d)
			if err != nil {
				return nil, &testbed.InputError{Err: err}
			}
			if env == "" {
				opts.Topology = filepath.Join(d, Topology)
			}
			tb, err := testbed.Load(opts)
			if err == nil {
				tb.Commands = cmdline.Commands
				tb.StepSummary = os.Getenv("GITHUB_STEP_SUMMARY")
			}
			return tb, err
		}
		if filepath.Dir(d) == d {
			return nil, &testbed.InputError{Err: fmt.Errorf("no %s in %s or above: run mage in a repository with a testbed topology (or set E2E_TOPOLOGY)", Topology, dir)}
		}
	}
}

// do runs a target's work with testbed's interrupt handling (a first
// Ctrl-C cleans up fully, mage's own handler would exit after 5 s) and maps
// its error to the exit code: 1 failure, 2 bad input, 130 interrupted.
func do(ctx context.Context, f func(context.Context, *testbed.Testbed) error) error {
	ctx, stop := cmdline.CatchInterrupt(ctx, os.Stderr, cmdline.RunnerHurry())
	tb, err := load()
	if err == nil {
		err = f(ctx, tb)
	}
	// After stop, the context's cause says for good whether a signal came
	// before the target returned.
	stop()
	if code := cmdline.ExitCode(ctx, err); code != 0 {
		if err == nil {
			err = errors.New("interrupted: the work had ended, and its cleanup ran to the end")
		}
		return mg.Fatal(code, err)
	}
	return nil
}

// run runs parts of a service's environment.
func run(ctx context.Context, service string, parts testbed.Parts) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error {
		_, err := tb.Run(ctx, service, parts)
		return err
	})
}
