package kube

import (
	"context"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// A Job is done when as many of its own pods have succeeded as it needs
// completions (distinct indexes when Indexed), before its Complete
// condition; pods of an earlier Job of the same name, or still running, or
// repeating an index, do not count.
func TestJobPodsSucceededCountsThePresentJobsPods(t *testing.T) {
	const ns, name = "testbed-x", "migrations"
	pod := func(pod, uid string, phase corev1.PodPhase, index string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns,
			Labels:      map[string]string{batchv1.ControllerUidLabel: uid, batchv1.JobNameLabel: name},
			Annotations: map[string]string{batchv1.JobCompletionIndexAnnotation: index}},
			Status: corev1.PodStatus{Phase: phase}}
	}
	job := func(completions int32, indexed bool) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("now")}}
		if completions > 0 {
			j.Spec.Completions = &completions
		}
		if indexed {
			mode := batchv1.IndexedCompletion
			j.Spec.CompletionMode = &mode
		}
		return j
	}
	for _, tc := range []struct {
		what string
		objs []runtime.Object
		done bool
	}{
		{"an earlier Job's pod succeeded, this one's runs", []runtime.Object{job(0, false), pod("old", "before", corev1.PodSucceeded, ""), pod("new", "now", corev1.PodRunning, "")}, false},
		{"its pod succeeded", []runtime.Object{job(0, false), pod("new", "now", corev1.PodSucceeded, "")}, true},
		{"1 of 2 completions", []runtime.Object{job(2, false), pod("a", "now", corev1.PodSucceeded, ""), pod("b", "now", corev1.PodFailed, "")}, false},
		{"2 of 2 completions", []runtime.Object{job(2, false), pod("a", "now", corev1.PodSucceeded, ""), pod("b", "now", corev1.PodSucceeded, "")}, true},
		{"indexed, one index twice", []runtime.Object{job(2, true), pod("a", "now", corev1.PodSucceeded, "0"), pod("b", "now", corev1.PodSucceeded, "0")}, false},
		{"indexed, both indexes", []runtime.Object{job(2, true), pod("a", "now", corev1.PodSucceeded, "0"), pod("b", "now", corev1.PodSucceeded, "1")}, true},
	} {
		k := &Client{Core: fake.NewClientset(tc.objs...)}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := k.jobPodsSucceeded(ctx, ns, name)
		cancel()
		if done := err == nil; done != tc.done {
			t.Errorf("%s: done %v (%v), want %v", tc.what, done, err, tc.done)
		}
	}
}
