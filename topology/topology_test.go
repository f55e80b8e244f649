package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepositoryTopologyIsValid(t *testing.T) {
	t.Parallel()
	root := ".."
	topo, err := Load(filepath.Join(root, "deploy", "topology.yaml"), root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topo.Service("datastorage"); err != nil {
		t.Fatal(err)
	}
}

// write makes a topology in a temporary repository with a manifest
// directory m/ and a Dockerfile, and returns its path.
func write(t *testing.T, body string) (path, root string) {
	t.Helper()
	root = t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "m"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "m", "kustomization.yaml"), []byte("resources: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(root, "topology.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, root
}

const base = `namespace: ns
images:
  app: {dockerfile: Dockerfile}
components:
  db: {manifests: m}
  app: {manifests: m, images: [app], needs: [db]}
services:
  app:
    components: [db, app]
    ports: [{name: http, nodePort: 30080, hostPort: 38080}]
    suite: ./e2e
`

func TestValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, edit, from, want string
	}{
		{"valid", "", "", ""},
		{"unknown field with line", "namespace: ns", "namespace: ns\nnamspace: x", "line 2: field namspace not found"},
		{"cycle", "db: {manifests: m}", "db: {manifests: m, needs: [app]}", "cycle of needs: app → db → app"},
		{"missing manifests", "app: {manifests: m,", "app: {manifests: nope,", "component app: manifests nope"},
		{"missing dockerfile", "dockerfile: Dockerfile", "dockerfile: Nope", "image app: dockerfile Nope"},
		{"nodePort range", "nodePort: 30080", "nodePort: 8080", "nodePort 8080 is outside 30000-32767"},
		{"unknown need", "needs: [db]", "needs: [cache]", `needs unknown component "cache"`},
		{"need outside service", "components: [db, app]", "components: [app]", "needs db, which the service does not include"},
		{"host port shared by two services", "    suite: ./e2e\n", "    suite: ./e2e\n  other:\n    components: [db]\n    ports: [{name: x, nodePort: 30081, hostPort: 38080}]\n    suite: ./e2e\n",
			"hostPort 38080 is mapped by services app and other"},
		{"duplicate host port", "ports: [{name: http, nodePort: 30080, hostPort: 38080}]",
			"ports: [{name: http, nodePort: 30080, hostPort: 38080}, {name: b, nodePort: 30081, hostPort: 38080}]", "hostPort 38080 is mapped twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := base
			if tt.edit != "" {
				body = strings.Replace(base, tt.edit, tt.from, 1)
				if body == base {
					t.Fatalf("edit %q did not apply", tt.edit)
				}
			}
			path, root := write(t, body)
			_, err := Load(path, root)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), path):
				t.Errorf("error %v does not name the file", err)
			}
		})
	}
}

func TestUnknownServiceListsValidOnes(t *testing.T) {
	t.Parallel()
	path, root := write(t, base)
	topo, err := Load(path, root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = topo.Service("gatway")
	if err == nil || !strings.Contains(err.Error(), `unknown service "gatway": valid services are app`) {
		t.Errorf("got %v", err)
	}
}

// TestANinthServiceNeedsOnlyTopologyManifestsAndSuite: a service added to
// a topology gets a valid plan without a change to testbed's code.
func TestANinthServiceNeedsOnlyTopologyManifestsAndSuite(t *testing.T) {
	t.Parallel()
	body := base + `  ninth:
    components: [db, app]
    ports: [{name: http, nodePort: 30080, hostPort: 39090}]
    suite: ./e2e/ninth
`
	path, root := write(t, body)
	topo, err := Load(path, root)
	if err != nil {
		t.Fatal(err)
	}
	s, err := topo.Service("ninth")
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.ImagesOf(s); len(got) != 1 || got[0] != "app" {
		t.Errorf("images of the ninth service: %v", got)
	}
}

func TestBenchTopologyIsValid(t *testing.T) {
	t.Parallel()
	root := ".."
	if _, err := Load(filepath.Join(root, "deploy", "bench", "topology.yaml"), root); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultName(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ gomod, want string }{
		{"module example.com/shop\n\ngo 1.26\n", "shop"},
		{"// a comment\nmodule \"example.com/Shop_Front/v2\"\n", "shop-front"},
		{"module github.com/acme/a-very-long-platform-name-indeed\n", "a-very-long-platform"},
		{"module example.com/9lives\n", "e2e-9lives"},
	} {
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(tt.gomod), 0o644); err != nil {
			t.Fatal(err)
		}
		got := DefaultName(dir)
		if got != tt.want || !validName.MatchString(got) {
			t.Errorf("go.mod %q: name %q, want %q (valid: %v)", tt.gomod, got, tt.want, validName.MatchString(got))
		}
	}
	os.Remove(filepath.Join(dir, "go.mod"))
	if got := DefaultName(dir); !validName.MatchString(got) {
		t.Errorf("no go.mod in %s: name %q is not a valid name", dir, got)
	}
	if got := DefaultName("../examples/hello"); got != "hello" {
		t.Errorf("the example's name is %q, want hello", got)
	}
}
