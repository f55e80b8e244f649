package targets

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/testbed-dev/testbed"
)

// Build builds images.
type Build mg.Namespace

// Images builds a service's images, one at a time unless E2E_BUILD_CONCURRENCY is set; unchanged ones are cached.
func (Build) Images(ctx context.Context, service string) error {
	return run(ctx, service, testbed.PartsBuild)
}
