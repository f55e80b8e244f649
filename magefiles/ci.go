//go:build mage

package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/testbed-dev/testbed/internal/testbed"
)

// Ci serves the GitHub Actions workflow.
type Ci mg.Namespace

// Matrix prints the services of the topology as a GitHub Actions matrix (JSON).
func (Ci) Matrix(ctx context.Context) error {
	return do(ctx, func(_ context.Context, tb *testbed.Testbed) error { return tb.WriteMatrix(os.Stdout) })
}
