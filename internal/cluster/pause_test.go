package cluster

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/testbed-dev/testbed/internal/testenv"
)

// pauseFor is longer than kube-controller-manager's default node grace
// period (50 s): with the defaults the node is marked unknown and tainted
// unreachable when the controller manager wakes up.
const pauseFor = 75 * time.Second

// TestIntegrationClusterSurvivesAPause creates a cluster, checks that the
// kubeadm patches took (CoreDNS: one replica probed every second), pauses
// its node longer than the default node grace period, unpauses it, and
// then requires the node to stay Ready and untainted and a new pod to run.
func TestIntegrationClusterSurvivesAPause(t *testing.T) {
	docker, nodeImage := testenv.RequireKind(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := openTestCluster(t, "pause")
	if _, err := c.Create(ctx, CreateOptions{NodeImage: nodeImage, Service: "pause"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 10 * time.Second
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dns, err := k.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := dns.Spec.Replicas; r == nil || *r != 1 {
		t.Errorf("CoreDNS has %v replicas, want 1 (kubeadm patch)", r)
	}
	for _, ct := range dns.Spec.Template.Spec.Containers {
		if ct.ReadinessProbe == nil || ct.ReadinessProbe.PeriodSeconds != 1 {
			t.Errorf("CoreDNS container %s: readiness probe %+v, want periodSeconds 1", ct.Name, ct.ReadinessProbe)
		}
	}
	if dns.Generation != 1 {
		t.Errorf("CoreDNS Deployment generation %d: patched after creation (a rollout), not by kubeadm", dns.Generation)
	}
	waitFor(ctx, t, time.Minute, "a ready kube-dns endpoint", func() (bool, string) {
		slices, err := k.DiscoveryV1().EndpointSlices("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=kube-dns"})
		if err != nil {
			return false, err.Error()
		}
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					return true, ""
				}
			}
		}
		return false, "no ready endpoint"
	})
	t.Logf("kube-dns ready %s after kind returned", time.Since(created).Round(100*time.Millisecond))
	// The controllers made CoreDNS's pod and its endpoints with the one
	// credential of sharedCredentialPatch, given to a node image of 1.29 on:
	// a controller given its own (the default) makes its service account
	// first.
	ns, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	onNode, err := nodeOutput(ctx, ns[0], "cat", "/kind/version")
	if err != nil {
		t.Fatal(err)
	}
	minor, err := c.nodeKubeMinor(ctx, nodeImage)
	if err != nil || !strings.HasPrefix(onNode, fmt.Sprintf("v1.%d.", minor)) {
		t.Fatalf("nodeKubeMinor(%s) = %d, %v; the node says %s", nodeImage, minor, err, onNode)
	}
	if minor < sharedCredentialSince {
		t.Fatalf("node image %s is Kubernetes %s: this test needs 1.%d or later", nodeImage, onNode, sharedCredentialSince)
	}
	kcm, err := k.CoreV1().Pods("kube-system").Get(ctx, "kube-controller-manager-"+c.Name+"-control-plane", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if args := strings.Join(kcm.Spec.Containers[0].Command, " "); !strings.Contains(args, "--use-service-account-credentials=false") || !strings.Contains(args, "--kubeconfig=/etc/kubernetes/super-admin.conf") {
		t.Errorf("kube-controller-manager runs %q: want one shared credential (sharedCredentialPatch)", args)
	}
	for _, sa := range []string{"replicaset-controller", "endpointslice-controller"} {
		if _, err := k.CoreV1().ServiceAccounts("kube-system").Get(ctx, sa, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("service account kube-system/%s: %v, want not found (a controller with a credential of its own makes it)", sa, err)
		}
	}

	node := c.Name + "-control-plane"
	// Pause restarts the controller manager without its node lifecycle
	// controller; done here first, the counts below are taken of the one
	// that sleeps through the pause.
	if err := c.withoutNodeLifecycle(ctx, ns[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, time.Minute, "Ready controller manager without the node lifecycle controller", func() (bool, string) {
		p, err := k.CoreV1().Pods("kube-system").Get(ctx, "kube-controller-manager-"+node, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if !strings.Contains(strings.Join(p.Spec.Containers[0].Command, " "), noNodeLifecycle) {
			return false, fmt.Sprintf("its command is %q", p.Spec.Containers[0].Command)
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				return true, ""
			}
		}
		return false, "not Ready"
	})
	restarts := controlPlaneRestarts(ctx, t, k)
	wasReady := readySince(ctx, t, k)
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pauseFor)
	unpaused := time.Now()
	if err := c.Unpause(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, 30*time.Second, "the API server after the unpause", func() (bool, string) {
		_, err := k.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("API server answered %s after the unpause", time.Since(unpaused).Round(100*time.Millisecond))

	n, err := k.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pauseImage string
	for _, img := range n.Status.Images {
		for _, name := range img.Names {
			if strings.Contains(name, "/pause:") {
				pauseImage = name
			}
		}
	}
	if pauseImage == "" {
		t.Fatal("the node holds no pause image to run a pod with")
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "after-pause", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "p", Image: pauseImage, ImagePullPolicy: corev1.PullNever}}},
	}
	if _, err := k.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// For 30 s after the unpause (the controller manager sees the lease
	// clock jump within seconds): the node must never be marked
	// unreachable (the node lifecycle controller's verdict, which the
	// grace period prevents) nor tainted not-ready (that controller is off
	// on a paused cluster); a NotReady the kubelet reports (frozen with the
	// node, its last runtime check is stale as it wakes: "container
	// runtime is down") must end within 5 s; no pod Ready before the pause
	// may leave Ready (a kubelet restarted across the pause writes each
	// probed pod unready until its first probe: the outage Pause avoids);
	// and the new pod must run.
	var running time.Duration
	var notReadyFor time.Duration
	notReady, left := "", ""
	for time.Since(unpaused) < 30*time.Second || running == 0 {
		if time.Since(unpaused) > time.Minute {
			t.Fatal("the pod did not run within a minute of the unpause")
		}
		n, err := k.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == corev1.TaintNodeUnreachable || taint.Key == corev1.TaintNodeNotReady {
				t.Fatalf("%s after the unpause the node is tainted %s", time.Since(unpaused).Round(100*time.Millisecond), taint.Key)
			}
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionUnknown {
				t.Fatalf("%s after the unpause the node's readiness is Unknown (%s): the controller manager gave up on it", time.Since(unpaused).Round(100*time.Millisecond), cond.Reason)
			}
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionFalse {
				notReadyFor += 500 * time.Millisecond
				if notReady == "" {
					notReady = fmt.Sprintf("%s after the unpause the kubelet reported NotReady (%s: %s)", time.Since(unpaused).Round(100*time.Millisecond), cond.Reason, cond.Message)
				}
			}
		}
		if left == "" {
			left = leftReady(ctx, t, k, wasReady)
		}
		p, err := k.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if running == 0 && p.Status.Phase == corev1.PodRunning {
			running = time.Since(unpaused)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if notReady != "" {
		t.Logf("%s, for about %s", notReady, notReadyFor)
	}
	// About 2 s measured here, 10 s with the kubelet's default status
	// period: 5 s leaves room for a loaded machine.
	if notReadyFor > 5*time.Second {
		t.Errorf("%s, and stayed so for about %s (the kubelet computes its status every second)", notReady, notReadyFor)
	}
	if left != "" {
		t.Errorf("after the unpause %s", left)
	}
	t.Logf("a new pod ran %s after the unpause", running.Round(100*time.Millisecond))
	if after := controlPlaneRestarts(ctx, t, k); !maps.Equal(after, restarts) {
		t.Errorf("control-plane containers restarted across the pause (restarts %v → %v): a liveness probe failed", restarts, after)
	}

	// A pod's cgroup left frozen inside the node (runc killed while it set
	// a container up, as a Ctrl-C during a run can) must not keep the
	// cluster from being deleted.
	info, err := docker.ContainerInspect(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	frozen := freezePodCgroup(t, fmt.Sprintf("/proc/%d/cgroup", info.State.Pid), info.ID)
	var out strings.Builder
	if err := c.Delete(ctx, &out); err != nil {
		t.Fatalf("deleting a cluster with a frozen pod cgroup (%s): %v\n%s", frozen, err, out.String())
	}
	if !strings.Contains(out.String(), "thawed") {
		t.Errorf("Delete did not say it thawed %s:\n%s", frozen, out.String())
	}
	if _, err := docker.ContainerInspect(ctx, node); err == nil {
		t.Errorf("node %s is still there after Delete", node)
	}
}

// freezePodCgroup freezes the cgroup of one of the node's pod containers,
// as runc leaves it when it is killed mid-setup, and returns its path.
func freezePodCgroup(t *testing.T, procCgroup, id string) string {
	t.Helper()
	for _, dir := range cgroupDirs(procCgroup, "/sys/fs/cgroup", id) {
		var found string
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && found == "" && strings.HasPrefix(d.Name(), "cri-containerd-") {
				found = path
			}
			return nil
		})
		if found == "" {
			continue
		}
		file, v := "freezer.state", "FROZEN"
		if _, err := os.Stat(filepath.Join(found, file)); err != nil {
			file, v = "cgroup.freeze", "1"
		}
		if err := os.WriteFile(filepath.Join(found, file), []byte(v), 0); err != nil {
			t.Fatalf("freezing %s: %v", found, err)
		}
		return found
	}
	t.Fatalf("no pod container cgroup under the node's cgroups (%s): this test needs to run as root beside the Docker engine", procCgroup)
	return ""
}

