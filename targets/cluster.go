package targets

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/testbed-dev/testbed"
)

// Cluster manages the kind clusters testbed makes.
type Cluster mg.Namespace

// Create creates a service's kind cluster (node image from E2E_NODE_IMAGE) with its own kubeconfig.
func (Cluster) Create(ctx context.Context, service string) error {
	return run(ctx, service, testbed.PartsCreate)
}

// Load builds (or finds cached) a service's images and loads them, with its third-party images, into its cluster.
func (Cluster) Load(ctx context.Context, service string) error {
	return run(ctx, service, testbed.PartsLoad)
}

// Delete deletes a service's cluster and its kubeconfig; a missing cluster is fine.
func (Cluster) Delete(ctx context.Context, service string) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error { return tb.Delete(ctx, service) })
}

// Prune deletes the clusters testbed made for this topology (warm ones too) and the node images it baked for it; other repositories' clusters are left.
func (Cluster) Prune(ctx context.Context) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error { return tb.Prune(ctx) })
}

// Warm makes n warm clusters of a service ("all": of every service): built, deployed, every component Ready, then paused; e2e:<service> claims one.
func (Cluster) Warm(ctx context.Context, service string, n int) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error { return tb.Warm(ctx, service, n) })
}

// List lists this topology's clusters: warm, in use, or a run's (kept or reused), with the age of warm ones.
func (Cluster) List(ctx context.Context) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error { return tb.List(ctx) })
}
