package holmesgptapi

import "testing"

func TestInvestigateIsDeterministic(t *testing.T) {
	if got := Investigate(Request{AlertName: "HighCPU"}); got.RecommendedWorkflow != "restart-pod" {
		t.Errorf("HighCPU: %+v", got)
	}
	a, b := Investigate(Request{AlertName: "Weird"}), Investigate(Request{AlertName: "Weird"})
	if a != b || a.RootCause != "anomaly in Weird" {
		t.Errorf("unknown alert: %+v vs %+v", a, b)
	}
}
