package kube

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func TestAddCoverDirChangesOnlyContainersOfTheImages(t *testing.T) {
	var dep, job map[string]any
	if err := yaml.Unmarshal([]byte(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  template:
    spec:
      containers:
        - {name: app, image: testbed/app:abc, env: [{name: A, value: "1"}]}
        - {name: sidecar, image: redis:7}
`), &dep); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(`
apiVersion: batch/v1
kind: Job
metadata: {name: other}
spec: {template: {spec: {containers: [{name: x, image: postgres:15}]}}}
`), &job); err != nil {
		t.Fatal(err)
	}
	objs := []Object{{Unstructured: &unstructured.Unstructured{Object: dep}}, {Unstructured: &unstructured.Unstructured{Object: job}}}
	if n := AddCoverDir(objs, map[string]bool{"testbed/app:abc": true}, "/var/cov", "/cov"); n != 1 {
		t.Fatalf("changed %d containers, want 1", n)
	}
	cs, _, _ := unstructured.NestedSlice(dep, "spec", "template", "spec", "containers")
	app, side := cs[0].(map[string]any), cs[1].(map[string]any)
	env := app["env"].([]any)
	if len(env) != 2 || env[1].(map[string]any)["name"] != "GOCOVERDIR" || env[1].(map[string]any)["value"] != "/cov" {
		t.Errorf("env %v", env)
	}
	if m := app["volumeMounts"].([]any); len(m) != 1 || m[0].(map[string]any)["mountPath"] != "/cov" {
		t.Errorf("mounts %v", m)
	}
	if _, ok := side["env"]; ok {
		t.Errorf("the sidecar of another image was changed: %v", side)
	}
	vols, _, _ := unstructured.NestedSlice(dep, "spec", "template", "spec", "volumes")
	if len(vols) != 1 || vols[0].(map[string]any)["hostPath"].(map[string]any)["path"] != "/var/cov" {
		t.Errorf("volumes %v", vols)
	}
	if _, found, _ := unstructured.NestedSlice(job, "spec", "template", "spec", "volumes"); found {
		t.Error("a Job without the images got a volume")
	}
}
