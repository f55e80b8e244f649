package testbed

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/testbed-dev/testbed/topology"
)

// TestImageKeysFollowTheirInputs: each archive's key changes with what
// goes into it and with nothing else (the node image leaves the platform
// key alone, a third-party image the platform key too), and is the same
// when computed twice.
func TestImageKeysFollowTheirInputs(t *testing.T) {
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Load(filepath.Join(root, TopologyFile), root)
	if err != nil {
		t.Fatal(err)
	}
	keys := func(node string) ImageKeys {
		t.Helper()
		tb := &Testbed{Opts: Options{Root: root, NodeImage: node, Bake: true}, Topo: topo}
		k, err := tb.ImageKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a, again := keys("kindest/node:a"), keys("kindest/node:a")
	if a != again {
		t.Fatalf("the same inputs gave %v, then %v", a, again)
	}
	b := keys("kindest/node:b")
	if b.Platform != a.Platform || b.Node == a.Node {
		t.Errorf("another node image: %v → %v; want the node key alone to change", a, b)
	}
	t.Setenv("E2E_POSTGRES_IMAGE", "postgres:other")
	c := keys("kindest/node:a")
	if c.Platform != a.Platform || c.Node == a.Node {
		t.Errorf("another PostgreSQL image: %v → %v; want the node key alone to change", a, c)
	}
	img := *topo.Images["gateway"]
	img.Args = map[string]string{"X": "1"}
	saved := topo.Images["gateway"]
	topo.Images["gateway"] = &img
	defer func() { topo.Images["gateway"] = saved }()
	d := keys("kindest/node:a")
	if d.Platform == c.Platform || d.Node != c.Node {
		t.Errorf("a build argument of gateway's image: %v → %v; want the platform key alone to change", c, d)
	}
}
