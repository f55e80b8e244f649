package testbed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/images"
	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/internal/testenv"
	"github.com/testbed-dev/testbed/topology"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func manifest(t *testing.T, name, body string) []kube.Object {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := kube.ReadManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func deployment(name, image, command, pullPolicy string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: %[2]s
          imagePullPolicy: %[4]s
          command: [%[3]s]
`, name, image, command, pullPolicy)
}

// TestIntegrationKind runs the cluster, load, apply and readiness layers
// against one real kind cluster.
func TestIntegrationKind(t *testing.T) {
	docker, nodeImage := testenv.RequireKind(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var log bytes.Buffer
	defer func() {
		if t.Failed() {
			t.Logf("output:\n%s", log.String())
		}
	}()

	name := testScope.NameFor(fmt.Sprintf("itest-%d", time.Now().UnixNano()%100000))
	c, err := testScope.Open(name, &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Delete(context.Background(), io.Discard); err != nil {
			t.Errorf("deleting %s: %v", name, err)
		}
	})
	port := freePort(t)
	home, _ := os.UserHomeDir()
	userKubeconfig := filepath.Join(home, ".kube", "config")
	before, beforeErr := os.ReadFile(userKubeconfig)

	t0 := time.Now()
	if _, err := c.Create(ctx, cluster.CreateOptions{NodeImage: nodeImage, Service: "itest",
		Ports: []topology.Port{{Name: "http", NodePort: 30090, HostPort: port}}}, &log); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster created in %s", time.Since(t0).Round(time.Second))

	t.Run("own kubeconfig, 0600, API on 127.0.0.1; the user's untouched", func(t *testing.T) {
		st, err := os.Stat(c.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("kubeconfig mode %v, want 0600", st.Mode().Perm())
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(cfg.Host, "https://127.0.0.1:") {
			t.Errorf("API server at %s, want 127.0.0.1", cfg.Host)
		}
		after, afterErr := os.ReadFile(userKubeconfig)
		if (beforeErr == nil) != (afterErr == nil) || !bytes.Equal(before, after) {
			t.Errorf("%s changed", userKubeconfig)
		}
	})

	t.Run("every host port binds 127.0.0.1", func(t *testing.T) {
		list, err := docker.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "io.x-k8s.kind.cluster="+name))})
		if err != nil || len(list) != 1 {
			t.Fatalf("node containers: %v %v", list, err)
		}
		published := 0
		for _, p := range list[0].Ports {
			if p.PublicPort == 0 {
				continue
			}
			published++
			if p.IP != "127.0.0.1" {
				t.Errorf("port %d published on %q", p.PublicPort, p.IP)
			}
		}
		// The API server and the mapped NodePort: a check over no ports proves nothing.
		if published < 2 {
			t.Errorf("%d published ports, want the API server's and %d", published, port)
		}
	})

	b := &images.Builder{Docker: docker, Root: ".", Timeout: 5 * time.Minute}
	img, err := b.Build(ctx, "itest", &topology.Image{Dockerfile: "testdata/Dockerfile", Binaries: []topology.Binary{
		{Name: "sleeper", Package: "./testdata/sleeper"}, {Name: "crasher", Package: "./testdata/crasher"},
	}}, &log)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("load, then skip the node that has the image", func(t *testing.T) {
		var out bytes.Buffer
		if err := c.LoadImage(ctx, docker, img.Ref, img.ID, nil, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "loaded "+img.Ref) {
			t.Errorf("first load: %s", out.String())
		}
		out.Reset()
		if err := c.LoadImage(ctx, docker, img.Ref, img.ID, nil, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "already holds "+img.Ref) {
			t.Errorf("second load did not skip: %s", out.String())
		}
	})

	k, err := kube.NewClient(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "itest"
	if err := k.EnsureNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	apply := func(t *testing.T, objs []kube.Object) {
		t.Helper()
		for _, o := range objs {
			o.SetNamespace(ns)
		}
		if err := k.Apply(ctx, ns, objs, &log); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("a workload becomes ready; re-applying it changes nothing", func(t *testing.T) {
		objs := manifest(t, "ok.yaml", deployment("sleeper", img.Ref, `"/sleeper"`, "Never"))
		apply(t, objs)
		if err := k.Wait(ctx, objs, kube.WaitOptions{Timeout: 2 * time.Minute, FailOnCrashLoop: true}, &log); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := k.Apply(ctx, ns, objs, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "Deployment/sleeper unchanged") {
			t.Errorf("re-apply: %s", out.String())
		}
	})

	t.Run("a component that needs another is applied only once that one is Ready", func(t *testing.T) {
		// db becomes Ready only after its probe's 3 s delay; app needs db.
		db := manifest(t, "db.yaml", deployment("db", img.Ref, `"/sleeper"`, "Never")+
			"          readinessProbe: {exec: {command: [/sleeper, --version]}, initialDelaySeconds: 3, periodSeconds: 1}\n")
		app := manifest(t, "app.yaml", deployment("app", img.Ref, `"/sleeper"`, "Never"))
		step := func(f func() error) func(context.Context, io.Writer) error {
			return func(context.Context, io.Writer) error { return f() }
		}
		p := &engine.Plan{Name: "needs", Steps: []engine.Step{
			{Name: "apply app", Needs: []string{"ready db"}, Run: step(func() error { return k.Apply(ctx, ns, app, &log) })},
			{Name: "apply db", Run: step(func() error { return k.Apply(ctx, ns, db, &log) })},
			{Name: "ready db", Needs: []string{"apply db"}, Run: step(func() error {
				return k.Wait(ctx, db, kube.WaitOptions{Timeout: time.Minute, FailOnCrashLoop: true}, &log)
			})},
		}}
		if _, err := engine.Run(ctx, p, engine.Options{}); err != nil {
			t.Fatal(err)
		}
		pods, err := k.Core.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=db"})
		if err != nil || len(pods.Items) != 1 {
			t.Fatalf("db pods: %v", err)
		}
		var readyAt time.Time
		for _, c := range pods.Items[0].Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				readyAt = c.LastTransitionTime.Time
			}
		}
		appDep, err := k.Core.AppsV1().Deployments(ns).Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Both times come from the API server, at one-second resolution.
		if readyAt.IsZero() || appDep.CreationTimestamp.Time.Before(readyAt) {
			t.Errorf("app created at %s, db Ready at %s", appDep.CreationTimestamp.Time, readyAt)
		}
	})

	t.Run("a crashing container fails the wait in seconds with its log line", func(t *testing.T) {
		// With a readiness probe, as every service of the platform has: a
		// container without one counts as Ready the moment it starts, and a
		// Deployment can turn Available before its pod first crashes.
		objs := manifest(t, "crash.yaml", deployment("crasher", img.Ref, `"/crasher"`, "Never")+
			"          readinessProbe: {exec: {command: [/sleeper, --version]}, initialDelaySeconds: 1, periodSeconds: 1}\n")
		apply(t, objs)
		t0 := time.Now()
		err := k.Wait(ctx, objs, kube.WaitOptions{Timeout: 3 * time.Minute, FailOnCrashLoop: true}, &log)
		took := time.Since(t0)
		if err == nil || !strings.Contains(err.Error(), "CrashLoopBackOff") || !strings.Contains(err.Error(), "cannot reach the database") {
			t.Fatalf("error %v: want CrashLoopBackOff and the log line", err)
		}
		t.Logf("crash loop reported after %s", took.Round(100*time.Millisecond))
		if took > time.Minute {
			t.Errorf("took %s to report a crash loop", took)
		}
	})

	t.Run("diagnostics hold pods, events and the crashed container's previous log", func(t *testing.T) {
		dir := t.TempDir()
		if err := k.Diagnose(ctx, ns, dir); err != nil {
			t.Fatal(err)
		}
		pods, err := os.ReadFile(filepath.Join(dir, "pods.txt"))
		if err != nil || !strings.Contains(string(pods), "crasher-") || !strings.Contains(string(pods), "RESTARTS") {
			t.Errorf("pods.txt: %s %v", pods, err)
		}
		events, err := os.ReadFile(filepath.Join(dir, "events.txt"))
		if err != nil || !strings.Contains(string(events), "BackOff") {
			t.Errorf("events.txt lacks the back-off: %s %v", events, err)
		}
		prev, _ := filepath.Glob(filepath.Join(dir, "log-crasher-*-main.previous.txt"))
		if len(prev) != 1 {
			t.Fatalf("no previous log of the crasher in %s", dir)
		}
		if b, _ := os.ReadFile(prev[0]); !strings.Contains(string(b), "cannot reach the database") {
			t.Errorf("previous log: %q", b)
		}
	})

	t.Run("a missing image reports ErrImageNeverPull", func(t *testing.T) {
		objs := manifest(t, "missing.yaml", deployment("missing", "testbed/not-loaded:v0", `"/sleeper"`, "Never"))
		apply(t, objs)
		err := k.Wait(ctx, objs, kube.WaitOptions{Timeout: 2 * time.Minute, FailOnCrashLoop: true}, &log)
		if err == nil || !strings.Contains(err.Error(), "ErrImageNeverPull") || !strings.Contains(err.Error(), "Deployment/missing") {
			t.Fatalf("error %v: want ErrImageNeverPull on Deployment/missing", err)
		}
	})

	t.Run("a manifest the API server rejects names its file and object", func(t *testing.T) {
		objs := manifest(t, "rejected.yaml", strings.Replace(deployment("rejected", img.Ref, `"/sleeper"`, "Never"), "replicas: 1", "replicas: -3", 1))
		for _, o := range objs {
			o.SetNamespace(ns)
		}
		err := k.Apply(ctx, ns, objs, &log)
		if err == nil || !strings.Contains(err.Error(), "rejected.yaml") || !strings.Contains(err.Error(), "Deployment/rejected") {
			t.Fatalf("error %v: want the file and the object", err)
		}
	})

	t.Run("an unschedulable pod fails the wait", func(t *testing.T) {
		objs := manifest(t, "unsched.yaml", deployment("unscheduled", img.Ref, `"/sleeper"`, "Never")+
			"      nodeSelector: {testbed/no-such-node: \"true\"}\n")
		apply(t, objs)
		err := k.Wait(ctx, objs, kube.WaitOptions{Timeout: 2 * time.Minute, FailOnCrashLoop: true}, &log)
		if err == nil || !strings.Contains(err.Error(), "Unschedulable") || !strings.Contains(err.Error(), "Deployment/unscheduled") {
			t.Fatalf("error %v: want Unschedulable", err)
		}
	})

	t.Run("a timeout lists what is still not ready", func(t *testing.T) {
		// Runs, but its readiness probe never passes.
		body := deployment("never-ready", img.Ref, `"/sleeper"`, "Never") +
			"          readinessProbe: {exec: {command: [/crasher]}, periodSeconds: 1}\n"
		objs := manifest(t, "never.yaml", body)
		apply(t, objs)
		err := k.Wait(ctx, objs, kube.WaitOptions{Timeout: 5 * time.Second, FailOnCrashLoop: true}, &log)
		if err == nil || !strings.Contains(err.Error(), "not ready after 5s") || !strings.Contains(err.Error(), "Deployment/never-ready: InProgress") {
			t.Fatalf("error %v: want the timeout and the object's status", err)
		}
	})
}
