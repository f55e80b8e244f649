package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/testbed-dev/testbed/internal/registry"
	"github.com/testbed-dev/testbed/internal/testenv"
)

// TestIntegrationPodPullsFromTheLocalRegistry pushes an image built here
// to the real registry process (testbed's registry container) and runs a
// pod of it on a kind cluster made for the local registry. Nothing is
// side-loaded: before the pod, the node's containerd does not hold the
// image; the pod's events say the kubelet pulled it; after, the node holds
// it under the digest the push returned.
func TestIntegrationPodPullsFromTheLocalRegistry(t *testing.T) {
	docker, nodeImage := testenv.RequireKind(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out strings.Builder
	defer func() {
		if t.Failed() {
			t.Log(out.String())
		}
	}()
	if err := registry.Ensure(ctx, docker, "../..", &out); err != nil {
		t.Fatal(err)
	}
	built := buildSleeper(ctx, t, docker, "regtest", &out)
	remote, err := registry.Push(ctx, docker, built.Ref, built.ID, registry.Ref("regtest", built.ID), &out)
	if err != nil {
		t.Fatal(err)
	}
	if err := registry.Check(ctx, []string{remote}); err != nil {
		t.Fatalf("after the push: %v", err)
	}
	var again strings.Builder
	if again2, err := registry.Push(ctx, docker, built.Ref, built.ID, registry.Ref("regtest", built.ID), &again); err != nil || again2 != remote || !strings.Contains(again.String(), "in the registry already") {
		t.Errorf("a second push of the same content: %v: %q", err, again.String())
	}

	c := openTestCluster(t, "registry")
	if _, err := c.Create(ctx, CreateOptions{NodeImage: nodeImage, Service: "registry", Registry: true}, &out); err != nil {
		t.Fatal(err)
	}
	if err := registry.Connect(ctx, docker); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigureRegistry(ctx); err != nil {
		t.Fatal(err)
	}
	held, err := c.ImageIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := held[NormalizeRef(remote)]; ok {
		t.Fatalf("the node holds %s before any pod asked for it", remote)
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
		ObjectMeta: metav1.ObjectMeta{Name: "pulled", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "sleeper", Image: remote, ImagePullPolicy: corev1.PullAlways,
		}}},
	}
	if _, err := k.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		p, err := k.CoreV1().Pods("default").Get(ctx, "pulled", metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			break
		}
		if time.Now().After(deadline) {
			evs, _ := k.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
			for _, e := range evs.Items {
				t.Logf("event %s: %s", e.Reason, e.Message)
			}
			t.Fatalf("the pod of %s is not running after 3 min: %v %+v", remote, err, p.Status)
		}
		time.Sleep(500 * time.Millisecond)
	}
	evs, err := k.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.name", "pulled").String()})
	if err != nil {
		t.Fatal(err)
	}
	var pulled string
	for _, e := range evs.Items {
		if e.Reason == "Pulled" && strings.Contains(e.Message, remote) && strings.Contains(e.Message, "Successfully pulled") {
			pulled = e.Message
		}
	}
	if pulled == "" {
		t.Fatalf("no Pulled event for %s: the kubelet did not pull it", remote)
	}
	t.Logf("kubelet: %s", pulled)
	held, err = c.ImageIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := held[NormalizeRef(remote)]; !ok {
		t.Errorf("after the pull the node does not hold %s: %v", remote, held)
	}
}
