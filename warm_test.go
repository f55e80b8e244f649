package testbed

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/testenv"
	"github.com/testbed-dev/testbed/topology"
)

// TestStaleWarmClusterIsNotUsed: a warm cluster made from another node
// image or kind config (its shape differs), or older than
// E2E_WARM_MAX_AGE, is discarded (its state removed, the cluster deleted)
// and not claimed; and the shape does change with the node image and
// with the kind config.
func TestStaleWarmClusterIsNotUsed(t *testing.T) {
	_, nodeImage := testenv.RequireKind(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	service, dir := rerunFixture(t, "itest-stale")
	topo := loadFixture(t, dir)
	var out bytes.Buffer
	tb := &Testbed{Opts: Options{Root: ".", NodeImage: nodeImage, Warm: true, WarmMaxAge: time.Hour, BuildConcurrency: 1}, Topo: topo, Out: &out}
	// Its build steps never run here: its compile stays pending, which a
	// stale warm cluster must not wait for (the run would lose the overlap
	// of its cluster's creation with its builds).
	_, r, err := tb.plan(service, PartsE2E, runEnv{out: tb.Out})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	shape, err := r.shape(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		what  string
		shape string
		made  time.Time
		why   string
	}{
		{"another node image or kind config", "0123456789abcdef01234567", time.Now(), "its node image or kind config differ"},
		{"too old", shape, time.Now().Add(-2 * time.Hour), "more than E2E_WARM_MAX_AGE=1h0m0s"},
	} {
		out.Reset()
		name := testScope.WarmName(service)
		if err := testScope.RecordWarm(cluster.Warm{Name: name, Service: service, Shape: tt.shape, Made: tt.made}); err != nil {
			t.Fatal(err)
		}
		short, stop := context.WithTimeout(ctx, 20*time.Second)
		ok, err := r.claimWarm(short, &out)
		stop()
		if ok || err != nil {
			t.Errorf("%s: claimed=%v, %v; want neither claimed nor failed\n%s", tt.what, ok, err, out.String())
		}
		if !strings.Contains(out.String(), "discarding warm cluster "+name+": ") || !strings.Contains(out.String(), tt.why) {
			t.Errorf("%s: output %q, want it discarded because %s", tt.what, out.String(), tt.why)
		}
		if left, _ := testScope.ListWarm(service); len(left) != 0 {
			t.Errorf("%s: still listed after the discard: %+v", tt.what, left)
		}
		if r.cluster.Name != testScope.NameFor(service) || r.made.Load() {
			t.Errorf("%s: the run took the stale cluster %s (made=%v)", tt.what, r.cluster.Name, r.made.Load())
		}
	}

	// A run that compiles claims nothing before its compiles are done, so
	// a compile error leaves the warm cluster to the next run.
	if !r.compiling.pending() {
		t.Fatal("a plan with build steps has no compile pending")
	}
	name := testScope.WarmName(service)
	if err := testScope.RecordWarm(cluster.Warm{Name: name, Service: service, Shape: shape, Made: time.Now()}); err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(ctx, time.Second)
	ok, err := r.claimWarm(short, &out)
	stop()
	if ok || err == nil {
		t.Errorf("with its compile pending: claimed=%v, %v; want it to wait until its context ended", ok, err)
	}
	if left, _ := testScope.ListWarm(service); len(left) != 1 || left[0].Claimed {
		t.Errorf("with its compile pending the run touched the warm cluster: %+v", left)
	}
	// Its compile done, a run discards it as too old: nothing is left.
	if err := testScope.RecordWarm(cluster.Warm{Name: name, Service: service, Shape: shape, Made: time.Now().Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for r.compiling.pending() {
		r.compiling.done()
	}
	if ok, err := r.claimWarm(ctx, &out); ok || err != nil {
		t.Errorf("compiles done, a too-old warm cluster: claimed=%v, %v", ok, err)
	}

	// The shape follows the node image: another image, another shape.
	other := os.Getenv("E2E_REDIS_IMAGE")
	if other == "" {
		other = "redis:7-alpine"
	}
	d, _ := r.docker.peek()
	if _, err := d.ImageInspect(ctx, other); err == nil {
		r.node = other
		if s2, err := r.shape(ctx); err != nil || s2 == shape {
			t.Errorf("the shape does not change with the node image (%s vs %s): %v", s2, shape, err)
		}
		r.node = ""
	} else {
		t.Fatalf("no second image to compare shapes with: %v", err)
	}
	// And the kind config: other ports, another config.
	if cluster.ConfigHash([]topology.Port{{Name: "a", NodePort: 30080}}, true, nil, false) == cluster.ConfigHash([]topology.Port{{Name: "a", NodePort: 30081}}, true, nil, false) {
		t.Error("the kind config hash ignores the ports")
	}
	// And the cluster's shape: a worker more, another config.
	if cluster.ConfigHash(nil, true, nil, false) == cluster.ConfigHash(nil, true, &topology.Cluster{Workers: 1}, false) {
		t.Error("the kind config hash ignores the workers")
	}
}
