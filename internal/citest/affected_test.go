package citest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCiAffectedOnHandMadeChanges runs `go run magefile.go ci:affected
// HEAD~1`, as a pull request's matrix job does, in a copy of this
// repository with one hand-made commit per case, and checks the services
// it prints. The expected sets are written out from deploy/topology.yaml.
func TestCiAffectedOnHandMadeChanges(t *testing.T) {
	dir := copyRepo(t)
	all := []string{"aianalysis", "datastorage", "gateway", "holmesgptapi", "notification", "remediationorchestrator", "signalprocessing", "workflowexecution"}
	// A package imported by the gateway and holmesgpt-api images only.
	shared := "test/platform/twoimages/twoimages.go"
	writeFile(t, dir, shared, "package twoimages\n\n// Version is linked into two images.\nconst Version = 1\n")
	for _, main := range []string{"test/platform/cmd/gateway/main.go", "test/platform/cmd/holmesgpt-api/main.go"} {
		b, err := os.ReadFile(filepath.Join(dir, main))
		if err != nil {
			t.Fatal(err)
		}
		src := strings.Replace(string(b), "import (", "import (\n\t_ \"github.com/testbed-dev/testbed/test/platform/twoimages\"", 1)
		writeFile(t, dir, main, src)
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-qm", "two images import one package")

	tests := []struct {
		name   string
		change func()
		want   []string
	}{
		{"a Go package two images import: the services deploying either image", func() {
			appendFile(t, dir, shared, "\n// Changed.\nconst Changed = true\n")
		}, []string{"aianalysis", "gateway", "holmesgptapi", "remediationorchestrator"}},
		{"a manifest of a shared component (PostgreSQL): every service using it", func() {
			appendFile(t, dir, "deploy/components/postgresql/postgresql.yaml", "# changed\n")
		}, []string{"aianalysis", "datastorage", "gateway", "notification", "remediationorchestrator", "signalprocessing", "workflowexecution"}},
		{"a suite only: its service", func() {
			appendFile(t, dir, "test/e2e/notification/suite_test.go", "\n// changed\n")
		}, []string{"notification"}},
		{"a suite's fixture (testdata): its service", func() {
			writeFile(t, dir, "test/e2e/gateway/testdata/payload.json", "{}\n")
		}, []string{"gateway"}},
		{"a script no service is made from: every service (fail closed)", func() {
			writeFile(t, dir, "scripts/seed.sh", "#!/bin/sh\n")
		}, all},
		{"README only: none", func() {
			appendFile(t, dir, "README.md", "\nchanged\n")
		}, []string{}},
		{"a Dockerfile: its image's services", func() {
			appendFile(t, dir, "deploy/images/holmesgpt-api/Dockerfile", "# changed\n")
		}, []string{"aianalysis", "holmesgptapi", "remediationorchestrator"}},
		{"the topology: every service", func() {
			appendFile(t, dir, "deploy/topology.yaml", "# changed\n")
		}, all},
		{"testbed's own code: every service", func() {
			appendFile(t, dir, "internal/graph/graph.go", "\n// changed\n")
		}, all},
		{"a package's unit test: none", func() {
			appendFile(t, dir, "test/platform/gateway/gateway_test.go", "\n// changed\n")
		}, []string{}},
	}
	for _, tt := range tests {
		tt.change()
		git(t, dir, "add", "-A")
		git(t, dir, "commit", "-qm", tt.name)
		var m struct{ Service []string }
		out := mageIn(t, dir, "ci:affected", "HEAD~1")
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%s: %v in %q", tt.name, err, out)
		}
		if m.Service == nil {
			t.Errorf("%s: %q: no service list (the workflow needs [] to skip the e2e jobs)", tt.name, out)
		}
		if got := slices.Sorted(slices.Values(m.Service)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: ci:affected printed %v, want %v", tt.name, got, tt.want)
		}
	}
}

// copyRepo copies the repository's working tree (tracked and untracked
// files, not the ignored ones) into a new git repository with one commit.
func copyRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := strings.Split(strings.TrimSpace(string(git(t, root, "ls-files", "-co", "--exclude-standard"))), "\n")
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, f, string(b))
	}
	git(t, dir, "init", "-q")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-qm", "base")
	return dir
}

func git(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "user.name=citest", "-c", "user.email=citest@example.com"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return out
}

func writeFile(t *testing.T, dir, name, body string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, dir, name, more string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, name, string(b)+more)
}
