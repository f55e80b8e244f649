package targets

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/testbed-dev/testbed"
)

// E2e runs a service's E2E suite in a fresh environment.
type E2e mg.Namespace

// All runs every service's E2E, E2E_PARALLEL at once, on one cluster (E2E_ONE_CLUSTER=0: a cluster each), each image built and loaded once; a summary table at the end, non-zero exit if any failed.
func (E2e) All(ctx context.Context) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error {
		_, err := tb.All(ctx, tb.Opts.Parallel, tb.Opts.FailFast)
		return err
	})
}

// Run runs the E2E of any service of the topology (E2E_TOPOLOGY picks another topology file): e2e:run <service>.
func (E2e) Run(ctx context.Context, service string) error {
	return run(ctx, service, testbed.PartsE2E)
}

// Watch is the inner loop: runs a service's E2E on a cluster it keeps, then again on every save to what the service is made from (its images' Go packages and Dockerfiles, its manifests, its suite), rebuilding only what changed; prints each verdict with the time from the save. Ctrl-C ends it and deletes the cluster if it made it.
func (E2e) Watch(ctx context.Context, service string) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error { return tb.Watch(ctx, service) })
}
