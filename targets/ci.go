package targets

import (
	"context"
	"fmt"
	"os"
	"strings"

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
// every service; a file nothing claims, every service too (it fails
// closed) unless the topology's ci.ignore names it (a README).
func (Ci) Affected(ctx context.Context, base string) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error {
		return tb.WriteAffected(ctx, base, os.Stdout, os.Stderr)
	})
}

// ImageKeys prints the cache keys of the archives ci:saveImages writes, as
// GitHub Actions step outputs (platform=…, node=…), without building.
func (Ci) ImageKeys(ctx context.Context) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error {
		k, err := tb.ImageKeys(ctx)
		if err == nil {
			_, err = fmt.Printf("platform=%s\nnode=%s\n", k.Platform, k.Node)
		}
		return err
	})
}

// SaveImages builds every image once, bakes the node images the services use, and saves them to <dir>/platform.tar and <dir>/node.tar ("platform", "node" or "all") for docker load in each e2e job.
func (Ci) SaveImages(ctx context.Context, dir, archives string) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error {
		var what []string
		if archives != "all" {
			what = strings.Split(archives, ",")
		}
		return tb.SaveImages(ctx, dir, what, os.Stderr)
	})
}
