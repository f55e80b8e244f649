package kube

import (
	"fmt"
	"maps"
)

// What a run on a cluster testbed did not make (a shared one) changes in
// its objects so that two runs there at once do not collide: each run has
// its own namespace, and these make the rest its own too.

// RunLabel marks the objects of one run on a shared cluster: its value is
// the run's namespace.
const RunLabel = "testbed.dev/run"

// Shared reports whether an object (namespace already set by SetNamespace)
// is shared between runs: a CRD is applied as is, never renamed and never
// deleted, since every run's objects of its kind need it.
func Shared(o Object) bool {
	return o.GetKind() == "CustomResourceDefinition"
}

// OwnCopies renames each cluster-scoped object that is not Shared to
// <name>-<suffix> and labels it RunLabel=suffix, so that each run has its
// own (a ClusterRole, a ClusterRoleBinding); role bindings among objs that
// refer to a renamed ClusterRole follow it, as kustomize's nameSuffix
// does within a kustomization. It returns the renamed objects, which the
// run deletes at its end. It is idempotent.
func OwnCopies(objs []Object, suffix string) []Object {
	renamed := map[string]string{} // kind/old name → new name
	var own []Object
	for _, o := range objs {
		if o.GetNamespace() != "" || Shared(o) || o.GetKind() == "Namespace" {
			continue
		}
		own = append(own, o)
		lbl := o.GetLabels()
		if lbl[RunLabel] == suffix {
			continue // done before
		}
		old := o.GetName()
		o.SetName(old + "-" + suffix)
		lbl = maps.Clone(lbl)
		if lbl == nil {
			lbl = map[string]string{}
		}
		lbl[RunLabel] = suffix
		o.SetLabels(lbl)
		renamed[o.GetKind()+"/"+old] = o.GetName()
	}
	for _, o := range objs {
		if k := o.GetKind(); k != "RoleBinding" && k != "ClusterRoleBinding" {
			continue
		}
		ref, ok := o.Object["roleRef"].(map[string]any)
		if !ok {
			continue
		}
		kind, _ := ref["kind"].(string)
		name, _ := ref["name"].(string)
		if n, ok := renamed[kind+"/"+name]; ok {
			ref["name"] = n
		}
	}
	return own
}

// MoveSubjects moves the ServiceAccount subjects of every RoleBinding and
// ClusterRoleBinding from namespace from (the topology's) to to (the
// run's): the run's own copy of a binding grants its role to the run's
// service accounts, not to those of another run or team that uses the
// topology's namespace on the same cluster. kustomize's namespace
// transformer leaves a subject with a namespace of its own as it is.
func MoveSubjects(objs []Object, from, to string) {
	for _, o := range objs {
		if k := o.GetKind(); k != "RoleBinding" && k != "ClusterRoleBinding" {
			continue
		}
		subjects, _ := o.Object["subjects"].([]any)
		for _, s := range subjects {
			m, ok := s.(map[string]any)
			if ok && m["kind"] == "ServiceAccount" && m["namespace"] == from {
				m["namespace"] = to
			}
		}
	}
}

// clusterWide are the kinds that act on the whole cluster whatever their
// name: a run's own copy would still act on every namespace's objects.
var clusterWide = map[string]string{
	"admissionregistration.k8s.io/MutatingWebhookConfiguration":   "its webhooks would see every namespace's objects",
	"admissionregistration.k8s.io/ValidatingWebhookConfiguration": "its webhooks would see every namespace's objects",
	"apiregistration.k8s.io/APIService":                           "it serves an API group for the whole cluster",
}

// RefuseClusterWide returns an error naming the first object among objs
// that cannot be a run's own on a cluster testbed did not make (see
// clusterWide).
func RefuseClusterWide(objs []Object) error {
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if why, ok := clusterWide[gvk.Group+"/"+gvk.Kind]; ok {
			return fmt.Errorf("%s: %s: a cluster testbed did not make cannot take it (%s); run this component on a cluster testbed makes (without E2E_EXISTING_KUBECONFIG)", o.Source, o, why)
		}
	}
	return nil
}

// ServicePort names a port of a Service.
type ServicePort struct {
	Service string
	Port    int32
}

// ClusterIPOnly makes every NodePort or LoadBalancer Service a ClusterIP
// one: on a shared cluster a node port is the whole cluster's, and a
// second run asking for the same one fails. It returns, by node port, the
// Service port that had it: what a port-forward reaches instead. It is
// idempotent only for the changes; call it once per object set.
func ClusterIPOnly(objs []Object) (map[int32]ServicePort, error) {
	byNodePort := map[int32]ServicePort{}
	for _, o := range objs {
		if o.GetKind() != "Service" || o.GetAPIVersion() != "v1" {
			continue
		}
		spec, ok := o.Object["spec"].(map[string]any)
		if !ok {
			continue
		}
		if t, _ := spec["type"].(string); t != "NodePort" && t != "LoadBalancer" {
			continue
		}
		ports, _ := spec["ports"].([]any)
		for _, p := range ports {
			pm, ok := p.(map[string]any)
			if !ok {
				continue
			}
			np, npOK := number(pm["nodePort"])
			port, portOK := number(pm["port"])
			if npOK && np != 0 {
				if !portOK {
					return nil, fmt.Errorf("%s: %s: a port with nodePort %d has no port number", o.Source, o, np)
				}
				byNodePort[int32(np)] = ServicePort{Service: o.GetName(), Port: int32(port)}
			}
			delete(pm, "nodePort")
		}
		spec["type"] = "ClusterIP"
		for _, f := range []string{"externalTrafficPolicy", "healthCheckNodePort", "loadBalancerIP", "loadBalancerSourceRanges", "allocateLoadBalancerNodePorts", "loadBalancerClass"} {
			delete(spec, f)
		}
	}
	return byNodePort, nil
}

// number reads a JSON number of an unstructured object.
func number(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	}
	return 0, false
}
