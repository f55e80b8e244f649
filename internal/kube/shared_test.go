package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func renderShared(t *testing.T, ns string) []Object {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [all.yaml]\n",
		"all.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: greetings.hello.dev}
spec:
  group: hello.dev
  scope: Namespaced
  names: {kind: Greeting, plural: greetings}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: greeter}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: greeter}
rules: [{apiGroups: [hello.dev], resources: [greetings], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: greeter}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: greeter}
subjects: [{kind: ServiceAccount, name: greeter, namespace: default}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: greeter-view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: greeter}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30090}, {name: admin, port: 81}]
---
apiVersion: v1
kind: Service
metadata: {name: store}
spec:
  selector: {app: store}
  ports: [{port: 80}]
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := Render(dir, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func find(objs []Object, kind string) Object {
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	return Object{}
}

// TestOwnCopiesRenamesClusterScopedObjectsButCRDs: two runs on one shared
// cluster must not apply (and then delete) one ClusterRole, while the CRD
// both need stays one object.
func TestOwnCopiesRenamesClusterScopedObjectsButCRDs(t *testing.T) {
	t.Parallel()
	const ns = "hello-x7k2p"
	objs := renderShared(t, ns)
	for range 2 { // idempotent
		own := OwnCopies(objs, ns)
		if len(own) != 2 {
			t.Fatalf("own copies: %v, want the ClusterRole and the ClusterRoleBinding", own)
		}
		for _, o := range own {
			if o.GetName() != "greeter-"+ns || o.GetLabels()[RunLabel] != ns {
				t.Errorf("%s: name %q labels %v, want greeter-%s labelled %s=%s", o.GetKind(), o.GetName(), o.GetLabels(), ns, RunLabel, ns)
			}
		}
	}
	crb := find(objs, "ClusterRoleBinding")
	if got := crb.Object["roleRef"].(map[string]any)["name"]; got != "greeter-"+ns {
		t.Errorf("the ClusterRoleBinding refers to %v, want its run's ClusterRole greeter-%s", got, ns)
	}
	if got := crb.Object["subjects"].([]any)[0].(map[string]any)["namespace"]; got != ns {
		t.Errorf("the ClusterRoleBinding binds the service account of namespace %v, want %s", got, ns)
	}
	if got := find(objs, "RoleBinding").Object["roleRef"].(map[string]any)["name"]; got != "view" {
		t.Errorf("a binding to the cluster's own ClusterRole view now refers to %v", got)
	}
	if crd := find(objs, "CustomResourceDefinition"); crd.GetName() != "greetings.hello.dev" || len(crd.GetLabels()) != 0 {
		t.Errorf("the CRD was changed: %s %v", crd.GetName(), crd.GetLabels())
	}
}

// TestClusterIPOnlyDropsNodePorts: a node port is the whole cluster's; the
// port-forward reaches the Service port that had it.
func TestClusterIPOnlyDropsNodePorts(t *testing.T) {
	t.Parallel()
	objs := renderShared(t, "hello-x7k2p")
	ports, err := ClusterIPOnly(objs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 1 || ports[30090] != (ServicePort{Service: "web", Port: 80}) {
		t.Errorf("node ports: %v, want 30090 → web:80", ports)
	}
	for _, o := range objs {
		if o.GetKind() != "Service" {
			continue
		}
		spec := o.Object["spec"].(map[string]any)
		if t0, set := spec["type"]; set && t0 != "ClusterIP" {
			t.Errorf("service %s is %v, want ClusterIP", o.GetName(), spec["type"])
		}
		if _, ok := spec["externalTrafficPolicy"]; ok {
			t.Errorf("service %s keeps externalTrafficPolicy, which a ClusterIP Service may not have", o.GetName())
		}
		for _, p := range spec["ports"].([]any) {
			if np, ok := p.(map[string]any)["nodePort"]; ok {
				t.Errorf("service %s keeps nodePort %v", o.GetName(), np)
			}
		}
	}
}

// TestMoveSubjectsMovesTheTopologysServiceAccounts: a base that names its
// own namespace keeps it in its bindings' subjects through kustomize; on a
// shared cluster the run's copy must bind the run's service account, and
// leave a subject of another namespace (a deliberate grant) as it is.
func TestMoveSubjectsMovesTheTopologysServiceAccounts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"kustomization.yaml": "namespace: platform\nresources: [all.yaml]\n",
		"all.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: greeter}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: greeter}
subjects:
- {kind: ServiceAccount, name: greeter, namespace: platform}
- {kind: ServiceAccount, name: monitor, namespace: monitoring}
- {kind: Group, name: platform, apiGroup: rbac.authorization.k8s.io}
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const run = "platform-x7k2p"
	objs, err := Render(dir, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	MoveSubjects(objs, "platform", run)
	var got []string
	for _, s := range find(objs, "ClusterRoleBinding").Object["subjects"].([]any) {
		m := s.(map[string]any)
		got = append(got, fmt.Sprintf("%v/%v/%v", m["kind"], m["namespace"], m["name"]))
	}
	want := []string{"ServiceAccount/" + run + "/greeter", "ServiceAccount/monitoring/monitor", "Group/<nil>/platform"}
	if !slices.Equal(got, want) {
		t.Errorf("subjects %v, want %v", got, want)
	}
}

func TestRefuseClusterWide(t *testing.T) {
	t.Parallel()
	objs := renderShared(t, "hello-x7k2p")
	if err := RefuseClusterWide(objs); err != nil {
		t.Errorf("the shared example has nothing cluster-wide: %v", err)
	}
	hook := Object{Unstructured: &unstructured.Unstructured{}, Source: "manifests/hook.yaml"}
	hook.SetAPIVersion("admissionregistration.k8s.io/v1")
	hook.SetKind("ValidatingWebhookConfiguration")
	hook.SetName("greeter")
	err := RefuseClusterWide(append(objs, hook))
	if err == nil || !strings.Contains(err.Error(), "manifests/hook.yaml") || !strings.Contains(err.Error(), "E2E_EXISTING_KUBECONFIG") {
		t.Errorf("a ValidatingWebhookConfiguration on a shared cluster: %v; want a refusal naming its file and what to do", err)
	}
}
