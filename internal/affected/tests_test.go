package affected

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTestsRunWhatAChangeCanChange(t *testing.T) {
	pkgs := []Package{
		{ImportPath: "m", Dir: ".", Sources: []string{"m.go"}, Tests: []string{"m_test.go"}, Uses: []string{".", "kube", "assets"}},
		{ImportPath: "m/kube", Dir: "kube", Sources: []string{"kube.go"}, Tests: []string{"kube_test.go"}, Uses: []string{"kube"}},
		{ImportPath: "m/assets", Dir: "assets", Sources: []string{"assets.go", "static/index.html"}}, // no tests
		{ImportPath: "m/suite", Dir: "test/suite", Tests: []string{"suite_test.go", "fixtures/a.json"}, Uses: []string{"test/suite"}},
		{ImportPath: "m/ci", Dir: "ci", Tests: []string{"ci_test.go"}, Uses: []string{"ci"}, BuildsModule: true},
	}
	tests := []struct {
		name  string
		files []string
		want  []string // nil with all: every package
		all   string
	}{
		{"a suite's test file: that suite", []string{"test/suite/suite_test.go"}, []string{"m/suite"}, ""},
		{"a test's embedded file: its package", []string{"test/suite/fixtures/a.json"}, []string{"m/suite"}, ""},
		{"a package's test data: its package", []string{"kube/testdata/golden.txt"}, []string{"m/kube"}, ""},
		{"a source: the package, what links it, what builds the module", []string{"kube/kube.go"}, []string{"m", "m/ci", "m/kube"}, ""},
		{"an embedded source deeper down: what links its package", []string{"assets/static/index.html"}, []string{"m", "m/ci"}, ""},
		{"a root test file", []string{"m_test.go"}, []string{"m"}, ""},
		{"go.mod: every package", []string{"kube/kube_test.go", "go.mod"}, nil, "go.mod"},
		{"a file beside a package: every package", []string{"kube/README.md"}, nil, "kube/README.md"},
		{"a file a build constraint leaves out: every package", []string{"magefile.go"}, nil, "magefile.go"},
		{"a workflow: every package", []string{".github/workflows/e2e.yml"}, nil, ".github/workflows/e2e.yml"},
		{"a new package's directory: every package", []string{"newpkg/new.go"}, nil, "newpkg/new.go"},
		{"nothing", nil, []string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, all := Tests(pkgs, tt.files)
			if all != tt.all {
				t.Fatalf("all = %q, want %q (run %v)", all, tt.all, run)
			}
			if tt.want == nil {
				return
			}
			if got := slices.Sorted(maps.Keys(run)); !slices.Equal(got, tt.want) {
				t.Errorf("run %v, want %v", got, tt.want)
			}
		})
	}
}

// The module's own packages, as go list describes them.
func TestListPackagesOfThisModule(t *testing.T) {
	pkgs, err := ListPackages(context.Background(), "../..", "internal/citest")
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]Package{}
	for _, p := range pkgs {
		by[p.Dir] = p
	}
	root, ok := by["."]
	if !ok || root.ImportPath != "github.com/testbed-dev/testbed" {
		t.Fatalf("root package: %+v", root)
	}
	for _, dir := range []string{".", "internal/kube", "topology", "engine"} {
		if !slices.Contains(root.Uses, dir) {
			t.Errorf("the root package's tests use %v, want %s among them", root.Uses, dir)
		}
	}
	if !slices.Contains(root.Tests, "plan_golden_test.go") || !slices.Contains(root.Sources, "plan.go") {
		t.Errorf("root files: sources %v, tests %v", root.Sources, root.Tests)
	}
	if g := by["internal/graph"]; slices.Contains(g.Uses, ".") || !slices.Contains(g.Uses, "internal/graph") {
		t.Errorf("internal/graph's tests use %v", g.Uses)
	}
	if !by["internal/citest"].BuildsModule || by["internal/kube"].BuildsModule {
		t.Error("BuildsModule not as asked")
	}
}

// A package that does not load (its import is missing) fails the listing:
// listed without a test binary, its tests would not run.
func TestListPackagesRefusesAPackageThatDoesNotLoad(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"go.mod":      "module m\n\ngo 1.26\n",
		"a/a.go":      "package a\n\nimport _ \"m/missing\"\n",
		"a/a_test.go": "package a\n\nimport \"testing\"\n\nfunc TestA(t *testing.T) {}\n",
		"b/b.go":      "package b\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pkgs, err := ListPackages(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "m/missing") {
		t.Fatalf("listed %+v, err %v; want go list's error naming m/missing", pkgs, err)
	}
}
