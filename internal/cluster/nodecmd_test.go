package cluster

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testbed-dev/testbed/internal/testenv"
)

// TestIntegrationLoadEntersTheNode loads an image built here into a new
// kind node. As root with Docker on this host (CI, this machine) the load
// must have entered the node with nsenter, anywhere else gone through the
// engine's exec; either way the node's CRI, asked through the engine's
// exec (kind's own node command), must hold the image under its ID, so
// that the kubelet finds it.
func TestIntegrationLoadEntersTheNode(t *testing.T) {
	docker, nodeImage := testenv.RequireKind(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out strings.Builder
	defer func() {
		if t.Failed() {
			t.Log(out.String())
		}
	}()
	built := buildSleeper(ctx, t, docker, "nsentertest", &out)
	c := openTestCluster(t, "nsenter")
	if _, err := c.Create(ctx, CreateOptions{NodeImage: nodeImage, Service: "nsenter"}, &out); err != nil {
		t.Fatal(err)
	}
	ns, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, lookErr := exec.LookPath("nsenter")
	want := c.runtime == "docker" && os.Geteuid() == 0 && lookErr == nil
	if _, entered := c.nodeCommand(ctx, ns[0], "true"); entered != want {
		t.Fatalf("nodeCommand entered the node with nsenter: %v, want %v (runtime %s, uid %d, nsenter: %v)", entered, want, c.runtime, os.Geteuid(), lookErr)
	}
	if want {
		pid := c.nodePID(ctx, ns[0].String())
		if !isNode(pid, ns[0].String()) || isNode(pid, "testbed-another-node") || isNode(os.Getpid(), ns[0].String()) {
			t.Errorf("isNode takes the wrong process for node %s (pid %d)", ns[0], pid)
		}
	}

	out.Reset()
	if err := c.LoadImage(ctx, docker, built.Ref, built.ID, nil, &out); err != nil {
		t.Fatal(err)
	}
	how := "(docker exec)"
	if want {
		how = "(nsenter)"
	}
	if !strings.Contains(out.String(), "loaded "+built.Ref) || !strings.Contains(out.String(), how) {
		t.Errorf("the load said %q; want it loaded %s %s", out.String(), built.Ref, how)
	}
	inspected, err := nodeOutput(ctx, ns[0], "crictl", "inspecti", "-o", "json", built.Ref)
	if err != nil {
		t.Fatalf("the node's CRI does not hold %s after the load: %v", built.Ref, err)
	}
	var v struct {
		Status struct{ ID string } `json:"status"`
	}
	if err := json.Unmarshal([]byte(inspected), &v); err != nil || v.Status.ID != built.ID {
		t.Errorf("the node's CRI holds %s as %q (%v), want %s", built.Ref, v.Status.ID, err, built.ID)
	}
	// A second load finds it there, through the same path.
	out.Reset()
	if err := c.LoadImage(ctx, docker, built.Ref, built.ID, nil, &out); err != nil || !strings.Contains(out.String(), "already holds "+built.Ref) {
		t.Errorf("a second load: %v: %q; want: already holds %s", err, out.String(), built.Ref)
	}
	t.Logf("node %s, pid %s: %s", ns[0], strconv.Itoa(c.nodePID(ctx, ns[0].String())), strings.TrimSpace(out.String()))

	// kind's own node commands, through the shim of fastNodeExec (which
	// puts it on PATH only where nsenter works: its own test checks that).
	if want {
		other := "testbed-shimtest-" + strconv.Itoa(os.Getpid())
		if b, err := exec.CommandContext(ctx, "docker", "run", "-d", "--name", other, built.Ref).CombinedOutput(); err != nil {
			t.Fatalf("docker run %s: %v: %s", built.Ref, err, b)
		}
		defer exec.Command("docker", "rm", "-f", other).Run()
		checkNodeExecShim(ctx, t, ns[0].String(), other)
	}
}
