//go:build mage

// The reference platform's targets: testbed's own (imported) and one
// e2e:<service> per service of deploy/topology.yaml.
package main

import (
	"context"

	"github.com/magefile/mage/mg"

	//mage:import
	"github.com/testbed-dev/testbed/targets"
)

// E2e runs a service's E2E suite in a fresh environment.
type E2e mg.Namespace

// Datastorage builds, creates the cluster, deploys and runs datastorage's suite, then deletes the cluster (E2E_KEEP_CLUSTER=1 keeps it).
func (E2e) Datastorage(ctx context.Context) error {
	return targets.E2E(ctx, "datastorage")
}

// Gateway builds, creates the cluster, deploys gateway's stack (CRDs, PostgreSQL, Redis, migrations, datastorage, gateway) and runs its suite, then deletes the cluster.
func (E2e) Gateway(ctx context.Context) error {
	return targets.E2E(ctx, "gateway")
}

// Holmesgptapi builds, creates the cluster, deploys holmesgpt-api (the deterministic analysis API) and runs its suite, then deletes the cluster.
func (E2e) Holmesgptapi(ctx context.Context) error {
	return targets.E2E(ctx, "holmesgpt-api")
}

// Signalprocessing builds, creates the cluster, deploys signalprocessing's stack and runs its suite, then deletes the cluster.
func (E2e) Signalprocessing(ctx context.Context) error {
	return targets.E2E(ctx, "signalprocessing")
}

// Aianalysis builds, creates the cluster, deploys aianalysis's stack (with holmesgpt-api) and runs its suite, then deletes the cluster.
func (E2e) Aianalysis(ctx context.Context) error {
	return targets.E2E(ctx, "aianalysis")
}

// Workflowexecution builds, creates the cluster, deploys workflowexecution's stack and runs its suite, then deletes the cluster.
func (E2e) Workflowexecution(ctx context.Context) error {
	return targets.E2E(ctx, "workflowexecution")
}

// Notification builds, creates the cluster, deploys notification's stack and runs its suite, then deletes the cluster.
func (E2e) Notification(ctx context.Context) error {
	return targets.E2E(ctx, "notification")
}

// Remediationorchestrator builds, creates the cluster, deploys the whole remediation pipeline and runs its suite, then deletes the cluster.
func (E2e) Remediationorchestrator(ctx context.Context) error {
	return targets.E2E(ctx, "remediationorchestrator")
}
