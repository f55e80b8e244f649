package kube

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestReadManifestsAndSetImages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	body := `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      initContainers: [{name: wait, image: tools}]
      containers: [{name: m, image: datastorage}, {name: side, image: busybox:1}]
---
apiVersion: v1
kind: Service
metadata: {name: s}
`
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := ReadManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].String() != "Job/migrate" || !strings.HasSuffix(objs[1].Source, "a.yaml") {
		t.Fatalf("objects %v", Describe(objs))
	}
	if err := SetImages(objs, map[string]string{"datastorage": "testbed/datastorage:abc", "tools": "testbed/tools:1"}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Images(objs), " ")
	if got != "testbed/tools:1 testbed/datastorage:abc busybox:1" {
		t.Errorf("images %s", got)
	}
}

func TestReadManifestsNamesTheBadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadManifests(dir)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml: document 1") {
		t.Fatalf("got %v", err)
	}
}

func TestPodProblem(t *testing.T) {
	t.Parallel()
	waiting := func(reason string) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "m"}},
		}}}}
	}
	tests := []struct {
		name   string
		pod    *corev1.Pod
		strict bool
		want   string
	}{
		{"image never pulled", waiting("ErrImageNeverPull"), false, "ErrImageNeverPull"},
		{"config error", waiting("CreateContainerConfigError"), false, "CreateContainerConfigError"},
		{"crash loop while dependencies start", waiting("CrashLoopBackOff"), false, ""},
		{"crash loop after dependencies ready", waiting("CrashLoopBackOff"), true, "CrashLoopBackOff"},
		{"still creating", waiting("ContainerCreating"), true, ""},
		{"unschedulable", &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes"}}}}, false, "Unschedulable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _, _ := podProblem(tt.pod, tt.strict); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestJobComplete(t *testing.T) {
	t.Parallel()
	running := map[string]any{"kind": "Job", "status": map[string]any{"startTime": "x", "active": int64(1)}}
	done := map[string]any{"kind": "Job", "status": map[string]any{"conditions": []any{map[string]any{"type": "Complete", "status": "True"}}}}
	if jobComplete(&unstructured.Unstructured{Object: running}) {
		t.Error("a running Job counted as complete")
	}
	if !jobComplete(&unstructured.Unstructured{Object: done}) {
		t.Error("a complete Job did not count")
	}
}
