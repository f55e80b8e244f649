package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/testbed-dev/testbed/internal/testenv"
)

// redisImage is a third-party image to bake: the one testbed's runs use.
func redisImage(t *testing.T, docker *client.Client) (ref, id string) {
	t.Helper()
	ref = os.Getenv("E2E_REDIS_IMAGE")
	if ref == "" {
		ref = "redis:7-alpine"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	got, err := docker.ImageInspect(ctx, ref)
	if err != nil {
		rc, perr := docker.ImagePull(ctx, ref, image.PullOptions{})
		if perr != nil {
			t.Fatalf("%s is neither on the engine (%v) nor pullable (%v)", ref, err, perr)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
		if got, err = docker.ImageInspect(ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	return ref, got.ID
}

// TestIntegrationBakedNodeImage bakes Redis into a node image, checks that
// a second bake reuses it, creates a cluster from it and checks that the
// node already holds Redis (a load imports nothing) and runs it without a
// pull.
func TestIntegrationBakedNodeImage(t *testing.T) {
	docker, nodeImage := testenv.RequireKind(t)
	ref, id := redisImage(t, docker)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out strings.Builder
	baked, err := testScope.BakeNodeImage(ctx, docker, nodeImage, []string{ref, "testbed/absent:never"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(baked.Images) != 1 || baked.Images[0] != ref || !strings.HasPrefix(baked.Ref, testScope.BakedRepo()+":") {
		t.Fatalf("baked %+v\n%s", baked, out.String())
	}
	if !strings.Contains(out.String(), "testbed/absent:never is not on this host") {
		t.Errorf("an absent image was not reported:\n%s", out.String())
	}
	out.Reset()
	absent, err := testScope.BakeNodeImage(ctx, docker, "testbed/absent-node:never", []string{ref}, &out)
	if err != nil || absent.Ref != "testbed/absent-node:never" || len(absent.Images) != 0 || !strings.Contains(out.String(), "not baking") {
		t.Errorf("baking into an absent node image: %+v, %v, %q; want the base as it is, nothing baked", absent, err, out.String())
	}
	again, err := testScope.BakeNodeImage(ctx, docker, nodeImage, []string{ref}, io.Discard)
	if err != nil || !again.Cached || again.Ref != baked.Ref {
		t.Errorf("second bake: %+v, %v; want the first one, cached", again, err)
	}
	c := openTestCluster(t, "bake")
	if _, err := c.Create(ctx, CreateOptions{NodeImage: baked.Ref, Service: "bake"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	// Every image the node holds was unpacked at the bake: containerd
	// warns at its start of each one that is not.
	ns, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if log, err := nodeOutput(ctx, ns[0], "journalctl", "-u", "containerd", "--no-pager"); err != nil {
		t.Fatal(err)
	} else if n := strings.Count(log, "is not unpacked"); n > 0 {
		t.Errorf("containerd found %d images of the baked node image not unpacked:\n%s", n, grepLines(log, "is not unpacked"))
	}
	// The unpacked layers are read in place from the node image's layers:
	// the node's volume at /var, which the engine fills by copying the
	// image's /var file by file, holds no image (about 1 GB if it did).
	if du, err := nodeOutput(ctx, ns[0], "du", "-sxm", "/var"); err != nil {
		t.Fatal(err)
	} else if mb, err := strconv.Atoi(strings.Fields(du + " ?")[0]); err != nil || mb > 300 {
		t.Errorf("du -sxm /var on the node: %q; want under 300 MB: the images' snapshots were copied into the volume", du)
	} else {
		t.Logf("the node's /var holds %d MB", mb)
	}
	out.Reset()
	if err := c.LoadImage(ctx, docker, ref, id, nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "already holds "+ref) || strings.Contains(out.String(), "loaded") {
		t.Errorf("loading a baked image into the node:\n%s\nwant: already holds %s", out.String(), ref)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "baked", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "redis", Image: ref, ImagePullPolicy: corev1.PullNever}}},
	}
	if _, err := k.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, 2*time.Minute, "running Redis pod from the baked image", func() (bool, string) {
		p, err := k.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodRunning, fmt.Sprintf("phase %s %+v", p.Status.Phase, p.Status.ContainerStatuses)
	})
}

// grepLines returns the lines of text that contain sub.
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestLayerBlobsFollowsAnIndexToThisPlatform(t *testing.T) {
	content := map[string]string{
		"sha256:index": `{"manifests":[{"digest":"sha256:arm","platform":{"os":"linux","architecture":"arm64"}},{"digest":"sha256:here","platform":{"os":"linux","architecture":"` + goruntime.GOARCH + `"}}]}`,
		"sha256:here":  `{"layers":[{"digest":"sha256:l1"},{"digest":"sha256:l2"}]}`,
		"sha256:arm":   `{"layers":[{"digest":"sha256:wrong"}]}`,
		"sha256:plain": `{"layers":[{"digest":"sha256:only"}]}`,
	}
	get := func(args ...string) (string, error) {
		if c, ok := content[args[len(args)-1]]; ok {
			return c, nil
		}
		return "", fmt.Errorf("no content %v", args)
	}
	for digest, want := range map[string]string{"sha256:index": "sha256:l1 sha256:l2", "sha256:plain": "sha256:only"} {
		got, err := layerBlobs(get, digest)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("layerBlobs(%s) = %v, %v; want %s", digest, got, err, want)
		}
	}
}
