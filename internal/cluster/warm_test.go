package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClaimHelper is the child process of the claim race: it claims the
// cluster named in TESTBED_CLAIM at the moment given in TESTBED_CLAIM_AT.
func TestClaimHelper(t *testing.T) {
	name := os.Getenv("TESTBED_CLAIM")
	if name == "" {
		return // not a child
	}
	var at int64
	fmt.Sscan(os.Getenv("TESTBED_CLAIM_AT"), &at)
	time.Sleep(time.Until(time.Unix(0, at)))
	if _, err := testScope.Claim(name); err != nil {
		fmt.Println("lost:", err)
		return
	}
	fmt.Println("won")
}

// TestClaimFromTwoProcessesOneWins starts two processes that claim the
// same warm cluster at the same instant, twenty times over: each time
// exactly one wins and the other is told it was claimed.
func TestClaimFromTwoProcessesOneWins(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	for round := range 20 {
		name := fmt.Sprintf("%srace%d%s%06d", testScope.Prefix(), round, warmInfix, round)
		c, err := testScope.Open(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(c.Kubeconfig), 0o700); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(300 * time.Millisecond).UnixNano()
		outs := make([]string, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestClaimHelper$", "-test.count=1")
				cmd.Env = append(os.Environ(), "TESTBED_CLAIM="+name, fmt.Sprint("TESTBED_CLAIM_AT=", at))
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					outs[i] = "error: " + err.Error() + out.String()
					return
				}
				outs[i] = out.String()
			}()
		}
		wg.Wait()
		won := strings.Count(outs[0]+outs[1], "won\n")
		lost := strings.Count(outs[0]+outs[1], "lost: warm cluster "+name+": already claimed")
		if won != 1 || lost != 1 {
			t.Fatalf("round %d: %d won, %d lost, want 1 and 1:\n%s\n%s", round, won, lost, outs[0], outs[1])
		}
	}
}

func TestWarmNames(t *testing.T) {
	n := testScope.WarmName("holmesgpt-api")
	if svc, ok := testScope.IsWarmName(n); !ok || svc != "holmesgpt-api" {
		t.Errorf("testScope.IsWarmName(%q) = %q, %v", n, svc, ok)
	}
	if testScope.WarmName("gateway") == testScope.WarmName("gateway") {
		t.Error("two warm names are the same")
	}
	for _, n := range []string{"testbed-gateway", "other-gateway-warm-abc", "testbed-"} {
		if _, ok := testScope.IsWarmName(n); ok {
			t.Errorf("%q taken for a warm cluster's name", n)
		}
	}
}

func TestDisableControllerEditsTheControllersFlag(t *testing.T) {
	manifest := "spec:\n  containers:\n  - command:\n    - kube-controller-manager\n    - --cluster-name=x\n    - --controllers=*,bootstrapsigner,tokencleaner\n    - --leader-elect=false"
	got, err := disableController(manifest, noNodeLifecycle)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(manifest, "tokencleaner", "tokencleaner,-node-lifecycle-controller", 1); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if again, err := disableController(got, noNodeLifecycle); err != nil || again != got {
		t.Errorf("a second edit changed it again (%v):\n%s", err, again)
	}
	if _, err := disableController("spec:\n  containers:\n  - command:\n    - kube-controller-manager\n", noNodeLifecycle); err == nil || !strings.Contains(err.Error(), "no --controllers flag") {
		t.Errorf("a manifest without the flag: %v", err)
	}
}
