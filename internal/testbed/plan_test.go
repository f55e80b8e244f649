package testbed

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/testbed-dev/testbed/internal/engine"
	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/internal/topology"
)

func testbedForTest(t *testing.T, cfg Config) *Testbed {
	t.Helper()
	root := filepath.Join("..", "..")
	topo, err := topology.Load(filepath.Join(root, TopologyFile), root)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BuildConcurrency == 0 {
		cfg.BuildConcurrency = 1
	}
	return &Testbed{Cfg: cfg, Topo: topo}
}

func needsOf(p *engine.Plan, name string) []string {
	for _, s := range p.Steps {
		if s.Name == name {
			return s.Needs
		}
	}
	return nil
}

func TestE2EPlanAppliesEachComponentWhenItsNeedsAreReady(t *testing.T) {
	tb := testbedForTest(t, Config{})
	p, _, err := tb.Plan("datastorage", PartsE2E)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"apply postgresql":  {"prepare namespace", "load postgresql"},
		"apply migrations":  {"prepare namespace", "load datastorage", "ready postgresql", "ready cluster DNS"},
		"apply datastorage": {"prepare namespace", "load datastorage", "ready migrations", "ready redis", "ready cluster DNS"},
		"load datastorage":  {"create cluster", "build datastorage"},
		"reach host ports":  {"ready postgresql", "ready redis", "ready migrations", "ready datastorage"},
		"suite datastorage": {"ready postgresql", "ready redis", "ready migrations", "ready datastorage", "reach host ports"},
	}
	for step, needs := range want {
		if got := needsOf(p, step); !slices.Equal(got, needs) {
			t.Errorf("%s needs %v, want %v", step, got, needs)
		}
	}
	var finally []string
	for _, s := range p.Finally {
		finally = append(finally, s.Name)
	}
	if !slices.Equal(finally, []string{"collect diagnostics", "delete cluster"}) {
		t.Errorf("finally steps %v: diagnostics must come before teardown", finally)
	}
}

func TestKeepClusterDropsTeardown(t *testing.T) {
	tb := testbedForTest(t, Config{KeepCluster: true})
	p, _, err := tb.Plan("datastorage", PartsE2E)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Finally {
		if s.Name == "delete cluster" {
			t.Error("E2E_KEEP_CLUSTER=1 still deletes the cluster")
		}
	}
}

func TestDeployPlanUsesTheExistingCluster(t *testing.T) {
	tb := testbedForTest(t, Config{})
	p, _, err := tb.Plan("datastorage", PartsDeploy)
	if err != nil {
		t.Fatal(err)
	}
	if needsOf(p, "create cluster") != nil || !slices.Contains(needsOf(p, "prepare namespace"), "connect cluster") {
		t.Errorf("deploy plan should connect to the existing cluster, not create one")
	}
	if len(p.Finally) != 1 || p.Finally[0].Name != "collect diagnostics" {
		t.Errorf("deploy plan must not delete the cluster: %v", p.Finally)
	}
}

func TestUnknownService(t *testing.T) {
	tb := testbedForTest(t, Config{})
	if _, _, err := tb.Plan("nope", PartsE2E); err == nil {
		t.Fatal("an unknown service made a plan")
	}
}

func TestANinthServiceGetsAPlanFromItsTopologyAlone(t *testing.T) {
	dir := filepath.Join("testdata", "ninth")
	topo, err := topology.Load(filepath.Join(dir, "topology.yaml"), dir)
	if err != nil {
		t.Fatal(err)
	}
	tb := &Testbed{Cfg: Config{BuildConcurrency: 1}, Topo: topo}
	p, _, err := tb.Plan("ninth", PartsE2E)
	if err != nil {
		t.Fatal(err)
	}
	for step, needs := range map[string][]string{
		"apply ninth": {"prepare namespace", "load ninth", "ready cache", "ready cluster DNS"},
		"suite ninth": {"ready cache", "ready ninth", "reach host ports"},
	} {
		if got := needsOf(p, step); !slices.Equal(got, needs) {
			t.Errorf("%s needs %v, want %v", step, got, needs)
		}
	}
}

func stepNames(p *engine.Plan) (steps, finally []string) {
	for _, s := range p.Steps {
		steps = append(steps, s.Name)
	}
	for _, s := range p.Finally {
		finally = append(finally, s.Name)
	}
	return steps, finally
}

func TestRegistryModeBuildsAndLoadsNothingOfOurs(t *testing.T) {
	tb := testbedForTest(t, Config{Registry: "registry.example.com/team", Tag: "v1.2.3"})
	p, r, err := tb.Plan("gateway", PartsE2E)
	if err != nil {
		t.Fatal(err)
	}
	steps, _ := stepNames(p)
	for _, s := range steps {
		if strings.HasPrefix(s, "build ") || s == "load datastorage" || s == "load gateway" {
			t.Errorf("registry mode has the step %q", s)
		}
	}
	if !slices.Contains(steps, "load postgresql") {
		t.Error("third-party images are still side-loaded from the host in registry mode")
	}
	if got := needsOf(p, "apply gateway"); !slices.Equal(got, []string{"prepare namespace", "ready crds", "ready redis", "ready datastorage", "ready cluster DNS"}) {
		t.Errorf("apply gateway needs %v", got)
	}
	if ref, _ := r.image("gateway"); ref != "registry.example.com/team/gateway:v1.2.3" {
		t.Errorf("gateway runs %q", ref)
	}
	objs, err := kube.Render(filepath.Join("..", "..", "deploy/components/gateway"), "testbed", map[string]string{"gateway": "registry.example.com/team/gateway:v1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			cs, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "template", "spec", "containers")
			found = cs.([]any)[0].(map[string]any)["image"] == "registry.example.com/team/gateway:v1.2.3"
		}
	}
	if !found {
		t.Error("the rendered Deployment does not run the registry's image")
	}
}

func TestCoveragePlanPreparesTheNodeAndFlushesBeforeTeardown(t *testing.T) {
	tb := testbedForTest(t, Config{Coverage: true})
	p, _, err := tb.Plan("datastorage", PartsE2E)
	if err != nil {
		t.Fatal(err)
	}
	if got := needsOf(p, "apply datastorage"); !slices.Contains(got, "prepare coverage dir") {
		t.Errorf("apply datastorage needs %v: the coverage directory must exist first", got)
	}
	if got := needsOf(p, "apply postgresql"); slices.Contains(got, "prepare coverage dir") {
		t.Errorf("apply postgresql (not built here) waits for the coverage directory: %v", got)
	}
	_, finally := stepNames(p)
	if !slices.Equal(finally, []string{"collect diagnostics", "collect coverage", "delete cluster"}) {
		t.Errorf("finally steps %v", finally)
	}
}
