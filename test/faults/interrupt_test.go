//go:build faults

package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"

	"github.com/testbed-dev/testbed/internal/testenv"
)

// TestSIGINTAtRandomMoments interrupts `e2e:gateway` (the compiled target
// binary, the real topology) at random moments of its run, as a terminal's
// Ctrl-C does (SIGINT to the process group), and checks after each that no
// node container, no Docker network, no kubeconfig and no process of the
// run is left. FAULTS_SIGINT_RUNS sets how many (3 unless set; 30 for the
// full check), FAULTS_SIGINT_SPREAD the window the moments are drawn from
// (default 75s: the whole setup of gateway here).
func TestSIGINTAtRandomMoments(t *testing.T) {
	docker, _ := testenv.RequireKind(t)
	n, spread := 3, 75*time.Second
	if v := os.Getenv("FAULTS_SIGINT_RUNS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("FAULTS_SIGINT_RUNS=%q: give a number of runs", v)
		}
	}
	if v := os.Getenv("FAULTS_SIGINT_SPREAD"); v != "" {
		var err error
		if spread, err = time.ParseDuration(v); err != nil || spread <= 0 {
			t.Fatalf("FAULTS_SIGINT_SPREAD=%q: give a duration", v)
		}
	}
	networks := func() map[string]bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ns, err := docker.NetworkList(ctx, network.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, n := range ns {
			m[n.Name] = true
		}
		return m
	}
	// The runs and the clean-up between them delete testbed-gateway: never
	// one that was there before.
	if cs := nodeContainers(t, cname("gateway")); len(cs) > 0 {
		t.Fatalf("cluster %s exists and this test would delete it: delete it yourself (go run magefile.go cluster:delete gateway) or keep it and skip this test", cname("gateway"))
	}
	bin := target(t)
	clean, interrupted := 0, 0
	for i := 1; i <= n; i++ {
		at := time.Duration(rand.Int64N(int64(spread)))
		before := networks()
		tmp := t.TempDir()
		marker := fmt.Sprintf("TESTBED_FAULT_RUN=%d", time.Now().UnixNano())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		cmd := exec.CommandContext(ctx, bin, "e2e:gateway")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "E2E_ARTIFACTS="+t.TempDir(), marker, "GITHUB_ACTIONS=", "E2E_TOPOLOGY=")
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		signalled := false
		select {
		case err = <-done:
		case <-time.After(at):
			// Wait reaps the process before it drains the output pipes,
			// which the run's children can hold open a little longer: a
			// process already gone (or a zombie) ended before the signal.
			signalled = alive(cmd.Process.Pid)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
			err = <-done
		}
		cancel()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if signalled {
			interrupted++
		}
		var left []string
		if cs := nodeContainers(t, cname("gateway")); len(cs) > 0 {
			left = append(left, fmt.Sprintf("node containers %v", cs))
		}
		after := networks()
		for name := range after {
			if !before[name] {
				left = append(left, "network "+name)
			}
		}
		if dir := stateDir(t, cname("gateway")); dir != "" {
			left = append(left, "state "+dir)
		}
		if ps := processesWith(marker); len(ps) > 0 {
			left = append(left, fmt.Sprintf("processes %v", ps))
		}
		if es, _ := os.ReadDir(tmp); len(es) > 0 {
			left = append(left, fmt.Sprintf("%d entries in TMPDIR", len(es)))
		}
		verdict := "clean"
		if len(left) > 0 {
			verdict = "LEFT " + strings.Join(left, ", ")
			t.Errorf("run %d, SIGINT at %s: left %s; output:\n%s", i, at.Round(100*time.Millisecond), strings.Join(left, ", "), tail(out.String()))
		} else {
			clean++
		}
		if signalled && code != 130 {
			t.Errorf("run %d, SIGINT at %s: exit code %d, want 130", i, at.Round(100*time.Millisecond), code)
		}
		fmt.Printf("SIGINT run %2d/%d at %6.1f s: exit %d, %s\n", i, n, at.Seconds(), code, verdict)
		if len(left) > 0 {
			// Clean up for the next run.
			exec.Command(bin, "cluster:delete", "gateway").Run()
		}
	}
	fmt.Printf("SIGINT at random moments of e2e:gateway: %d of %d runs left nothing (%d interrupted, %d ended before the signal)\n", clean, n, interrupted, n-interrupted)
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command's closing parenthesis: "pid (comm) S ...".
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}
