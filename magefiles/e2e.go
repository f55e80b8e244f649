//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/testbed-dev/testbed/internal/testbed"
)

// E2e runs a service's E2E suite in a fresh environment.
type E2e mg.Namespace

// Datastorage builds, creates the cluster, deploys and runs datastorage's suite, then deletes the cluster (E2E_KEEP_CLUSTER=1 keeps it).
func (E2e) Datastorage(ctx context.Context) error {
	return run(ctx, "datastorage", testbed.PartsE2E)
}

// Gateway builds, creates the cluster, deploys gateway's stack (CRDs, PostgreSQL, Redis, migrations, datastorage, gateway) and runs its suite, then deletes the cluster.
func (E2e) Gateway(ctx context.Context) error {
	return run(ctx, "gateway", testbed.PartsE2E)
}
