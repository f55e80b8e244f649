package testbed

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/testbed-dev/testbed/engine"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/plans/*.golden from the plans of today's code")

// planMode is one way a run gets its cluster and images, as plan:show
// describes it.
type planMode struct {
	name string
	opts func(t *testing.T) Options
	// plan builds the service's plan in the mode (default: tb.plan with
	// PartsE2E).
	plan func(t *testing.T, tb *Testbed, service string) (*engine.Plan, error)
}

// envDefaults are OptionsFromEnv's with no knob set.
func envDefaults(o Options) Options {
	o.Bake, o.Warm, o.OneCluster = true, true, true
	return o
}

func planWith(parts Parts, env runEnv) func(*testing.T, *Testbed, string) (*engine.Plan, error) {
	return func(t *testing.T, tb *Testbed, service string) (*engine.Plan, error) {
		env.out = tb.Out
		p, r, err := tb.plan(service, parts, env)
		if r != nil {
			r.close()
		}
		return p, err
	}
}

var planModes = []planMode{
	{name: "fresh", opts: func(*testing.T) Options { o := envDefaults(Options{}); o.Warm = false; return o }},
	{name: "keep", opts: func(*testing.T) Options { return envDefaults(Options{KeepCluster: true}) }},
	{name: "reuse", opts: func(*testing.T) Options { return envDefaults(Options{ReuseCluster: true}) }},
	{name: "deploy-only", opts: func(*testing.T) Options { return envDefaults(Options{}) }, plan: planWith(PartsDeploy, runEnv{})},
	{name: "one-cluster", opts: func(*testing.T) Options { return envDefaults(Options{}) }, plan: func(t *testing.T, tb *Testbed, service string) (*engine.Plan, error) {
		ones, err := tb.sharing(tb.Topo.ServiceNames())
		if err != nil {
			return nil, err
		}
		if ones[service] == nil {
			t.Fatalf("%s shares no cluster", service)
		}
		return planWith(PartsE2E, runEnv{one: ones[service]})(t, tb, service)
	}},
	{name: "warm-claim", opts: func(*testing.T) Options { return envDefaults(Options{}) }},
	{name: "warming", opts: func(*testing.T) Options { return envDefaults(Options{}) }, plan: planWith(partsWarm, runEnv{warming: true})},
	{name: "local-registry", opts: func(*testing.T) Options { return envDefaults(Options{LocalRegistry: true}) }},
	{name: "registry", opts: func(*testing.T) Options {
		return envDefaults(Options{Registry: "registry.example.com/team", Tag: "v1"})
	}},
	{name: "existing-cluster", opts: func(t *testing.T) Options {
		return envDefaults(Options{Existing: sharedKubeconfig(t), Registry: "registry.example.com/team", Tag: "v1"})
	}},
}

// TestPlanGolden guards the plans of every reference service in every
// mode: plan:show's description (steps, their needs, phases and classes,
// finally steps) must match testdata/plans/<mode>.golden. A change to a
// plan is intended only with the golden files rewritten (go test -run
// TestPlanGolden -update) and the difference explained in the commit.
func TestPlanGolden(t *testing.T) {
	for _, m := range planModes {
		t.Run(m.name, func(t *testing.T) {
			var got bytes.Buffer
			tb := testbedForTest(t, m.opts(t))
			tb.Out = io.Discard
			for _, svc := range tb.Topo.ServiceNames() {
				build := m.plan
				if build == nil {
					build = planWith(PartsE2E, runEnv{})
				}
				p, err := build(t, tb, svc)
				if err != nil {
					t.Fatalf("%s: %v", svc, err)
				}
				fmt.Fprintf(&got, "# %s, %s\n", svc, m.name)
				p.Describe(&got, engine.Dataflow)
				fmt.Fprintln(&got)
			}
			path := filepath.Join("testdata", "plans", m.name+".golden")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -run TestPlanGolden -update writes it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("the plans differ from %s (go test -run TestPlanGolden -update rewrites it; explain the change in the commit):\n%s", path, lineDiff(string(want), got.String()))
			}
		})
	}
}

// lineDiff lists the lines only in want (-) and only in got (+), in order.
func lineDiff(want, got string) string {
	w, g := bytes.Split([]byte(want), []byte("\n")), bytes.Split([]byte(got), []byte("\n"))
	var out bytes.Buffer
	i, j := 0, 0
	for i < len(w) || j < len(g) {
		switch {
		case i < len(w) && j < len(g) && bytes.Equal(w[i], g[j]):
			i, j = i+1, j+1
		case j < len(g) && !contains(w[i:], g[j]):
			fmt.Fprintf(&out, "+ %s\n", g[j])
			j++
		case i < len(w):
			fmt.Fprintf(&out, "- %s\n", w[i])
			i++
		default:
			fmt.Fprintf(&out, "+ %s\n", g[j])
			j++
		}
	}
	return out.String()
}

func contains(lines [][]byte, l []byte) bool {
	for _, x := range lines {
		if bytes.Equal(x, l) {
			return true
		}
	}
	return false
}
