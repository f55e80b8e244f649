package kube

import "testing"

func TestParseProbesKeepsReadinessByContainer(t *testing.T) {
	text := `# HELP prober_probe_total [BETA] Cumulative number of a liveness, readiness or startup probe for a container by result.
# TYPE prober_probe_total counter
prober_probe_total{container="app",namespace="ns",pod="web-1",pod_uid="u1",probe_type="Readiness",result="successful"} 42
prober_probe_total{container="app",namespace="ns",pod="web-1",pod_uid="u1",probe_type="Readiness",result="failed"} 3
prober_probe_total{container="app",namespace="ns",pod="web-1",pod_uid="u1",probe_type="Liveness",result="successful"} 7
prober_probe_total{container="db",namespace="ns",pod="pg-0",pod_uid="u2",probe_type="Readiness",result="unknown"} 1
prober_probe_duration_seconds_bucket{container="app",namespace="ns",pod="web-1",probe_type="Readiness",result="successful",le="0.005"} 40
`
	got := map[string]ProbeCount{}
	parseProbes(text, got)
	want := map[string]ProbeCount{"ns/web-1/app": {Successes: 42, Failures: 3}, "ns/pg-0/db": {Failures: 1}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %+v, want %+v", k, got[k], v)
		}
	}
}

// FuzzParseProbes: no kubelet output makes the parser panic (it runs in a
// goroutine the engine's recovery does not cover), and a well-formed
// readiness line appended to any text is counted.
func FuzzParseProbes(f *testing.F) {
	for _, s := range []string{
		`prober_probe_total{container="app",namespace="ns",pod="p",probe_type="Readiness",result="successful"} 42`,
		`prober_probe_total{container="app"} `,
		`prober_probe_total{} 1 1700000000000`,
		`prober_probe_total{probe_type="Readiness",result="failed"} NaN`,
		"# HELP x\nprober_probe_total{",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		out := map[string]ProbeCount{}
		parseProbes(text, out)
		out = map[string]ProbeCount{}
		parseProbes(text+"\n"+`prober_probe_total{container="zz",namespace="fuzz",pod="q",probe_type="Readiness",result="successful"} 5`+"\n", out)
		if out["fuzz/q/zz"].Successes < 5 {
			t.Fatalf("the appended line was not counted: %+v", out["fuzz/q/zz"])
		}
	})
}

func TestParseProbesSurvivesACutLine(t *testing.T) {
	out := map[string]ProbeCount{}
	parseProbes("prober_probe_total{container=\"app\",probe_type=\"Readiness\"} \n", out) // panicked: index out of range
	if len(out) != 0 {
		t.Errorf("a line without a value counted: %v", out)
	}
}
