package testbed

import (
	"context"
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
