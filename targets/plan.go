package targets

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/testbed-dev/testbed"
)

// Plan shows the plans testbed runs.
type Plan mg.Namespace

// Show prints a service's plan (steps, needs, classes) in each mode.
func (Plan) Show(ctx context.Context, service string) error {
	return do(ctx, func(_ context.Context, tb *testbed.Testbed) error { return tb.Show(os.Stdout, service) })
}
