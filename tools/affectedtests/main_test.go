package main

import (
	"context"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/testbed-dev/testbed/internal/affected"
)

// runsGo finds a test that runs the go command on the module: go run,
// build, test, install or vet, as an argument list.
var runsGo = regexp.MustCompile(`"go",\s*"(run|build|test|install|vet)"`)

// A package whose tests build the module's commands must be in
// buildsModule, or a pull request changing what they build would not run
// them.
func TestBuildsModuleNamesEveryPackageThatRunsGo(t *testing.T) {
	pkgs, err := affected.ListPackages(context.Background(), "../..", buildsModule...)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, p := range pkgs {
		for _, f := range p.Tests {
			if !strings.HasSuffix(f, ".go") {
				continue
			}
			b, err := os.ReadFile(path.Join("../..", p.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if runsGo.Match(b) && !slices.Contains(found, p.Dir) {
				found = append(found, p.Dir)
			}
		}
	}
	for _, dir := range found {
		if !slices.Contains(buildsModule, dir) {
			t.Errorf("the tests of %s run the go command: add it to buildsModule", dir)
		}
	}
	for _, dir := range buildsModule {
		if !slices.Contains(found, dir) {
			t.Errorf("buildsModule names %s, whose tests do not run the go command (any more?)", dir)
		}
	}
}

func TestChooseSaysWhy(t *testing.T) {
	pkgs := []affected.Package{
		{ImportPath: "m/a", Dir: "a", Sources: []string{"a.go"}, Tests: []string{"a_test.go"}, Uses: []string{"a"}},
		{ImportPath: "m/b", Dir: "b", Tests: []string{"b_test.go"}, Uses: []string{"b", "a"}},
	}
	var why strings.Builder
	if got := choose(pkgs, []string{"a/a.go"}, "main", &why); got != "m/a m/b" {
		t.Errorf("a source: %q", got)
	}
	if got := choose(pkgs, []string{"go.sum"}, "main", &why); got != "./..." {
		t.Errorf("go.sum: %q", got)
	}
	if got := choose(pkgs, nil, "main", &why); got != "" {
		t.Errorf("no change: %q", got)
	}
	for _, s := range []string{"m/b: a/a.go", "every package: go.sum", "no package's tests can change with the 0 files changed since main"} {
		if !strings.Contains(why.String(), s) {
			t.Errorf("why says %q, want %q in it", why.String(), s)
		}
	}
}
