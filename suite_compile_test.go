package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/topology"
)

func TestFocusArgsFollowTheSuiteKind(t *testing.T) {
	for _, c := range []struct {
		focus, suite string
		want         []string
	}{
		{"", "./test/e2e/gateway", nil},
		{"dedup", "./test/e2e/gateway", []string{"-ginkgo.focus=dedup"}},
		{"TestA", "./testdata/focussuite", []string{"-test.run", "TestA"}},
	} {
		if got := focusArgs(c.focus, ".", c.suite); !slices.Equal(got, c.want) {
			t.Errorf("focusArgs(%q, %s) = %q, want %q", c.focus, c.suite, got, c.want)
		}
	}
	if !isGinkgo(".", "./test/e2e/gateway") || isGinkgo(".", "./testdata/focussuite") || !isGinkgo(".", "./test/e2e/...") {
		t.Error("isGinkgo: gateway's suite and ./test/e2e/... are Ginkgo, testdata/focussuite is not")
	}
}

// TestCompiledSuiteRunsFocusedInItsPackageDir compiles a plain-Go suite
// (the compile suite step), runs it with a focus (the suite step), and
// once more from the cache without compiling.
func TestCompiledSuiteRunsFocusedInItsPackageDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cache, err := newSuiteCache()
	if err != nil {
		t.Fatal(err)
	}
	defer cache.remove()
	for i := range 2 {
		r := &run{cfg: Options{Root: ".", SuiteTimeout: time.Minute, Focus: "Beta"}, svc: &topology.Service{Suite: "./testdata/focussuite"},
			cluster: &cluster.Cluster{Kubeconfig: "/nonexistent"}, ns: "focus-ns", suites: cache}
		var out strings.Builder
		if err := r.compileSuite(ctx, &out); err != nil {
			t.Fatalf("compile: %v\n%s", err, out.String())
		}
		if base := filepath.Base(r.suiteBin.bin); base != "focussuite.test" {
			t.Errorf("the binary is %s, want focussuite.test (as go test names it: the fault suite looks for it by name)", base)
		}
		if again := strings.Contains(out.String(), "compiled already"); again != (i == 1) {
			t.Errorf("run %d: compiled again = %v:\n%s", i, !again, out.String())
		}
		out.Reset()
		if err := r.suite(ctx, &out); err != nil {
			t.Fatalf("suite: %v\n%s", err, out.String())
		}
		got := out.String()
		if !strings.Contains(got, "--- PASS: TestBeta") || strings.Contains(got, "TestAlpha") || !strings.Contains(got, "E2E_NAMESPACE=focus-ns") {
			t.Errorf("run %d: want TestBeta alone, in its directory, with the environment:\n%s", i, got)
		}
	}
}

func TestASuiteWithoutTestFilesRanNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := &run{cfg: Options{Root: ".", SuiteTimeout: time.Minute}, svc: &topology.Service{Suite: "./testdata/sleeper"}, cluster: &cluster.Cluster{}}
	defer r.close()
	var out strings.Builder
	if err := r.compileSuite(ctx, &out); err != nil {
		t.Fatalf("compile: %v\n%s", err, out.String())
	}
	if err := r.suite(ctx, &out); err == nil || !strings.Contains(err.Error(), "no test files") {
		t.Errorf("a package without tests: got %v, want 'ran nothing ([no test files])'", err)
	}
}

// TestTheSuiteStoreKeepsCompiledSuites compiles a suite of a module made
// here into a store under a temporary cache directory: a second process
// (a new suite cache) finds it without compiling, and it runs; a change
// to a package only the test imports compiles again; after more versions the store keeps the
// keptSuites used last, the one just compiled among them.
func TestTheSuiteStoreKeepsCompiledSuites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	mod := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(mod, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mod, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/stored\n\ngo 1.21\n")
	// The version is in a package only the test imports: go list names
	// it only when asked for the test's dependencies.
	write("s/s_test.go", "package s\n\nimport (\n\t\"testing\"\n\n\t\"example.com/stored/helper\"\n)\n\nfunc TestVersion(t *testing.T) { t.Log(helper.Version) }\n")
	version := func(n int) {
		write("helper/helper.go", fmt.Sprintf("package helper\n\nconst Version = \"version %d\"\n", n))
	}
	compile := func() (compiledSuite, string) {
		t.Helper()
		dir := t.TempDir()
		var out strings.Builder
		s, err := compileTest(ctx, mod, "./s", dir, &out)
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		return s, out.String()
	}
	version(1)
	first, out := compile()
	if !strings.Contains(out, "compiled ./s") || filepath.Base(first.bin) != "s.test" || first.dir != filepath.Join(mod, "s") {
		t.Fatalf("first compile: %+v\n%s", first, out)
	}
	again, out := compile()
	if again != first || !strings.Contains(out, "cached: ./s was compiled earlier") {
		t.Fatalf("the same inputs again: %+v\n%s\nwant %+v from the store", again, out, first)
	}
	got, err := exec.CommandContext(ctx, again.bin, "-test.v").CombinedOutput()
	if err != nil || !strings.Contains(string(got), "version 1") {
		t.Fatalf("the stored suite: %v\n%s", err, got)
	}
	var last compiledSuite
	for n := 2; n <= keptSuites+2; n++ {
		version(n)
		if last, out = compile(); !strings.Contains(out, "compiled ./s") || last.bin == first.bin {
			t.Fatalf("version %d: %+v\n%s\nwant a new compile", n, last, out)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(filepath.Dir(last.bin)))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != keptSuites {
		t.Errorf("the store holds %d entries, want %d", len(entries), keptSuites)
	}
	if _, err := os.Stat(last.bin); err != nil {
		t.Errorf("the suite compiled last is gone: %v", err)
	}
	if _, err := os.Stat(first.bin); err == nil {
		t.Errorf("the first suite is still stored: the store keeps %d", keptSuites)
	}
}
