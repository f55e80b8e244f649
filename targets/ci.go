package targets

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/testbed-dev/testbed"
)

// Ci serves the GitHub Actions workflow.
type Ci mg.Namespace

// Matrix prints the services of the topology as a GitHub Actions matrix (JSON).
func (Ci) Matrix(ctx context.Context) error {
	return do(ctx, func(_ context.Context, tb *testbed.Testbed) error { return tb.WriteMatrix(os.Stdout) })
}

// Affected prints, as the matrix ci:matrix prints, the services the changes
// since <base> can affect (git diff <base>...HEAD), and on stderr why each
// one is in it: a changed image input, manifest or suite affects the
// services using it; the topology, go.mod/go.sum or testbed's own code,
// every service; anything else (a README), none.
func (Ci) Affected(ctx context.Context, base string) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error {
		return tb.WriteAffected(ctx, base, os.Stdout, os.Stderr)
	})
}
