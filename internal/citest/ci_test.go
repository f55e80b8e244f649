// Package citest checks the GitHub Actions workflow against the topology
// and actionlint.
package citest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"

	"github.com/testbed-dev/testbed/internal/testbed"
	"github.com/testbed-dev/testbed/internal/topology"
)

const root = "../.."

func TestWorkflowPassesActionlint(t *testing.T) {
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.LintFile(filepath.Join(root, ".github", "workflows", "e2e.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Errorf("actionlint found %d problem(s):\n%s", len(errs), out.String())
	}
}

// TestMatrixListsExactlyTheServicesWithTargets: the matrix comes from the
// topology, and each entry must be an e2e target mage knows.
func TestMatrixListsExactlyTheServicesWithTargets(t *testing.T) {
	topo, err := topology.Load(filepath.Join(root, testbed.TopologyFile), root)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := (&testbed.Testbed{Topo: topo}).WriteMatrix(&buf); err != nil {
		t.Fatal(err)
	}
	var m struct{ Service []string }
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range topo.ServiceNames() {
		want = append(want, testbed.MageTarget(s))
	}
	if !slices.Equal(m.Service, want) {
		t.Errorf("matrix %v, want %v", m.Service, want)
	}
	src, err := os.ReadFile(filepath.Join(root, "magefiles", "e2e.go"))
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, g := range regexp.MustCompile(`func \(E2e\) (\w+)\(`).FindAllStringSubmatch(string(src), -1) {
		targets[strings.ToLower(g[1])] = true
	}
	for _, s := range m.Service {
		if !targets[s] {
			t.Errorf("no e2e:%s target in magefiles/e2e.go", s)
		}
	}
}

// TestActionlintCatchesABrokenWorkflow keeps the check above honest.
func TestActionlintCatchesABrokenWorkflow(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yml")
	bad := "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n"
	if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := actionlint.NewLinter(&bytes.Buffer{}, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.LintFile(p, nil)
	if err != nil || len(errs) == 0 {
		t.Fatalf("a workflow using an undefined matrix value passed (%v)", err)
	}
}
