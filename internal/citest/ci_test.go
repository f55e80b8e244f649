// Package citest checks the GitHub Actions workflow against the topology
// and actionlint.
package citest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rhysd/actionlint"

	"github.com/testbed-dev/testbed"
	"github.com/testbed-dev/testbed/topology"
)

const root = "../.."

// TestWorkflowPassesActionlint lints the workflow as `actionlint` does,
// with shellcheck checking every run: script (.ci/run installs it).
func TestWorkflowPassesActionlint(t *testing.T) {
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{Shellcheck: shellcheck(t)})
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

// TestMatrixListsExactlyTheServicesWithTargets runs what the workflow runs
// (`go run magefile.go ci:matrix`) and checks its output against two
// independent sources: the services of the topology, and the e2e targets
// mage lists (`go run magefile.go -l`). Each service has exactly one entry,
// and each entry is a target mage runs.
func TestMatrixListsExactlyTheServicesWithTargets(t *testing.T) {
	topo, err := topology.Load(filepath.Join(root, testbed.TopologyFile), root)
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Service []string }
	if err := json.Unmarshal(mage(t, "ci:matrix"), &m); err != nil {
		t.Fatal(err)
	}
	// The reference platform, written out by hand: mage names hold no hyphen.
	want := []string{"aianalysis", "datastorage", "gateway", "holmesgptapi", "notification", "remediationorchestrator", "signalprocessing", "workflowexecution"}
	if got := slices.Sorted(slices.Values(m.Service)); !slices.Equal(got, want) {
		t.Errorf("matrix %v, want %v", got, want)
	}
	if len(m.Service) != len(topo.Services) {
		t.Errorf("matrix has %d entries, the topology %d services", len(m.Service), len(topo.Services))
	}
	for name := range topo.Services {
		n := 0
		for _, e := range m.Service {
			if strings.EqualFold(e, strings.ReplaceAll(name, "-", "")) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("service %s has %d matrix entries, want 1", name, n)
		}
	}
	listed := map[string]bool{}
	for _, l := range strings.Split(string(mage(t, "-l")), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], "e2e:") {
			listed[strings.ToLower(strings.TrimPrefix(f[0], "e2e:"))] = true
		}
	}
	if len(listed) == 0 {
		t.Fatal("mage -l lists no e2e target")
	}
	for _, e := range m.Service {
		if !listed[strings.ToLower(e)] {
			t.Errorf("matrix entry %s: mage lists no e2e:%s target", e, e)
		}
	}
}

// mage runs the targets as the workflow does and returns their stdout.
func mage(t *testing.T, args ...string) []byte {
	t.Helper()
	return mageIn(t, root, args...)
}

// mageIn runs the targets in the repository at dir.
func mageIn(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", "magefile.go"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run magefile.go %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// shellcheck is the path of shellcheck; without it actionlint checks no
// script, so the test fails rather than pass having checked less.
func shellcheck(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Fatalf("shellcheck is not installed (apt-get install shellcheck): actionlint needs it to check the workflow's scripts: %v", err)
	}
	return p
}

// TestActionlintCatchesABrokenWorkflow keeps the check above honest: an
// undefined matrix value, and a script shellcheck warns about.
func TestActionlintCatchesABrokenWorkflow(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yml")
	for what, step := range map[string]string{
		"an undefined matrix value":     "echo ${{ matrix.nope }}",
		"an unquoted variable (SC2086)": "x=$(date); ls $x",
	} {
		bad := "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: " + step + "\n"
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := actionlint.NewLinter(&bytes.Buffer{}, &actionlint.LinterOptions{Shellcheck: shellcheck(t)})
		if err != nil {
			t.Fatal(err)
		}
		errs, err := l.LintFile(p, nil)
		if err != nil || len(errs) == 0 {
			t.Errorf("a workflow with %s passed (%v)", what, err)
		}
	}
}
