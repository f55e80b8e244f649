package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestWhyNotServingNamesTheUnreadyPodAndItsProbe(t *testing.T) {
	ns := "testbed-x"
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "notification", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "notification"}, Ports: []corev1.ServicePort{{Port: 8080, NodePort: 30085}}}}
	pod := func(name string, ready bool) *corev1.Pod {
		st := corev1.ConditionTrue
		reason := ""
		if !ready {
			st, reason = corev1.ConditionFalse, "ContainersNotReady"
		}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "notification"}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: st, Reason: reason, Message: "containers with unready status: [app]", LastTransitionTime: metav1.Now()}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: ready}}}}
	}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: ns}, InvolvedObject: corev1.ObjectReference{Name: "notification-b"},
		Type: "Warning", Reason: "Unhealthy", Message: "Readiness probe failed: HTTP probe failed with statuscode: 503", LastTimestamp: metav1.Now()}
	k := &Client{Core: fake.NewClientset(svc, pod("notification-a", true), pod("notification-b", false), ev)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	got := k.WhyNotServing(ctx, ns, "", 30085)
	for _, want := range []string{"Service notification: pod notification-b is not Ready: ContainersNotReady", "Readiness probe failed: HTTP probe failed with statuscode: 503", "log tail of app"} {
		if !strings.Contains(got, want) {
			t.Errorf("by node port: missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "notification-a") {
		t.Errorf("blamed the Ready pod:\n%s", got)
	}
	if byName := k.WhyNotServing(ctx, ns, "notification", 0); byName != got {
		t.Errorf("by name:\n%s\nby node port:\n%s", byName, got)
	}
	if got := k.WhyNotServing(ctx, ns, "", 31000); !strings.Contains(got, "no Service in namespace testbed-x has nodePort 31000") {
		t.Errorf("unknown node port: %q", got)
	}
	ready := &Client{Core: fake.NewClientset(svc, pod("notification-a", true))}
	if got := ready.WhyNotServing(ctx, ns, "", 30085); got != "" {
		t.Errorf("every pod Ready, still blamed: %q", got)
	}
}
