package affected

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestPathMatch(t *testing.T) {
	tests := []struct {
		p    Path
		file string
		want bool
	}{
		{File("deploy/topology.yaml"), "deploy/topology.yaml", true},
		{File("deploy/topology.yaml"), "deploy/topology.yaml.bak", false},
		{File("./go.mod"), "go.mod", true},
		{Tree("deploy/components/redis"), "deploy/components/redis/redis.yaml", true},
		{Tree("deploy/components/redis"), "deploy/components/redis/sub/x.yaml", true},
		{Tree("deploy/components/redis"), "deploy/components/redis-ha/x.yaml", false},
		{Tree("."), "anything/at/all", true},
		{PackageDir("test/platform/gateway", false), "test/platform/gateway/gateway.go", true},
		{PackageDir("test/platform/gateway", false), "test/platform/gateway/gateway_test.go", false},
		{PackageDir("test/platform/gateway", true), "test/platform/gateway/gateway_test.go", true},
		{PackageDir("test/platform/gateway", false), "test/platform/gateway/sub/x.go", false},
		{PackageDir("test/platform/gateway", false), "test/platform/gatewayx/x.go", false},
		{PackageDir(".", false), "magefile.go", true},
		{PackageDir(".", false), "internal/x.go", false},
		{PackageDir(".", false), "README.md", false},
		{PackageDir("test/platform/gateway", false), "test/platform/gateway/Dockerfile", false},
	}
	for _, tt := range tests {
		if got := tt.p.Match(tt.file); got != tt.want {
			t.Errorf("%+v.Match(%q) = %v, want %v", tt.p, tt.file, got, tt.want)
		}
	}
}

func TestServicesUnionsAndExplains(t *testing.T) {
	inputs := []Input{
		{What: "image a", Paths: []Path{File("a/Dockerfile")}, Services: []string{"x", "y"}},
		{What: "suite of z", Paths: []Path{PackageDir("e2e/z", true)}, Services: []string{"z"}},
		{What: "everything", Paths: []Path{File("go.mod")}},
	}
	all := []string{"x", "y", "z"}
	ignore := []string{"*.md", "docs/"}
	got := Services(inputs, all, []string{"README.md", "a/Dockerfile", "e2e/z/suite_test.go"}, ignore)
	want := map[string]Reason{"x": {"a/Dockerfile", "image a"}, "y": {"a/Dockerfile", "image a"}, "z": {"e2e/z/suite_test.go", "suite of z"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for s, r := range want {
		if got[s] != r {
			t.Errorf("%s: %v, want %v", s, got[s], r)
		}
	}
	if got := Services(inputs, all, []string{"go.mod"}, ignore); len(got) != 3 {
		t.Errorf("go.mod affects %v, want every service", got)
	}
	if got := Services(inputs, all, []string{"docs/x.txt", "deep/er/NOTES.md"}, ignore); len(got) != 0 {
		t.Errorf("ignored files affect %v", got)
	}
}

// TestServicesFailClosed: a file no input claims and no pattern ignores
// runs every service; a package's own test file, built into no binary,
// runs none.
func TestServicesFailClosed(t *testing.T) {
	inputs := []Input{
		{What: "image a", Paths: []Path{PackageDir("cmd/a", false)}, Services: []string{"x"}},
		{What: "suite of z", Paths: []Path{PackageDir("e2e/z", true), Tree("e2e/z")}, Services: []string{"z"}},
	}
	all := []string{"x", "y", "z"}
	for _, tt := range []struct {
		file string
		want []string
	}{
		{"scripts/seed.sh", all},
		{"README.md", all}, // no pattern given
		{"cmd/a/a_test.go", nil},
		{"cmd/a/testdata/golden.txt", all},
		{"e2e/z/testdata/payload.json", []string{"z"}},
	} {
		got := Services(inputs, all, []string{tt.file}, nil)
		if names := slices.Sorted(maps.Keys(got)); !slices.Equal(names, tt.want) {
			t.Errorf("%s affects %v, want %v", tt.file, names, tt.want)
		}
	}
}

func TestIgnored(t *testing.T) {
	patterns := []string{"docs/", "*.md", "deploy/*/NOTES"}
	for file, want := range map[string]bool{
		"docs/a/b.png": true, "docsx/a": false, "README.md": true, "x/y/CHANGES.md": true,
		"deploy/redis/NOTES": true, "deploy/redis/x/NOTES": false, "main.go": false,
	} {
		if got := Ignored(patterns, file); got != want {
			t.Errorf("Ignored(%q) = %v, want %v", file, got, want)
		}
	}
}

// TestKustomizationFollowsLocalBases: an overlay's manifests are its own
// directory and the local bases, components and patch files outside it
// that its kustomization names, followed recursively; remote ones are not.
func TestKustomizationFollowsLocalBases(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"k/overlay/kustomization.yaml": "resources:\n- ../base\n- extra.yaml\n- https://example.com/remote.yaml\npatches:\n- path: ../patches/p.yaml\nconfigMapGenerator:\n- name: c\n  files: [conf=../conf/app.conf]\n",
		"k/conf/app.conf":              "x=1",
		"k/overlay/extra.yaml":         "{}",
		"k/base/kustomization.yaml":    "resources: [deploy.yaml]\ncomponents: [../comp]\n",
		"k/base/deploy.yaml":           "{}",
		"k/comp/kustomization.yaml":    "kind: Component\n",
		"k/patches/p.yaml":             "{}",
		"k/unrelated/x.yaml":           "{}",
	}
	for p, body := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	paths, err := Kustomization(root, "k/overlay")
	if err != nil {
		t.Fatal(err)
	}
	in := []Input{{What: "overlay", Paths: paths}}
	for f, want := range map[string]bool{
		"k/overlay/extra.yaml": true, "k/base/deploy.yaml": true, "k/comp/kustomization.yaml": true,
		"k/patches/p.yaml": true, "k/conf/app.conf": true, "k/unrelated/x.yaml": false, "k/patches/other.yaml": false,
	} {
		if got := len(Services(in, []string{"s"}, []string{f}, []string{"k/unrelated/", "k/patches/other.yaml"})) == 1; got != want {
			t.Errorf("%s affects the overlay: %v, want %v (paths %v)", f, got, want, paths)
		}
	}
	if slices.ContainsFunc(paths, func(p Path) bool { return p.Name == "https:/example.com/remote.yaml" }) {
		t.Errorf("a remote resource became a path: %v", paths)
	}
}
