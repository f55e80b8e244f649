package testbed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/registry"
	"github.com/testbed-dev/testbed/internal/testenv"
	"github.com/testbed-dev/testbed/topology"
)

// registryFixture is the example consumer's topology in the reference
// platform's scope (its clusters are testbed-web, never touched by the
// example's own cluster:prune), with testbed's local registry running.
func registryFixture(t *testing.T, opts Options) *Testbed {
	t.Helper()
	docker, nodeImage := testenv.RequireKind(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out strings.Builder
	if err := registry.Ensure(ctx, docker, ".", &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	topo, err := topology.Load("examples/hello/testbed.yaml", "examples/hello")
	if err != nil {
		t.Fatal(err)
	}
	topo.Name = "testbed"
	opts.Root, opts.NodeImage, opts.Artifacts = "examples/hello", nodeImage, t.TempDir()
	opts.BuildConcurrency, opts.BuildTimeout, opts.Timeout, opts.SuiteTimeout = 1, 5*time.Minute, 3*time.Minute, 3*time.Minute
	tb := New(topo, opts)
	tb.Out = &strings.Builder{}
	return tb
}

// TestPushThenTheRegistryHoldsTheTag: build:push writes each built image
// of the service at IMAGE_TAG; the run's check then finds them, and finds
// nothing at another tag.
func TestPushThenTheRegistryHoldsTheTag(t *testing.T) {
	tag := fmt.Sprintf("push-%d", time.Now().UnixNano())
	tb := registryFixture(t, Options{Registry: registry.Host, Tag: tag})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := tb.Push(ctx, "web"); err != nil {
		t.Fatalf("%v\n%s", err, tb.Out)
	}
	refs := []string{registry.Host + "/store:" + tag, registry.Host + "/web:" + tag}
	if err := registry.Check(ctx, refs); err != nil {
		t.Fatalf("after build:push: %v\n%s", err, tb.Out)
	}
	if err := registry.Check(ctx, []string{registry.Host + "/web:" + tag + "-other"}); err == nil {
		t.Fatal("the check found an image at a tag nobody pushed")
	}
}

// TestWrongTagFailsFast runs e2e:web with an IMAGE_TAG nobody pushed: the
// run must fail at the registry check without waiting for the cluster
// (create is cut short or never starts, whatever the machine's load),
// naming the image, the tag and the registry, and leave no cluster.
func TestWrongTagFailsFast(t *testing.T) {
	tag := fmt.Sprintf("never-pushed-%d", time.Now().UnixNano())
	tb := registryFixture(t, Options{Registry: registry.Host, Tag: tag})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	res, err := tb.Run(ctx, "web", PartsE2E)
	failed := time.Since(t0)
	if err == nil {
		t.Fatal("a run with a tag nobody pushed passed")
	}
	for _, want := range []string{registry.Host + "/web:" + tag, "the registry " + registry.Host, "web:" + tag} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q: %v", want, err)
		}
	}
	var se *engine.StepError
	if !errors.As(err, &se) || se.Step != stepCheckImages {
		t.Errorf("the run failed at %v, want at %q", err, stepCheckImages)
	}
	if res == nil {
		t.Fatal("no timeline")
	}
	for _, s := range res.Steps {
		if s.Name == stepCluster && s.State == engine.Done {
			t.Errorf("%q finished (%s) before the failed check ended the run: the cluster was waited for", s.Name, s.Duration())
		}
	}
	t.Logf("failed after %s (cleanup included): %v", failed.Round(100*time.Millisecond), err)
	c, _ := tb.scope().Open(tb.scope().NameFor("web"), nil)
	if ok, err := c.Exists(context.Background()); err != nil || ok {
		t.Errorf("cluster %s left behind (%v)", c.Name, err)
	}
}
