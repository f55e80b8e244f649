package testbed

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/internal/registry"
	"github.com/testbed-dev/testbed/internal/testenv"
	"github.com/testbed-dev/testbed/topology"
)

// outsideCluster makes the "existing" cluster the way its administrator
// would, with kind's library and kind's local-registry recipe, not with
// testbed: a cluster testbed did not make, whose nodes pull
// localhost:5001/* from testbed's registry. It is deleted at the end of
// the test.
func outsideCluster(t *testing.T, ctx context.Context, nodeImage string) (kubeconfig string) {
	t.Helper()
	const name = "outside-e2e"
	p := kindcluster.NewProvider(kindcluster.ProviderWithDocker())
	_ = p.Delete(name, "") // a killed earlier run of this test
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	raw := "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\ncontainerdConfigPatches:\n- |-\n  " +
		strings.ReplaceAll(registry.ContainerdPatch, "\n", "\n  ") + "\n"
	if err := p.Create(name, kindcluster.CreateWithRawConfig([]byte(raw)), kindcluster.CreateWithNodeImage(nodeImage),
		kindcluster.CreateWithKubeconfigPath(kubeconfig), kindcluster.CreateWithWaitForReady(3*time.Minute)); err != nil {
		t.Fatalf("creating the outside cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Delete(name, kubeconfig); err != nil {
			t.Errorf("deleting the outside cluster: %v", err)
		}
	})
	nodes, err := p.ListNodes(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := registry.ConfigureNode(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := registry.Connect(ctx, testenv.RequireDocker(t)); err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}

// TestTwoRunsAtOnceOnAnExistingCluster: two e2e:web runs at once against a
// cluster testbed did not make, images from the registry. Each has its own
// namespace (store counts visitors per namespace: a shared store would
// fail the suite's counts), its own ClusterRole copies, and a port-forward
// instead of the node port both Services had. Afterwards the cluster, its
// namespaces and the CRD are as they were (the CRD stays), and no
// namespace, cluster-scoped copy or port-forward is left.
func TestTwoRunsAtOnceOnAnExistingCluster(t *testing.T) {
	tag := fmt.Sprintf("shared-%d", time.Now().UnixNano())
	tb := registryFixture(t, Options{Registry: registry.Host, Tag: tag})
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	if err := tb.Push(ctx, "web"); err != nil {
		t.Fatalf("%v\n%s", err, tb.Out)
	}
	extras, err := filepath.Abs("testdata/shared/extras")
	if err != nil {
		t.Fatal(err)
	}
	topo := tb.Topo
	topo.Components["extras"] = &topology.Component{Manifests: extras}
	topo.Services["web"].Components = append([]string{"extras"}, topo.Services["web"].Components...)

	kubeconfig := outsideCluster(t, ctx, tb.Opts.NodeImage)
	k, err := kube.NewClient(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	// A bystander: a namespace of someone else's, with a ConfigMap.
	if err := k.CreateNamespace(ctx, "bystander", nil); err != nil {
		t.Fatal(err)
	}
	cm, err := k.Core.CoreV1().ConfigMaps("bystander").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := namespaces(t, ctx, k)
	// A CRD someone else installed, which the topology's manifest would change.
	crd := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	_, err = k.Dynamic.Resource(crd).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "farewells.hello.testbed.dev"},
		"spec": map[string]any{"group": "hello.testbed.dev", "scope": "Namespaced",
			"names":    map[string]any{"kind": "Farewell", "plural": "farewells", "singular": "farewell"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true, "schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}},
	}}, metav1.CreateOptions{FieldManager: "platform-admin"})
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		out        strings.Builder
		err        error
		start, end time.Time
	}
	var res [2]result
	var wg sync.WaitGroup
	for i := range res {
		opts := tb.Opts
		opts.Existing, opts.Artifacts = kubeconfig, t.TempDir()
		run := New(topo, opts)
		run.Out = &res[i].out
		wg.Go(func() {
			res[i].start = time.Now()
			_, res[i].err = run.Run(ctx, "web", PartsE2E)
			res[i].end = time.Now()
		})
	}
	wg.Wait()
	nsOf := regexp.MustCompile(`existing cluster \S+ \(context kind-outside-e2e\), namespace (hello-[a-z0-9]{5})\n`)
	var runNS []string
	var locals []string
	for i := range res {
		if res[i].err != nil {
			t.Fatalf("run %d: %v\n%s", i+1, res[i].err, &res[i].out)
		}
		m := nsOf.FindStringSubmatch(res[i].out.String())
		if m == nil {
			t.Fatalf("run %d names no namespace of its own:\n%s", i+1, &res[i].out)
		}
		runNS = append(runNS, m[1])
		for _, f := range regexp.MustCompile(`web: 127\.0\.0\.1:(\d+) → service web port 80`).FindAllStringSubmatch(res[i].out.String(), -1) {
			locals = append(locals, f[1])
		}
		t.Logf("run %d: namespace %s, %s", i+1, m[1], res[i].end.Sub(res[i].start).Round(100*time.Millisecond))
	}
	if runNS[0] == runNS[1] {
		t.Errorf("both runs used namespace %s", runNS[0])
	}
	if !res[0].start.Before(res[1].end) || !res[1].start.Before(res[0].end) {
		t.Error("the runs did not overlap")
	}
	if len(locals) != 2 {
		t.Errorf("port-forwards of web: %v, want one per run", locals)
	}
	for _, out := range []string{res[0].out.String(), res[1].out.String()} {
		if !strings.Contains(out, "ClusterRole/greeter-hello-") || !strings.Contains(out, "CustomResourceDefinition/greetings.hello.testbed.dev") {
			t.Errorf("a run did not apply its own ClusterRole copy and the CRD:\n%s", out)
		}
		if !strings.Contains(out, "CustomResourceDefinition/farewells.hello.testbed.dev left as it is") {
			t.Errorf("a run did not say it left the CRD someone else installed:\n%s", out)
		}
	}
	// Its status changes on its own (Established); what a run would change
	// is its spec and who manages it.
	fw, err := k.Dynamic.Resource(crd).Get(ctx, "farewells.hello.testbed.dev", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if names, _, _ := unstructured.NestedMap(fw.Object, "spec", "names"); names["shortNames"] != nil {
		t.Errorf("the CRD someone else installed got the manifest's short names: %v", names)
	}
	for _, m := range fw.GetManagedFields() {
		if strings.HasPrefix(m.Manager, kube.FieldManager) {
			t.Errorf("testbed applied to the CRD someone else installed: %+v", m)
		}
	}

	// What is left: what was there before, and the CRD.
	if after := namespaces(t, ctx, k); !maps.Equal(before, after) {
		t.Errorf("namespaces before %v, after %v", before, after)
	}
	got, err := k.Core.CoreV1().ConfigMaps("bystander").Get(ctx, "mine", metav1.GetOptions{})
	if err != nil || got.ResourceVersion != cm.ResourceVersion || got.Data["k"] != "v" {
		t.Errorf("the bystander's ConfigMap changed: %v %v", got, err)
	}
	if _, err := k.Dynamic.Resource(crd).Get(ctx, "greetings.hello.testbed.dev", metav1.GetOptions{}); err != nil {
		t.Errorf("the CRD is gone after the runs: %v", err)
	}
	for _, kind := range []string{"clusterroles", "clusterrolebindings"} {
		list, err := k.Dynamic.Resource(schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: kind}).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			if strings.HasPrefix(o.GetName(), "greeter") || o.GetLabels()[kube.RunLabel] != "" {
				t.Errorf("%s %s is left", kind, o.GetName())
			}
		}
	}
	for _, port := range locals {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
			c.Close()
			t.Errorf("127.0.0.1:%s still accepts connections after the run", port)
		}
	}
	for _, ns := range runNS {
		if _, err := k.Core.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s: %v, want it gone", ns, err)
		}
	}
	forwardOutlivesItsPod(t, ctx, k, tag)
}

