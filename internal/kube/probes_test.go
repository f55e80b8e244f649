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
