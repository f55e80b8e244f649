package targets

import (
	"context"
	"fmt"
	"strconv"

	"github.com/magefile/mage/mg"

	"github.com/testbed-dev/testbed"
	"github.com/testbed-dev/testbed/internal/cmdline"
)

// Bench measures setups side by side.
type Bench mg.Namespace

// Deploy times deploy-and-wait of a service's stack in sequential, phased and dataflow modes on its existing cluster, n runs each.
func (Bench) Deploy(ctx context.Context, service, n string) error {
	runs, err := strconv.Atoi(n)
	if err != nil || runs < 1 {
		return mg.Fatal(cmdline.ExitInput, fmt.Sprintf("n=%q: give the number of runs per mode, at least 1", n))
	}
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error { return tb.BenchDeploy(ctx, service, runs) })
}

// Setup times a service's whole setup (fresh cluster each run, builds cached) in sequential, phased and dataflow modes, n runs each (in testbed's repository "synthetic" is a stack with known delays).
func (Bench) Setup(ctx context.Context, service, n string) error {
	runs, err := strconv.Atoi(n)
	if err != nil || runs < 1 {
		return mg.Fatal(cmdline.ExitInput, fmt.Sprintf("n=%q: give the number of runs per mode, at least 1", n))
	}
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error { return tb.BenchSetup(ctx, service, runs) })
}

// Soak runs a service's full E2E n times back to back (fresh cluster each), reporting failures and the spread of the times; logs under E2E_ARTIFACTS/<service>/soak.
func (Bench) Soak(ctx context.Context, service, n string) error {
	runs, err := strconv.Atoi(n)
	if err != nil || runs < 1 {
		return mg.Fatal(cmdline.ExitInput, fmt.Sprintf("n=%q: give the number of runs, at least 1", n))
	}
	return do(ctx, func(ctx context.Context, tb *testbed.Testbed) error { return tb.BenchSoak(ctx, service, runs) })
}
