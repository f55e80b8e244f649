package testbed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbed-dev/testbed/internal/testenv"
)

// TestWarmClaimWaitsForReadinessAfterTheUnpause warms two clusters of a
// service whose front pod's readiness probe fails while a file exists on
// the node. A run claims the first and passes. Then, while the second is
// paused, the file is made: on the unpause the API server still says the
// pod is Ready (its status from before the pause, and for 100 s after it:
// failureThreshold 100), and the run must not believe it: it fails in the
// ready step, naming the pod, and deletes the claimed cluster.
func TestWarmClaimWaitsForReadinessAfterTheUnpause(t *testing.T) {
	docker, nodeImage := testenv.RequireKind(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	service, dir := rerunFixture(t, "itest-fresh")
	gate := "/var/tmp/" + service
	front := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: front}
spec:
  replicas: 1
  selector: {matchLabels: {app: front}}
  template:
    metadata: {labels: {app: front}}
    spec:
      terminationGracePeriodSeconds: 1
      volumes: [{name: gate, hostPath: {path: %s, type: DirectoryOrCreate}}]
      containers:
        - name: main
          image: front
          imagePullPolicy: IfNotPresent
          command: ["/sleeper"]
          volumeMounts: [{name: gate, mountPath: /gate}]
          readinessProbe:
            exec: {command: ["/sleeper", "--unless", "/gate/broken"]}
            periodSeconds: 1
            failureThreshold: 100
`, gate)
	if err := os.WriteFile(filepath.Join(dir, "m/front/deploy.yaml"), []byte(front), 0o644); err != nil {
		t.Fatal(err)
	}
	topo := loadFixture(t, dir)
	var out bytes.Buffer
	tb := &Testbed{Opts: Options{Root: ".", NodeImage: nodeImage, Warm: true, WarmMaxAge: time.Hour, BuildConcurrency: 1, Parallel: 2, Timeout: 40 * time.Second, Artifacts: t.TempDir()}, Topo: topo, Out: &out}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		warm, _ := testScope.ListWarm(service)
		for _, w := range warm {
			if c, err := testScope.Open(w.Name, io.Discard); err == nil {
				c.Delete(context.Background(), io.Discard)
			}
		}
	})
	if err := tb.Warm(ctx, service, 2); err != nil {
		t.Fatalf("warming: %v\n%s", err, out.String())
	}
	parts := Parts{Build: true, Create: true, Load: true, Deploy: true, Destroy: true}

	out.Reset()
	if _, err := tb.Run(ctx, service, parts); err != nil {
		t.Fatalf("claiming a healthy warm cluster: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "claimed warm cluster") {
		t.Fatalf("the first run did not claim a warm cluster:\n%s", out.String())
	}

	warm, err := testScope.ListWarm(service)
	if err != nil || len(warm) != 1 {
		t.Fatalf("after one claim: %v warm clusters (%v), want 1", len(warm), err)
	}
	info, err := docker.ContainerInspect(ctx, warm[0].Name+"-control-plane")
	if err != nil {
		t.Fatal(err)
	}
	if !info.State.Paused {
		t.Fatalf("warm cluster %s is not paused", warm[0].Name)
	}
	// The node's filesystem, seen from the host while the node is frozen.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/root%s/broken", info.State.Pid, gate), nil, 0o644); err != nil {
		t.Fatalf("breaking the paused pod's readiness: %v (this test runs as root beside the Docker engine)", err)
	}
	out.Reset()
	_, err = tb.Run(ctx, service, parts)
	if err == nil {
		t.Fatalf("the run trusted the status from before the pause: it passed with front's readiness probe failing\n%s", out.String())
	}
	t.Logf("the run on the broken warm cluster failed: %v", err)
	all := err.Error() + "\n" + out.String()
	if !strings.Contains(all, "claimed warm cluster "+warm[0].Name) {
		t.Errorf("the second run did not claim %s:\n%s", warm[0].Name, all)
	}
	if !strings.Contains(all, "ready front") || !strings.Contains(all, "pod front-") || !strings.Contains(all, "since the unpause") {
		t.Errorf("the failure does not name front's pod and the unpause:\n%s", all)
	}
	if _, err := docker.ContainerInspect(ctx, warm[0].Name+"-control-plane"); err == nil {
		t.Errorf("the claimed warm cluster %s was not deleted after the failed run", warm[0].Name)
	}
}
