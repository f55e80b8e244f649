package gateway

import "testing"

func TestFingerprint(t *testing.T) {
	a := Alert{Labels: map[string]string{"alertname": "HighCPU", "pod": "p1"}}
	b := Alert{Labels: map[string]string{"pod": "p1", "alertname": "HighCPU"}}
	if Fingerprint(a) != Fingerprint(b) || len(Fingerprint(a)) != 16 {
		t.Errorf("fingerprints %q %q", Fingerprint(a), Fingerprint(b))
	}
	c := Alert{Labels: map[string]string{"alertname": "HighCPU", "pod": "p2"}}
	if Fingerprint(a) == Fingerprint(c) {
		t.Error("different labels, same fingerprint")
	}
	if got := Fingerprint(Alert{Fingerprint: "ABC123"}); got != "abc123" {
		t.Errorf("Alertmanager's fingerprint not used: %q", got)
	}
}
