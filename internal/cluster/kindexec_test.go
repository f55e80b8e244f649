package cluster

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFastNodeExecPutsTheShimOnPathWhileKindRuns checks the PATH override
// of two creates at once: the shim's directory first while either runs,
// the caller's PATH back when both are done, and a restore called twice
// taking nothing from the other create.
func TestFastNodeExecPutsTheShimOnPathWhileKindRuns(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	before := os.Getenv("PATH")
	_, dockerErr := exec.LookPath("docker")
	_, nsenterErr := exec.LookPath("nsenter")
	applies := os.Geteuid() == 0 && dockerErr == nil && nsenterErr == nil
	if r := fastNodeExec("podman"); os.Getenv("PATH") != before {
		t.Errorf("podman's nodes: PATH changed to %q", os.Getenv("PATH"))
	} else {
		r()
	}
	first := fastNodeExec("docker")
	second := fastNodeExec("docker")
	during := os.Getenv("PATH")
	shimDir := filepath.SplitList(during)[0]
	if !applies {
		if during != before {
			t.Errorf("PATH changed to %q where the shim cannot work (uid %d, docker %v, nsenter %v)", during, os.Geteuid(), dockerErr, nsenterErr)
		}
		first()
		second()
		return
	}
	if got, err := exec.LookPath("docker"); err != nil || filepath.Dir(got) != shimDir || !strings.HasPrefix(shimDir, os.Getenv("XDG_CACHE_HOME")) {
		t.Fatalf("during a create docker is %q (%v), PATH %q: want the shim in the cache", got, err, during)
	}
	if during != shimDir+string(os.PathListSeparator)+before {
		t.Errorf("PATH during two creates %q: want the shim once, then %q", during, before)
	}
	first()
	first()
	if os.Getenv("PATH") != during {
		t.Errorf("one of two creates done (its restore called twice): PATH %q, want %q", os.Getenv("PATH"), during)
	}
	second()
	if os.Getenv("PATH") != before {
		t.Errorf("both creates done: PATH %q, want %q", os.Getenv("PATH"), before)
	}
}

// checkNodeExecShim runs the shim, calling docker through a recorder,
// against node (a kind node on this host) and other (a container of the
// sleeper image, no kind node): into the node it must answer as docker
// exec does without the engine's exec, and it must hand everything else
// to docker unchanged.
func checkNodeExecShim(ctx context.Context, t *testing.T, node, other string) {
	t.Helper()
	real, err := exec.LookPath("docker")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	record := filepath.Join(tmp, "calls")
	recorder := filepath.Join(tmp, "docker-recorder")
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '" + record + "'\nexec '" + real + "' \"$@\"\n"
	if err := os.WriteFile(recorder, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := writeNodeExecShim(filepath.Join(tmp, "bin"), recorder)
	if err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(dir, "docker")
	run := func(stdin string, bin string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		if stdin != "" {
			cmd.Stdin = strings.NewReader(stdin)
		}
		out, err := cmd.Output()
		return string(out), err
	}
	calls := func() []string {
		b, _ := os.ReadFile(record)
		os.Remove(record)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	entered := func(what string) {
		t.Helper()
		for _, c := range calls() {
			if !strings.HasPrefix(c, "inspect ") {
				t.Errorf("%s: docker was called for %q; want only its inspect (the node entered by nsenter)", what, c)
			}
		}
	}
	handed := func(what, want string) {
		t.Helper()
		if cs := calls(); !slices.Contains(cs, want) {
			t.Errorf("%s: docker was called for %q; want %q", what, cs, want)
		}
	}

	sorted := func(s string) string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		slices.Sort(lines)
		return strings.Join(lines, "\n")
	}
	viaShim, err := run("", shim, "exec", "--privileged", "-e", "TESTBED_X=a b", node, "env")
	entered("env")
	viaEngine, err2 := run("", real, "exec", "--privileged", "-e", "TESTBED_X=a b", node, "env")
	if err != nil || err2 != nil || sorted(viaShim) != sorted(viaEngine) {
		t.Errorf("env in the node through the shim (%v):\n%s\nthrough docker exec (%v):\n%s", err, viaShim, err2, viaEngine)
	}
	for _, c := range [][]string{{"hostname"}, {"pwd"}, {"readlink", "/proc/self/ns/net"}, {"readlink", "/proc/self/ns/pid"}, {"readlink", "/proc/self/ns/uts"}} {
		viaShim, err := run("", shim, append([]string{"exec", "--privileged", node}, c...)...)
		entered(c[0])
		viaEngine, err2 := run("", real, append([]string{"exec", "--privileged", node}, c...)...)
		if err != nil || err2 != nil || viaShim != viaEngine {
			t.Errorf("%q in the node: %q (%v) through the shim, %q (%v) through docker exec", c, viaShim, err, viaEngine, err2)
		}
	}
	if got, err := run("from stdin", shim, "exec", "--privileged", "-i", node, "cat"); err != nil || got != "from stdin" {
		t.Errorf("cat with -i: %q, %v; want what was written to it", got, err)
	}
	entered("cat -i")
	if got, err := run("from stdin", shim, "exec", "--privileged", node, "cat"); err != nil || got != "" {
		t.Errorf("cat without -i: %q, %v; want no input, as docker exec gives", got, err)
	}
	entered("cat")
	var exit *exec.ExitError
	if _, err := run("", shim, "exec", "--privileged", node, "sh", "-c", "exit 3"); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("exit 3 in the node came back as %v", err)
	}
	entered("exit 3")

	if _, err := run("", shim, "version", "--format", "{{.Client.Version}}"); err != nil {
		t.Errorf("docker version through the shim: %v", err)
	}
	handed("version", "version --format {{.Client.Version}}")
	if got, err := run("", shim, "exec", "--privileged", other, "/sleeper", "--version"); err != nil || got == "" {
		t.Errorf("exec into %s (no kind node) through the shim: %q, %v", other, got, err)
	}
	handed("a container that is no kind node", "exec --privileged "+other+" /sleeper --version")
	if _, err := run("", shim, "exec", node, "true"); err != nil {
		t.Errorf("exec without --privileged: %v", err)
	}
	handed("exec without --privileged (not kind's)", "exec "+node+" true")

	// Root that may not enter (seen as nsenter failing): docker's exec.
	noEnter := filepath.Join(tmp, "no-enter")
	if err := os.MkdirAll(noEnter, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(noEnter, "nsenter"), []byte("#!/bin/sh\necho 'nsenter: Operation not permitted' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	refused := exec.CommandContext(ctx, shim, "exec", "--privileged", node, "hostname")
	refused.Env = append(os.Environ(), "PATH="+noEnter+string(os.PathListSeparator)+os.Getenv("PATH"))
	if got, err := refused.Output(); err != nil || strings.TrimSpace(string(got)) != node {
		t.Errorf("hostname with nsenter refused: %q, %v; want docker exec's answer", got, err)
	}
	handed("nsenter refused", "exec --privileged "+node+" hostname")

	if _, err := run("", real, "pause", node); err != nil {
		t.Fatal(err)
	}
	_, err = run("", shim, "exec", "--privileged", node, "true")
	handed("a paused node", "exec --privileged "+node+" true")
	if err == nil {
		t.Errorf("exec into a paused node succeeded through the shim; docker refuses it")
	}
	if _, err := run("", real, "unpause", node); err != nil {
		t.Fatal(err)
	}
}
