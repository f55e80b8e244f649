package kube

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestRenderSetsImagesAndNamespaceAndKeepsTheSource(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	job := `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      initContainers: [{name: wait, image: tools}]
      containers: [{name: m, image: datastorage}, {name: side, image: busybox:1}]
`
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.dev}
spec:
  group: example.dev
  scope: Namespaced
  names: {kind: Thing, plural: things}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
`
	for name, body := range map[string]string{"job.yaml": job, "crd.yaml": crd,
		"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [job.yaml, crd.yaml]\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := Render(dir, "ns1", map[string]string{"datastorage": "testbed/datastorage:abc", "tools": "localhost:5000/tools:1"})
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]Object{}
	for _, o := range objs {
		byKind[o.GetKind()] = o
	}
	job2 := byKind["Job"]
	if job2.GetNamespace() != "ns1" || byKind["CustomResourceDefinition"].GetNamespace() != "" {
		t.Errorf("namespaces: job %q, crd %q", job2.GetNamespace(), byKind["CustomResourceDefinition"].GetNamespace())
	}
	if !strings.HasSuffix(job2.Source, "job.yaml") {
		t.Errorf("source %q", job2.Source)
	}
	if len(job2.GetAnnotations()) != 0 {
		t.Errorf("kustomize's origin annotation left on the object: %v", job2.GetAnnotations())
	}
	var images []string
	for _, f := range []string{"initContainers", "containers"} {
		cs, _, _ := unstructured.NestedSlice(job2.Object, "spec", "template", "spec", f)
		for _, c := range cs {
			images = append(images, c.(map[string]any)["image"].(string))
		}
	}
	if got := strings.Join(images, " "); got != "localhost:5000/tools:1 testbed/datastorage:abc busybox:1" {
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
