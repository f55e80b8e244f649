package kube

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/restmapper"
	k8stesting "k8s.io/client-go/testing"
)

func obj(kind, name string) Object {
	av := "v1"
	switch kind {
	case "Deployment":
		av = "apps/v1"
	case "CustomResourceDefinition":
		av = "apiextensions.k8s.io/v1"
	}
	return Object{Unstructured: &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": av, "kind": kind, "metadata": map[string]any{"name": name},
	}}, Source: name + ".yaml"}
}

// TestApplyTiers: what others are made in or of first, then what
// workloads refer to, then the workloads; manifest order within a tier.
func TestApplyTiers(t *testing.T) {
	objs := []Object{obj("Deployment", "api"), obj("ConfigMap", "a"), obj("CustomResourceDefinition", "crd"),
		obj("Service", "api"), obj("Job", "migrate"), obj("Namespace", "ns"), obj("ServiceAccount", "sa")}
	got := applyTiers(objs)
	want := [][]int{{2, 5}, {6}, {1, 3}, {0, 4}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("tiers %v, want %v", got, want)
	}
	if got := applyTiers([]Object{obj("ConfigMap", "a")}); len(got) != 1 {
		t.Errorf("one ConfigMap: %v, want one tier (no empty ones)", got)
	}
}

// TestApplySendsATierOnlyAfterTheOneBefore: with the API answering, every
// ConfigMap and Service is patched before the Deployment, and the output
// lists the objects in manifest order whatever order they were sent in.
func TestApplySendsATierOnlyAfterTheOneBefore(t *testing.T) {
	core := fake.NewClientset()
	core.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: metav1.Verbs{"get", "patch"}},
			{Name: "services", Namespaced: true, Kind: "Service", Verbs: metav1.Verbs{"get", "patch"}},
		}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "deployments", Namespaced: true, Kind: "Deployment", Verbs: metav1.Verbs{"get", "patch"}},
		}},
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		{Version: "v1", Resource: "configmaps"}:                 "ConfigMapList",
		{Version: "v1", Resource: "services"}:                   "ServiceList",
		{Group: "apps", Version: "v1", Resource: "deployments"}: "DeploymentList",
	})
	var mu sync.Mutex
	var patched []string
	dyn.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		patched = append(patched, a.GetResource().Resource)
		u := &unstructured.Unstructured{}
		u.SetResourceVersion("1")
		return true, u, nil
	})
	k := &Client{Core: core, Dynamic: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(core.Discovery()))}
	objs := []Object{obj("Deployment", "api"), obj("ConfigMap", "a"), obj("Service", "api"), obj("ConfigMap", "b")}
	var out strings.Builder
	if err := k.Apply(context.Background(), "team-a", objs, &out); err != nil {
		t.Fatal(err)
	}
	if len(patched) != 4 || patched[3] != "deployments" {
		t.Errorf("patched %v, want the Deployment last", patched)
	}
	want := "Deployment/api created\nConfigMap/a created\nService/api created\nConfigMap/b created\n"
	if out.String() != want {
		t.Errorf("output\n%s\nwant\n%s", out.String(), want)
	}
}
