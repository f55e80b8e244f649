package citest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/testenv"
)

// example is the consumer repository under examples/: its own module,
// which imports testbed's targets.
var example = filepath.Join(root, "examples", "hello")

// TestExampleListsTheImportedTargets runs `go run magefile.go -l` in the
// example, as its README says: testbed's targets, imported with
// mage:import, and its own e2e:web.
func TestExampleListsTheImportedTargets(t *testing.T) {
	out := string(mageIn(t, example, "-l"))
	for _, target := range []string{"build:images", "cluster:create", "cluster:prune", "cluster:warm", "deploy:parallel", "plan:show", "e2e:run", "e2e:all", "ci:matrix", "bench:setup", "e2e:web"} {
		if !strings.Contains(out, "  "+target+" ") {
			t.Errorf("the example's mage does not list %s:\n%s", target, out)
		}
	}
	plan := string(mageIn(t, example, "plan:show", "web"))
	if !strings.Contains(plan, "create cluster") || !strings.Contains(plan, "apply web") {
		t.Errorf("plan:show web in the example:\n%s", plan)
	}
}

// TestPruneInTheExampleLeavesOtherClustersAlone runs the example's
// cluster:prune with four clusters on the engine: one of the reference
// platform (kept by a user: scope testbed), one the example made (scope
// hello: its name and its made record, by a run that has ended), one the
// example's run still running made (this test's process: prune leaves it
// and says so), one whose name starts with hello-
// that a user made and a run only used (a state dir with its kubeconfig,
// as E2E_REUSE_CLUSTER=1 and deploy:parallel write, but no made record)
// and one that testbed never saw. Only the example's goes. Then
// cluster:delete web, with hello-web made by hand and used the same way,
// refuses (exit 2) and leaves it.
//
// The clusters are node containers with kind's cluster label, not started:
// that label is what kind itself lists and deletes clusters by, and a
// started node would cost a minute here for nothing prune looks at.
func TestPruneInTheExampleLeavesOtherClustersAlone(t *testing.T) {
	docker, nodeImage := testenv.RequireKind(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	n := time.Now().UnixNano() % 100000
	main := fmt.Sprintf("testbed-kept%d", n)
	ours := fmt.Sprintf("hello-made%d", n)
	live := fmt.Sprintf("hello-live%d", n)
	used := fmt.Sprintf("hello-used%d", n)
	stranger := fmt.Sprintf("hello-stranger%d", n)
	const web = "hello-web" // cluster:delete web's cluster
	exists := func(name string) bool {
		cs, err := docker.ContainerList(ctx, container.ListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Labels["io.x-k8s.kind.cluster"] == name {
				return true
			}
		}
		return false
	}
	if exists(web) {
		t.Fatalf("a cluster %s exists on this engine: this test needs the name (delete it with kind delete cluster --name %s if it is yours)", web, web)
	}
	// The run that made ours and main has ended.
	maker := exec.Command("true")
	if err := maker.Run(); err != nil {
		t.Fatal(err)
	}
	ended := cluster.Holder{Pid: maker.Process.Pid, Start: "1"}
	for _, c := range []struct {
		name  string
		scope cluster.Scope   // "": no state: testbed never saw it
		made  *cluster.Holder // nil: a kubeconfig only, as a run that used it writes
	}{{main, "testbed", &ended}, {ours, "hello", &ended}, {live, "hello", new(cluster.Self())}, {used, "hello", nil}, {stranger, "", nil}, {web, "hello", nil}} {
		node(ctx, t, docker, nodeImage, c.name)
		if c.scope == "" {
			continue
		}
		dir, err := c.scope.StateDir(c.name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if c.made != nil {
			if err := c.scope.RecordMadeBy(c.name, *c.made); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "kubeconfig"), []byte(userKubeconfig), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(ctx, "go", "run", "magefile.go", "cluster:prune")
	cmd.Dir = example
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("cluster:prune in the example: %v\n%s", err, out.String())
	}
	t.Logf("cluster:prune in the example:\n%s", out.String())
	kubeconfigKept := func(name string) bool {
		dir, _ := cluster.Scope("hello").StateDir(name)
		b, err := os.ReadFile(filepath.Join(dir, "kubeconfig"))
		return err == nil && string(b) == userKubeconfig
	}
	if !exists(main) {
		t.Errorf("the example's prune deleted %s, the reference platform's cluster", main)
	}
	if dir, _ := cluster.Scope("testbed").StateDir(main); !isDir(dir) {
		t.Errorf("the example's prune removed %s's state (%s)", main, dir)
	}
	if strings.Contains(out.String(), main) {
		t.Errorf("the example's prune speaks of %s, which is not its business", main)
	}
	if exists(ours) {
		t.Errorf("the example's prune left %s, a cluster it made", ours)
	}
	if dir, _ := cluster.Scope("hello").StateDir(ours); isDir(dir) {
		t.Errorf("the example's prune left %s's state (%s)", ours, dir)
	}
	for _, name := range []string{used, stranger} {
		if !exists(name) {
			t.Errorf("the example's prune deleted %s, which it did not make", name)
		}
		if !strings.Contains(out.String(), "left "+name) {
			t.Errorf("the example's prune does not say it left %s", name)
		}
	}
	if !exists(live) {
		t.Errorf("the example's prune deleted %s, made by a run that is still running", live)
	}
	if !strings.Contains(out.String(), "left "+live+": made by a run that is still running") {
		t.Errorf("the example's prune does not say it left %s, in use", live)
	}
	if !kubeconfigKept(used) {
		t.Errorf("the example's prune changed or removed the kubeconfig of %s, which it did not make", used)
	}

	cmd = exec.CommandContext(ctx, "go", "run", "magefile.go", "cluster:delete", "web")
	cmd.Dir = example
	out.Reset()
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("cluster:delete web in the example:\n%s", out.String())
	// go run exits 1 for any failure of the program and prints its code.
	if err == nil || !strings.Contains(out.String(), "exit status 2") {
		t.Errorf("cluster:delete of %s, which testbed did not make: %v, want exit code 2 (bad input)", web, err)
	}
	if !strings.Contains(out.String(), "kind delete cluster --name "+web) {
		t.Errorf("cluster:delete's refusal does not say how to delete %s anyway", web)
	}
	if !exists(web) {
		t.Errorf("cluster:delete deleted %s, which testbed did not make", web)
	}
	if !kubeconfigKept(web) {
		t.Errorf("cluster:delete changed or removed the kubeconfig of %s, which testbed did not make", web)
	}
}

// userKubeconfig stands for the kubeconfig a run writes for a cluster it
// uses: valid, so that a wrong deletion goes through instead of failing
// on it.
const userKubeconfig = "apiVersion: v1\nkind: Config\nclusters: []\n# a user's cluster\n"

// node creates (does not start) a node container of the named cluster.
func node(ctx context.Context, t *testing.T, docker *client.Client, image, name string) {
	t.Helper()
	_, err := docker.ContainerCreate(ctx, &container.Config{
		Image:  image,
		Labels: map[string]string{"io.x-k8s.kind.cluster": name, "io.x-k8s.kind.role": "control-plane"},
	}, nil, nil, nil, name+"-control-plane")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = docker.ContainerRemove(context.Background(), name+"-control-plane", container.RemoveOptions{Force: true, RemoveVolumes: true})
	})
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
