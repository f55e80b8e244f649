package cluster

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/testbed-dev/testbed/internal/images"
	"github.com/testbed-dev/testbed/topology"
)

// Every goroutine a test starts, through this package or a client it
// uses, must have ended when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testScope is the scope of the clusters the tests make: the reference
// platform's, so that cluster:prune removes what a killed test left.
const testScope = Scope("testbed")

// openTestCluster opens a cluster of testScope named prefix plus a number
// unique to this run, and deletes it when the test ends.
func openTestCluster(t *testing.T, prefix string) *Cluster {
	t.Helper()
	c, err := testScope.Open(testScope.NameFor(fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%100000)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), io.Discard) })
	return c
}

// buildSleeper builds the repository's testdata image (the sleeper and
// crasher binaries on scratch) as name.
func buildSleeper(ctx context.Context, t *testing.T, docker images.Docker, name string, w io.Writer) images.Built {
	t.Helper()
	b := &images.Builder{Docker: docker, Root: "../..", Timeout: 5 * time.Minute}
	built, err := b.Build(ctx, name, &topology.Image{Dockerfile: "testdata/Dockerfile", Binaries: []topology.Binary{
		{Name: "sleeper", Package: "./testdata/sleeper"}, {Name: "crasher", Package: "./testdata/crasher"},
	}}, w)
	if err != nil {
		t.Fatal(err)
	}
	return built
}
