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

// Push builds a service's images and pushes them to IMAGE_REGISTRY with tag IMAGE_TAG, for runs that only pull (IMAGE_REGISTRY and IMAGE_TAG set there too).
func (Build) Push(ctx context.Context, service string) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error { return tb.Push(ctx, service) })
}
