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

// Holmesgptapi builds, creates the cluster, deploys holmesgpt-api (the deterministic analysis API) and runs its suite, then deletes the cluster.
func (E2e) Holmesgptapi(ctx context.Context) error {
	return run(ctx, "holmesgpt-api", testbed.PartsE2E)
}

// Signalprocessing builds, creates the cluster, deploys signalprocessing's stack and runs its suite, then deletes the cluster.
func (E2e) Signalprocessing(ctx context.Context) error {
	return run(ctx, "signalprocessing", testbed.PartsE2E)
}

// Aianalysis builds, creates the cluster, deploys aianalysis's stack (with holmesgpt-api) and runs its suite, then deletes the cluster.
func (E2e) Aianalysis(ctx context.Context) error {
	return run(ctx, "aianalysis", testbed.PartsE2E)
}

// Workflowexecution builds, creates the cluster, deploys workflowexecution's stack and runs its suite, then deletes the cluster.
func (E2e) Workflowexecution(ctx context.Context) error {
	return run(ctx, "workflowexecution", testbed.PartsE2E)
}

// Notification builds, creates the cluster, deploys notification's stack and runs its suite, then deletes the cluster.
func (E2e) Notification(ctx context.Context) error {
	return run(ctx, "notification", testbed.PartsE2E)
}

// Remediationorchestrator builds, creates the cluster, deploys the whole remediation pipeline and runs its suite, then deletes the cluster.
func (E2e) Remediationorchestrator(ctx context.Context) error {
	return run(ctx, "remediationorchestrator", testbed.PartsE2E)
}

// All runs every service's E2E, E2E_PARALLEL clusters at once, each image built once; a summary table at the end, non-zero exit if any failed.
func (E2e) All(ctx context.Context) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error {
		_, err := tb.All(ctx, tb.Cfg.Parallel, tb.Cfg.FailFast)
		return err
	})
}

// Run runs the E2E of any service of the topology (E2E_TOPOLOGY picks another topology file): e2e:run <service>.
func (E2e) Run(ctx context.Context, service string) error {
	return run(ctx, service, testbed.PartsE2E)
}
