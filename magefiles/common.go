//go:build mage

// Targets of testbed. Each is a few lines over internal/testbed; the
// environment knobs are listed by `go run magefile.go -l` and in README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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
			return testbed.New(d)
		}
		if filepath.Dir(d) == d {
			return nil, fmt.Errorf("no %s in %s or above: run mage in the testbed repository", testbed.TopologyFile, dir)
		}
	}
}

// run runs parts of a service's environment.
func run(ctx context.Context, service string, parts testbed.Parts) error {
	tb, err := load()
	if err != nil {
		return err
	}
	_, err = tb.Run(ctx, service, parts)
	return err
}
