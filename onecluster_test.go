package testbed

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/testbed-dev/testbed/internal/images"
	"github.com/testbed-dev/testbed/topology"
)

func TestOneClusterPlanSharesACluster(t *testing.T) {
	tb := testbedForTest(t, Options{OneCluster: true, Bake: true})
	tb.Out = &bytes.Buffer{}
	tb.Topo.Services["notification"].Cluster = &topology.Cluster{Workers: 1} // another shape
	ones, err := tb.sharing(tb.Topo.ServiceNames())
	if err != nil {
		t.Fatal(err)
	}
	if len(ones) != 8 {
		t.Fatalf("%d services share, want 8", len(ones))
	}
	if ones["gateway"] != ones["datastorage"] || ones["gateway"].c.Name != "testbed-all" {
		t.Errorf("gateway on %s, datastorage on %s: want both on testbed-all", ones["gateway"].c.Name, ones["datastorage"].c.Name)
	}
	if o := ones["notification"]; o == ones["gateway"] || o.c.Name != "testbed-all-2" {
		t.Errorf("notification (1 worker) on %s, want a cluster of its own shape, testbed-all-2", o.c.Name)
	}
	for _, img := range []string{"postgresql", "redis"} {
		if ref, third := images.ThirdParty(tb.Topo.Images[img]), ones["gateway"].third; !slices.Contains(third, ref) {
			t.Errorf("the shared cluster bakes %v: %s (%s) is missing", third, img, ref)
		}
	}

	one := ones["gateway"]
	p, r, err := tb.plan("gateway", PartsE2E, runEnv{out: tb.Out, one: one})
	if err != nil {
		t.Fatal(err)
	}
	r.close()
	steps, finally := stepNames(p)
	for _, want := range []string{stepOne, "build gateway", "load gateway", "load postgresql", stepDNS, stepForward, stepPorts} {
		if !slices.Contains(steps, want) {
			t.Errorf("no step %q in %v", want, steps)
		}
	}
	for _, s := range steps {
		if s == stepCluster || s == stepBake || s == stepFindBaked || s == stepCheckImages || s == stepExisting {
			t.Errorf("a run on the shared cluster has the step %q", s)
		}
	}
	if !slices.Equal(finally, []string{stepDiagnose, stepRelease}) {
		t.Errorf("finally %v, want diagnostics, then the namespace released (All deletes the cluster)", finally)
	}
	if got := needsOf(p, stepNamespace); !slices.Equal(got, []string{stepOne}) {
		t.Errorf("prepare namespace needs %v", got)
	}
	if got := needsOf(p, "apply gateway"); !slices.Contains(got, "load gateway") || !slices.Contains(got, stepDNS) {
		t.Errorf("apply gateway needs %v: its image loaded and the cluster's DNS", got)
	}
	if !strings.HasPrefix(r.ns, "testbed-") || r.ns == "testbed" {
		t.Errorf("namespace %q, want one of the run's own", r.ns)
	}
	if r.kubeconfig() != one.c.Kubeconfig {
		t.Errorf("kubeconfig %s, want the shared cluster's %s", r.kubeconfig(), one.c.Kubeconfig)
	}
}

func TestOneClusterOnlyWhereItCan(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"off", Options{}, ""},
		{"coverage", Options{OneCluster: true, Coverage: true}, "E2E_COVERAGE"},
		{"registry", Options{OneCluster: true, Registry: "r", Tag: "t"}, "registry"},
		{"reuse", Options{OneCluster: true, ReuseCluster: true}, "E2E_REUSE_CLUSTER"},
	} {
		tb := testbedForTest(t, tc.opts)
		var out bytes.Buffer
		tb.Out = &out
		ones, err := tb.sharing(tb.Topo.ServiceNames())
		if err != nil || ones != nil {
			t.Errorf("%s: %d services share (%v), want none", tc.name, len(ones), err)
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("%s: says %q, want it to name %q", tc.name, out.String(), tc.want)
		}
	}
}
