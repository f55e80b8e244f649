//go:build mage

// Targets of testbed. Each is a few lines over internal/testbed; the
// environment knobs are listed by `go run magefile.go -l` and in README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/magefile/mage/mg"

	"github.com/testbed-dev/testbed/internal/cmdline"
	"github.com/testbed-dev/testbed/internal/testbed"
)

// load reads the knobs and the topology of the repository mage runs in.
func load() (*testbed.Testbed, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, testbed.TopologyFile)); err == nil {
			tb, err := testbed.New(d)
			if err == nil {
				tb.Commands = cmdline.Commands
				tb.StepSummary = os.Getenv("GITHUB_STEP_SUMMARY")
			}
			return tb, err
		}
		if filepath.Dir(d) == d {
			return nil, &testbed.InputError{Err: fmt.Errorf("no %s in %s or above: run mage in the testbed repository", testbed.TopologyFile, dir)}
		}
	}
}

// do runs a target's work with testbed's interrupt handling (a first
// Ctrl-C cleans up fully, mage's own handler would exit after 5 s) and maps
// its error to the exit code: 1 failure, 2 bad input, 130 interrupted.
func do(ctx context.Context, f func(context.Context, *testbed.Testbed) error) error {
	ctx, stop := cmdline.CatchInterrupt(ctx, os.Stderr)
	defer stop()
	tb, err := load()
	if err == nil {
		err = f(ctx, tb)
	}
	if code := cmdline.ExitCode(ctx, err); code != 0 {
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