// forwardOutlivesItsPod: a port-forward whose pod goes moves to another
// Ready pod of the Service on the same local port (a suite that restarts
// a pod keeps its URL), and ends with Stop.
func forwardOutlivesItsPod(t *testing.T, ctx context.Context, k *kube.Client, tag string) {
	t.Helper()
	const ns = "forward-check"
	if err := k.CreateNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "store"}
	two := int32(2)
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}, PeriodSeconds: 1}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "store"},
		Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "store", Image: registry.Host + "/store:" + tag,
				Env: []corev1.EnvVar{{Name: "STORE_TOKEN", Value: "t"}}, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}, ReadinessProbe: probe}}},
		}},
	}
	if _, err := k.Core.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "store"}, Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}}}
	if _, err := k.Core.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, err := k.Core.AppsV1().Deployments(ns).Get(ctx, "store", metav1.GetOptions{})
		if err == nil && got.Status.ReadyReplicas == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store Deployment is not Ready: %v %v", got.Status, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	f, err := k.Forward(ctx, ns, "store", 80)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", f.Local)
	client := &http.Client{Timeout: 2 * time.Second}
	get := func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	}
	if err := get(); err != nil {
		f.Stop()
		t.Fatalf("through the forward: %v", err)
	}
	now := int64(0)
	if err := k.Core.CoreV1().Pods(ns).Delete(ctx, f.Pod, metav1.DeleteOptions{GracePeriodSeconds: &now}); err != nil {
		f.Stop()
		t.Fatal(err)
	}
	// The pod's sandbox goes a moment after the pod: until then the old
	// connection may still answer.
	t0 := time.Now()
	for get() == nil && time.Since(t0) < 20*time.Second {
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the forward failed %s after its pod was deleted", time.Since(t0).Round(100*time.Millisecond))
	for err := get(); err != nil; err = get() {
		if time.Since(t0) > 30*time.Second {
			f.Stop()
			t.Fatalf("30 s after its pod %s went, the forward still fails: %v", f.Pod, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the forward answered again %s after its pod went", time.Since(t0).Round(100*time.Millisecond))
	why := f.Stop()
	t.Logf("Stop: %s", why)
	if !strings.Contains(why, "another pod took over 1 time") {
		t.Errorf("after its pod went, Stop says %q", why)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", f.Local), time.Second); err == nil {
		c.Close()
		t.Errorf("127.0.0.1:%d accepts connections after Stop", f.Local)
	}
}

// namespaces maps each namespace of the cluster to its UID.
func namespaces(t *testing.T, ctx context.Context, k *kube.Client) map[string]string {
	t.Helper()
	list, err := k.Core.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, n := range list.Items {
		m[n.Name] = string(n.UID)
	}
	return m
}
