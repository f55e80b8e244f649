//go:build faults

package faults

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/testbed-dev/testbed/internal/testenv"
)

// TestCoverageReport runs a service with E2E_COVERAGE=1 through the target
// binary: its pods are flushed at teardown and the report names the
// instrumented package with a non-zero coverage.
func TestCoverageReport(t *testing.T) {
	testenv.RequireKind(t)
	t.Parallel()
	o := run(t, "E2E_COVERAGE=1 (not a fault)", fault{args: []string{"e2e:run", "quick-e"}, env: []string{"E2E_COVERAGE=1"}, exit: 0,
		deploys: true, says: []string{"coverage files from the node"},
		clusters: []string{cname("quick-e")}})
	dir := filepath.Join(o.artifacts, "quick-e", "coverage")
	percent, err := os.ReadFile(filepath.Join(dir, "percent.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`test/platform/cmd/synthetic\s+coverage: ([0-9.]+)% of statements`).FindSubmatch(percent)
	if m == nil || string(m[1]) == "0.0" {
		t.Errorf("percent.txt does not show the synthetic binary covered:\n%s", percent)
	}
	for _, f := range []string{"coverage.out", "func.txt"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
