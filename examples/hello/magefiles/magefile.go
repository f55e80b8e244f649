//go:build mage

// hello's targets: testbed's, imported, and e2e:web.
package main

import (
	"context"

	"github.com/magefile/mage/mg"

	//mage:import
	"github.com/testbed-dev/testbed/targets"
)

func init() { targets.Topology = "testbed.yaml" }

// E2e runs a service's E2E suite.
type E2e mg.Namespace

// Web builds store and web, creates hello-web's cluster, deploys store, then web, and runs web's suite.
func (E2e) Web(ctx context.Context) error { return targets.E2E(ctx, "web") }
