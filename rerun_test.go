package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/internal/testenv"
	"github.com/testbed-dev/testbed/topology"
)

// rerunFixture writes a two-component platform: front needs back, each its
// own image built here. Everything lives in a temporary directory except
// the Go package the images compile (testdata/sleeper).
// The service is prefix plus a number unique to this run, so that runs
// side by side do not share clusters.
func rerunFixture(t *testing.T, prefix string) (service, dir string) {
	service = fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%100000)
	dir = t.TempDir()
	// Inputs unique to this run: an image left by an earlier run must not
	// make a first build "cached".
	files := map[string]string{
		"front/Dockerfile": fmt.Sprintf("FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\nLABEL run=%s\n", service),
		"back/Dockerfile":  fmt.Sprintf("FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\nLABEL role=back run=%s\n", service),
		"topology.yaml": fmt.Sprintf(`namespace: rerun
images:
  front: {dockerfile: %[1]s/front/Dockerfile, binaries: [{name: sleeper, package: ./testdata/sleeper}]}
  back: {dockerfile: %[1]s/back/Dockerfile, binaries: [{name: sleeper, package: ./testdata/sleeper}]}
components:
  back: {manifests: %[1]s/m/back, images: [back]}
  front: {manifests: %[1]s/m/front, images: [front], needs: [back]}
services:
  %[2]s:
    components: [back, front]
    suite: ./none
`, dir, service),
	}
	for _, name := range []string{"front", "back"} {
		files["m/"+name+"/kustomization.yaml"] = "resources: [deploy.yaml]\n"
		files["m/"+name+"/deploy.yaml"] = deployment(name, name, `"/sleeper"`, "IfNotPresent")
	}
	for p, body := range files {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return service, dir
}

type podState struct {
	uid      string
	restarts int32
}

func podsByApp(t *testing.T, k *kube.Client, ns string) map[string]podState {
	t.Helper()
	pods, err := k.Core.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]podState{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		var r int32
		for _, cs := range p.Status.ContainerStatuses {
			r += cs.RestartCount
		}
		out[p.Labels["app"]] = podState{string(p.UID), r}
	}
	return out
}

// loadFixture loads the topology rerunFixture wrote (after any edit).
func loadFixture(t *testing.T, dir string) *topology.Topology {
	t.Helper()
	topo, err := topology.Load(filepath.Join(dir, "topology.yaml"), ".")
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// TestIntegrationIncrementalRerun: on a kept cluster, a change to one
// image's inputs rebuilds, loads and restarts only that image's workload;
// a manifest-only change builds and loads nothing.
func TestIntegrationIncrementalRerun(t *testing.T) {
	docker, nodeImage := testenv.RequireKind(t)
	service, dir := rerunFixture(t, "itest-rerun")
	topo := loadFixture(t, dir)
	c, _ := testScope.Open(testScope.NameFor(service), nil)
	t.Cleanup(func() {
		c.Delete(context.Background(), &bytes.Buffer{})
		for _, ref := range []string{"testbed/front", "testbed/back"} {
			imgs, _ := docker.ImageList(context.Background(), image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", ref))})
			for _, img := range imgs {
				docker.ImageRemove(context.Background(), img.ID, image.RemoveOptions{Force: true})
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	parts := Parts{Build: true, Create: true, Load: true, Deploy: true}
	run := func(t *testing.T) string {
		t.Helper()
		var out bytes.Buffer
		tb := &Testbed{Opts: Options{Root: ".", BuildConcurrency: 1, ReuseCluster: true, KeepCluster: true, NodeImage: nodeImage,
			Timeout: 2 * time.Minute, BuildTimeout: 5 * time.Minute, Artifacts: t.TempDir()}, Topo: topo, Out: &out}
		if _, err := tb.Run(ctx, service, parts); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		return out.String()
	}

	run(t)
	k, err := kube.NewClient(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	first := podsByApp(t, k, "rerun")

	t.Run("a changed image rebuilds, loads and restarts only its workload", func(t *testing.T) {
		edited := fmt.Sprintf("FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\nLABEL run=%s edit=1\n", service)
		if err := os.WriteFile(filepath.Join(dir, "front/Dockerfile"), []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		out := run(t)
		for _, want := range []string{"built: testbed/front:", "cached: testbed/back:", "already holds testbed/back:", "loaded testbed/front:", "Deployment/back unchanged", "Deployment/front configured"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		now := podsByApp(t, k, "rerun")
		if now["back"] != first["back"] {
			t.Errorf("back's pod changed: %+v → %+v", first["back"], now["back"])
		}
		if now["front"].uid == first["front"].uid {
			t.Error("front's pod was not replaced")
		}
		first = now
	})

	t.Run("a manifest-only change builds and loads nothing", func(t *testing.T) {
		p := filepath.Join(dir, "m/front/deploy.yaml")
		body, _ := os.ReadFile(p)
		edited := strings.Replace(string(body), "          command:", "          env: [{name: MODE, value: edited}]\n          command:", 1)
		if err := os.WriteFile(p, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		out := run(t)
		if strings.Contains(out, "built: ") || strings.Contains(out, "loaded ") {
			t.Errorf("a manifest change built or loaded an image:\n%s", out)
		}
		if !strings.Contains(out, "Deployment/front configured") || !strings.Contains(out, "Deployment/back unchanged") {
			t.Errorf("apply did not change exactly front:\n%s", out)
		}
		now := podsByApp(t, k, "rerun")
		if now["back"] != first["back"] || now["front"].uid == first["front"].uid {
			t.Errorf("pods before %+v after %+v: want back kept, front replaced", first, now)
		}
	})
}
