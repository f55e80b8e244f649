package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad: no topology file makes Load panic, and one it accepts has
// names that stay valid host names, Kubernetes names and single path
// elements. Seeded with the reference platform's topology, the example's
// and every bad case.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"../deploy/topology.yaml", "../examples/hello/testbed.yaml", "../deploy/bench/topology.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(base)
	for _, c := range badCases {
		f.Add(strings.Replace(base, c.edit, c.from, 1))
	}
	// One repository for every input: m/ (a kustomize base) and a Dockerfile.
	root := f.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "m"), 0o755); err != nil {
		f.Fatal(err)
	}
	for p, body := range map[string]string{"m/kustomization.yaml": "resources: []\n", "Dockerfile": "FROM scratch\n"} {
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, body string) {
		path := filepath.Join(t.TempDir(), "topology.yaml")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		topo, err := Load(path, root)
		if err != nil {
			return
		}
		for name, s := range topo.Services {
			if s == nil || label(name, MaxServiceName(topo.Name)) != nil || !filepath.IsLocal(name) {
				t.Fatalf("accepted service %q (%v)", name, s)
			}
			node := topo.Name + "-" + name + "-warm-abcdef-control-plane"
			if len(node) > maxHostLabel {
				t.Fatalf("accepted service %q: node name %q is too long", name, node)
			}
			if strings.HasPrefix(s.Suite, "-") {
				t.Fatalf("accepted suite %q", s.Suite)
			}
		}
		for name, img := range topo.Images {
			if img == nil || label(name, maxHostLabel) != nil {
				t.Fatalf("accepted image %q (%v)", name, img)
			}
			for _, b := range img.Binaries {
				if !filepath.IsLocal(b.Name) || strings.ContainsAny(b.Name, `/\`) || strings.HasPrefix(b.Name, "-") || strings.HasPrefix(b.Package, "-") {
					t.Fatalf("accepted binary %+v of image %s", b, name)
				}
			}
		}
		for name, c := range topo.Components {
			if c == nil || label(name, maxHostLabel) != nil {
				t.Fatalf("accepted component %q (%v)", name, c)
			}
		}
		if label(topo.Namespace, maxHostLabel-runNamespaceSuffix) != nil {
			t.Fatalf("accepted namespace %q", topo.Namespace)
		}
	})
}
