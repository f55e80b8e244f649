package targets

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/testbed-dev/testbed"
)

// Deploy applies a service's environment to its existing cluster.
type Deploy mg.Namespace

// Parallel applies every component to the service's existing cluster, each the moment what it needs is Ready, then waits (E2E_MODE picks the schedule).
func (Deploy) Parallel(ctx context.Context, service string) error {
	return run(ctx, service, testbed.PartsDeploy)
}
