package kube

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// TestAnUnreadableObjectIsNotAbsent: on a shared cluster a Forbidden (or a
// timeout) reading an object says nothing about whether it exists: the
// apply fails naming it instead of writing to what may be someone else's
// object, and the release fails instead of reporting the run's copies
// gone.
func TestAnUnreadableObjectIsNotAbsent(t *testing.T) {
	core := fake.NewClientset()
	core.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: "v1",
		APIResources: []metav1.APIResource{{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: metav1.Verbs{"get", "patch", "delete"}}},
	}}
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "settings", "namespace": "team-a", "labels": map[string]any{RunLabel: "r1"}},
	}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{{Version: "v1", Resource: "configmaps"}: "ConfigMapList"}, cm.DeepCopy())
	dyn.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "settings", nil)
	})
	k := &Client{Core: core, Dynamic: dyn, LeaveOthers: true, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(core.Discovery()))}
	ctx := context.Background()

	err := k.Apply(ctx, "team-a", []Object{{Unstructured: cm.DeepCopy(), Source: "cm.yaml"}}, &strings.Builder{})
	if err == nil || !apierrors.IsForbidden(err) {
		t.Errorf("apply over an object it cannot read: %v, want the Forbidden", err)
	}
	n, err := k.DeleteRun(ctx, []Object{{Unstructured: cm.DeepCopy()}}, "r1")
	if err == nil || !apierrors.IsForbidden(err) {
		t.Errorf("release of an object it cannot read: %d deleted, %v; want the Forbidden", n, err)
	}
	for _, a := range dyn.Actions() {
		if v := a.GetVerb(); v == "patch" || v == "delete" {
			t.Errorf("wrote to an object it could not read: %s %s", v, a.GetResource().Resource)
		}
	}
}

// TestAppliesUseTheTopologysManager: every write of a client names its
// topology's field manager, so two topologies' applies of one object on a
// shared cluster conflict instead of one silently taking the other's
// fields.
func TestAppliesUseTheTopologysManager(t *testing.T) {
	core := fake.NewClientset()
	core.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: "v1",
		APIResources: []metav1.APIResource{{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: metav1.Verbs{"get", "patch"}}},
	}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{{Version: "v1", Resource: "configmaps"}: "ConfigMapList"})
	k := &Client{Core: core, Dynamic: dyn, Manager: ManagerFor("team-a"), mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(core.Discovery()))}
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "settings"}}}
	// The fake client does not implement server-side apply: what counts
	// here is the request it was sent.
	_ = k.Apply(context.Background(), "team-a", []Object{{Unstructured: cm}}, &strings.Builder{})
	_ = k.CreateNamespace(context.Background(), "team-a-run", nil)
	var managers []string
	for _, a := range dyn.Actions() {
		if p, ok := a.(k8stesting.PatchActionImpl); ok {
			managers = append(managers, p.PatchOptions.FieldManager)
		}
	}
	for _, a := range core.Actions() {
		if c, ok := a.(k8stesting.CreateActionImpl); ok {
			managers = append(managers, c.CreateOptions.FieldManager)
		}
	}
	if len(managers) != 2 {
		t.Fatalf("want one apply and one create, got managers %q", managers)
	}
	for _, m := range managers {
		if m != "testbed-team-a" {
			t.Errorf("a write as %q, want testbed-team-a", m)
		}
	}
}
