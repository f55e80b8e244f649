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
			With                map[string]string
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
		outputs, args, _, err = runStep(t, script, event, goScript)
		return outputs, args, err
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

// runStep runs a step's script as GitHub runs a `shell: bash` step (bash
// --noprofile --norc -eo pipefail) for event, with a `go` that runs
// goScript and logs its arguments (one line per call), and a shellcheck
// that does nothing. It returns what the step wrote to GITHUB_OUTPUT, the
// go calls, and its output.
func runStep(t *testing.T, script, event, goScript string) (outputs, goCalls, output string, err error) {
	t.Helper()
	bin := t.TempDir()
	log := filepath.Join(bin, "args")
	fake := "#!/bin/sh\necho \"$*\" >> " + log + "\n" + goScript
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "shellcheck"), []byte("#!/bin/sh\n"), 0o755); err != nil {
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
	return string(o), strings.TrimSpace(string(a)), combined.String(), err
}

// TestTestStepRunsWhatThePullRequestCanChange runs the test job's go test
// step: main runs every package (the README's command); a pull request
// runs what tools/affectedtests prints, nothing when it prints nothing
// (a bare go test would test the root package), and fails when it fails.
func TestTestStepRunsWhatThePullRequestCanChange(t *testing.T) {
	var script string
	for _, s := range readWorkflow(t).Jobs["test"].Steps {
		if strings.HasPrefix(s.Name, "go test") {
			script = s.Run
		}
	}
	if script == "" {
		t.Fatal("the test job has no step named go test…")
	}
	// go: affectedtests prints $PKGS or fails with FAIL set; go test logs.
	tests := []struct {
		name, event, goScript, want string
		fails                       bool
	}{
		{"push: every package", "push", "", "test -race -timeout 30m ./...", false},
		{"a pull request: what it can change", "pull_request", "case $1 in run) echo m/a m/b;; esac\n",
			"run ./tools/affectedtests 0123abc\ntest -race -timeout 30m m/a m/b", false},
		{"a pull request that can change no test: no go test", "pull_request", "case $1 in run) echo;; esac\n",
			"run ./tools/affectedtests 0123abc", false},
		{"a pull request whose affectedtests fails: the step fails", "pull_request", "case $1 in run) echo m/a; exit 1;; esac\n",
			"run ./tools/affectedtests 0123abc", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, calls, out, err := runStep(t, script, tt.event, tt.goScript)
			if (err != nil) != tt.fails {
				t.Errorf("step error %v, want failure %v; output:\n%s", err, tt.fails, out)
			}
			if calls != tt.want {
				t.Errorf("go was called as\n%s\nwant\n%s", calls, tt.want)
			}
		})
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
			evidence := strings.HasPrefix(s.With["name"], "e2e-")
			if strings.HasPrefix(s.Uses, "actions/upload-artifact@") && evidence && s.If != "always()" {
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

// TestTargetsRunWithExecFromAnAbsolutePath: mage -compile resolves a
// relative output path from magefiles/ (v1.17.2), so every compile names
// an absolute one; every step that runs an e2e target does it with exec,
// or a cancel's signals stop at bash (the cancel test shows it for real).
func TestTargetsRunWithExecFromAnAbsolutePath(t *testing.T) {
	w := readWorkflow(t)
	compiles, e2es := 0, 0
	for name, j := range w.Jobs {
		for _, s := range j.Steps {
			fields := strings.Fields(s.Run)
			for i, f := range fields {
				if f == "-compile" && i+1 < len(fields) {
					compiles++
					if out := strings.Trim(fields[i+1], `"'`); !strings.HasPrefix(out, "$RUNNER_TEMP/") && !strings.HasPrefix(out, "/") {
						t.Errorf("job %s compiles the targets to %s: a relative path lands in magefiles/", name, out)
					}
				}
			}
			if strings.Contains(s.Run, "e2e:") && strings.Contains(s.Run, "-mage") {
				e2es++
				if !strings.HasPrefix(strings.TrimSpace(s.Run), "exec ") {
					t.Errorf("job %s runs its e2e target without exec: %q", name, s.Run)
				}
			}
		}
	}
	if compiles == 0 || e2es < 2 {
		t.Errorf("found %d compiles and %d e2e steps: the test no longer reads the workflow it guards", compiles, e2es)
	}
}

// TestCachesHaveOneWriter: a Go cache is written only by a push to main
// (SAVE_CACHES), so a pull request cannot change what main builds with;
// the image archives, keyed by their content, are written where they are
// built. actions/cache itself (which saves at the end of every job that
// missed) is not used. Evidence is uploaded under the run attempt, so a
// re-run does not collide with the first attempt's.
func TestCachesHaveOneWriter(t *testing.T) {
	w := readWorkflow(t)
	for name, j := range w.Jobs {
		for _, s := range j.Steps {
			switch {
			case strings.HasPrefix(s.Uses, "actions/cache@"):
				t.Errorf("job %s uses actions/cache, which saves wherever it missed: use actions/cache/restore and /save", name)
			case strings.HasPrefix(s.Uses, "actions/cache/save@"):
				content := strings.HasPrefix(s.With["key"], "images-")
				if !content && s.If != "env.SAVE_CACHES == 'true'" {
					t.Errorf("job %s saves cache %q if %q: only a push to main writes a Go cache", name, s.With["key"], s.If)
				}
			case strings.HasPrefix(s.Uses, "actions/upload-artifact@") && s.With["overwrite"] != "true":
				if !strings.Contains(s.With["name"], "github.run_attempt") {
					t.Errorf("job %s uploads %q: name it with the run attempt", name, s.With["name"])
				}
			}
		}
	}
}
