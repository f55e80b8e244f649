package targets

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/testbed-dev/testbed"
)

// Registry manages testbed's local registry (E2E_REGISTRY=local).
type Registry mg.Namespace

// Start starts testbed's local registry (testbed-registry on 127.0.0.1:5001), or finds it running; E2E_REGISTRY=local runs start it themselves.
func (Registry) Start(ctx context.Context) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error { return tb.StartRegistry(ctx) })
}

// Rm removes testbed's local registry and what it holds (a container of that name testbed did not make is left).
func (Registry) Rm(ctx context.Context) error {
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error { return tb.RemoveRegistry(ctx) })
}
