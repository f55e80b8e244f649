//go:build mage

package main

import (
	"os"

	"github.com/magefile/mage/mg"
)

// Plan shows the plans testbed runs.
type Plan mg.Namespace

// Show prints a service's plan (steps, needs, classes) in each mode.
func (Plan) Show(service string) error {
	tb, err := load()
	if err != nil {
		return err
	}
	return tb.Show(os.Stdout, service)
}
