package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes/fake"
)

// A pod the scheduler turned away from a node that is recovering (a warm
// cluster's kubelet just after the unpause) is waited for, not failed;
// the same pod with every node healthy fails at once.
func TestUnschedulableWaitsOutANodeThatIsNotReadyYet(t *testing.T) {
	ns := "testbed-x"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "gateway-1", Namespace: ns, Labels: map[string]string{"app": "gateway"}},
		Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 node(s) had untolerated taint(s)."}}}}
	node := func(taint string, ready corev1.ConditionStatus) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Message: "container runtime is down"}}}}
		if taint != "" {
			n.Spec.Taints = []corev1.Taint{{Key: taint, Effect: corev1.TaintEffectNoSchedule}}
		}
		return n
	}
	sels := map[string]labels.Selector{"Deployment/gateway": labels.SelectorFromSet(labels.Set{"app": "gateway"})}
	watch := func(n *corev1.Node) error {
		k := &Client{Core: fake.NewClientset(pod, n)}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return k.watchPods(ctx, ns, sels, false)
	}
	for _, settling := range []*corev1.Node{node(corev1.TaintNodeNotReady, corev1.ConditionTrue), node(corev1.TaintNodeUnreachable, corev1.ConditionTrue), node("", corev1.ConditionFalse)} {
		var nr *NotReadyError
		if err := watch(settling); errors.As(err, &nr) {
			t.Errorf("node %v %v: got %v, want the wait to go on until its deadline", settling.Spec.Taints, settling.Status.Conditions[0].Status, err)
		}
	}
	err := watch(node("dedicated", corev1.ConditionTrue))
	var nr *NotReadyError
	if !errors.As(err, &nr) || !strings.Contains(nr.Reason, "Unschedulable") {
		t.Errorf("healthy node with another taint: got %v, want an Unschedulable failure at once", err)
	}
}
