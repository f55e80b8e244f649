package citest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// workflow is the part of .github/workflows/e2e.yml the tests read.
type workflow struct {
	Defaults struct {
		Run struct{ Shell string }
	}
	Jobs map[string]struct {
		TimeoutMinutes int `yaml:"timeout-minutes"`
		Steps          []struct {
			ID, Name, Run, Uses string
			If                  string
			Env                 map[string]string
		}
	}
}

func readWorkflow(t *testing.T) workflow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, ".github", "workflows", "e2e.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestMatrixStepFailsWhenItsTargetFails runs the matrix job's own script as
// GitHub runs a `shell: bash` step (bash --noprofile --norc -eo pipefail),
// with a `go` that stands for the mage targets: when the target fails (and
// prints half a matrix), the step fails and writes no matrix; when it
// succeeds, the matrix and whether it is empty are the step's outputs; a
// pull request asks ci:affected about its base, other events ci:matrix.
func TestMatrixStepFailsWhenItsTargetFails(t *testing.T) {
	w := readWorkflow(t)
	if w.Defaults.Run.Shell != "bash" {
		t.Fatalf("defaults.run.shell is %q: the steps must run as bash -eo pipefail for this test to mean anything", w.Defaults.Run.Shell)
	}
	var script string
	for _, s := range w.Jobs["matrix"].Steps {
		if s.ID == "matrix" {
			script = s.Run
		}
	}
	if script == "" {
		t.Fatal("the matrix job has no step with id matrix")
	}
	run := func(t *testing.T, event, goScript string) (outputs, args string, err error) {
		t.Helper()
		bin := t.TempDir()
		log := filepath.Join(bin, "args")
		fake := "#!/bin/sh\necho \"$*\" >> " + log + "\n" + goScript
		if err := os.WriteFile(filepath.Join(bin, "go"), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "github_output")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "GITHUB_OUTPUT="+out, "EVENT="+event, "BASE=0123abc")
		var combined strings.Builder
		cmd.Stdout, cmd.Stderr = &combined, &combined
		err = cmd.Run()
		o, _ := os.ReadFile(out)
		a, _ := os.ReadFile(log)
		return string(o), strings.TrimSpace(string(a)), err
	}
	for _, event := range []string{"push", "pull_request"} {
		outputs, _, err := run(t, event, "printf '{\"service\":'\nexit 1\n")
		if err == nil {
			t.Errorf("%s: the step passed although its target failed (outputs %q)", event, outputs)
		}
		if strings.Contains(outputs, "services=") {
			t.Errorf("%s: a failed target still wrote the matrix: %q", event, outputs)
		}
	}
	outputs, args, err := run(t, "push", "echo '{\"service\":[\"gateway\"]}'\n")
	if err != nil || !strings.Contains(outputs, "services={\"service\":[\"gateway\"]}\n") || !strings.Contains(outputs, "any=true\n") {
		t.Errorf("push: %v, outputs %q", err, outputs)
	}
	if args != "run magefile.go ci:matrix" {
		t.Errorf("push ran go %q, want every service (ci:matrix)", args)
	}
	outputs, args, err = run(t, "pull_request", "echo '{\"service\":[]}'\n")
	if err != nil || !strings.Contains(outputs, "any=false\n") {
		t.Errorf("pull_request with no service affected: %v, outputs %q (the e2e job must be skipped)", err, outputs)
	}
	if args != "run magefile.go ci:affected 0123abc" {
		t.Errorf("pull_request ran go %q, want ci:affected of the base commit", args)
	}
}

// TestEveryJobHasATimeoutAndArtifactsAlwaysUpload: a hung job ends, and
// what explains a failure (or a timeout, or a cancel) is uploaded.
func TestEveryJobHasATimeoutAndArtifactsAlwaysUpload(t *testing.T) {
	w := readWorkflow(t)
	for name, j := range w.Jobs {
		if j.TimeoutMinutes <= 0 {
			t.Errorf("job %s has no timeout-minutes", name)
		}
		for _, s := range j.Steps {
			if strings.HasPrefix(s.Uses, "actions/upload-artifact@") && s.If != "always()" {
				t.Errorf("job %s uploads artifacts only if %q: a failed, timed-out or cancelled run would upload nothing", name, s.If)
			}
			if s.Uses != "" && !strings.HasPrefix(s.Uses, "./") {
				ref := s.Uses[strings.LastIndex(s.Uses, "@")+1:]
				if len(ref) != 40 || strings.Trim(ref, "0123456789abcdef") != "" {
					t.Errorf("job %s uses %s: pin actions by commit SHA", name, s.Uses)
				}
			}
		}
	}
	if _, ok := w.Jobs["gate"]; !ok {
		t.Error("no gate job: the one check to require")
	}
}