// readySince maps each Ready pod of the cluster to when it last became
// Ready.
func readySince(ctx context.Context, t *testing.T, k kubernetes.Interface) map[string]time.Time {
	t.Helper()
	pods, err := k.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, p := range pods.Items {
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				out[p.Namespace+"/"+p.Name] = cond.LastTransitionTime.Time
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no pod of the cluster is Ready")
	}
	return out
}

// leftReady says which pod of was (readySince) is no longer Ready, or has
// become Ready again since (it left and came back), or "" when none has.
func leftReady(ctx context.Context, t *testing.T, k kubernetes.Interface, was map[string]time.Time) string {
	t.Helper()
	now := readySince(ctx, t, k)
	for name, since := range was {
		if at, ok := now[name]; !ok {
			return "pod " + name + " is no longer Ready"
		} else if !at.Equal(since) {
			return fmt.Sprintf("pod %s left Ready and came back (Ready since %s, not %s)", name, at.Format(time.TimeOnly), since.Format(time.TimeOnly))
		}
	}
	return ""
}

// controlPlaneRestarts sums the restarts of kube-controller-manager and
// kube-scheduler: a failed liveness probe after the clock jump restarts them.
func controlPlaneRestarts(ctx context.Context, t *testing.T, k kubernetes.Interface) map[string]int32 {
	t.Helper()
	pods, err := k.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "tier=control-plane"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int32{}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "kube-controller-manager" || cs.Name == "kube-scheduler" {
				out[cs.Name] += cs.RestartCount
			}
		}
	}
	if len(out) != 2 {
		t.Fatalf("found %v of kube-controller-manager and kube-scheduler", out)
	}
	return out
}

// waitFor polls cond every 250 ms until it holds, or fails the test after d.
func waitFor(ctx context.Context, t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("no %s within %s: %s", what, d, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
