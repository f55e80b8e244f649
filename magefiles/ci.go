//go:build mage

package main

import (
	"os"

	"github.com/magefile/mage/mg"
)

// Ci serves the GitHub Actions workflow.
type Ci mg.Namespace

// Matrix prints the services of the topology as a GitHub Actions matrix (JSON).
func (Ci) Matrix() error {
	tb, err := load()
	if err != nil {
		return err
	}
	return tb.WriteMatrix(os.Stdout)
}
