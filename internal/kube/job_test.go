package kube

import (
	"context"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/restmapper"
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

// watchObject calls a Job ready once its pod has succeeded, though the job
// controller has not written Complete yet, and returns then: the status
// watch it gave up on must not hold it until the deadline.
func TestWatchObjectCallsAJobReadyOnItsSucceededPod(t *testing.T) {
	const ns, name = "testbed-x", "migrations"
	job := &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("now")}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name + "-1", Namespace: ns, Labels: map[string]string{batchv1.ControllerUidLabel: "now"}},
		Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}
	core := fake.NewClientset(job, pod)
	core.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: "batch/v1",
		APIResources: []metav1.APIResource{{Name: "jobs", Namespaced: true, Kind: "Job", Verbs: metav1.Verbs{"get", "list", "watch"}}},
	}}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(job)
	if err != nil {
		t.Fatal(err)
	}
	obj := Object{Unstructured: &unstructured.Unstructured{Object: u}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{{Group: "batch", Version: "v1", Resource: "jobs"}: "JobList"}, obj.DeepCopy())
	k := &Client{Core: core, Dynamic: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(core.Discovery()))}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = k.watchObject(ctx, obj, func(*status.Result) {})
	if err != nil || ctx.Err() != nil {
		t.Errorf("watchObject: %v, context %v; want ready before the deadline", err, ctx.Err())
	}
}
