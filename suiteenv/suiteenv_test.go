package suiteenv

import (
	"strings"
	"testing"
)

func TestURLVar(t *testing.T) {
	for port, want := range map[string]string{
		"gateway":       "E2E_GATEWAY_URL",
		"holmesgpt-api": "E2E_HOLMESGPT_API_URL",
		"api.v2":        "E2E_API_V2_URL",
		"a-b.c":         "E2E_A_B_C_URL",
	} {
		if got := URLVar(port); got != want {
			t.Errorf("URLVar(%q) = %q, want %q", port, got, want)
		}
	}
}

func TestMissingURLIsAnError(t *testing.T) {
	t.Setenv("E2E_KUBECONFIG", "/some/kubeconfig")
	t.Setenv("E2E_GATEWAY_URL", "")
	if _, err := URL("gateway"); err == nil || !strings.Contains(err.Error(), "E2E_GATEWAY_URL is not set") {
		t.Errorf("URL of a missing port: %v", err)
	}
	t.Setenv("E2E_GATEWAY_URL", "http://127.0.0.1:30080")
	if u, err := URL("gateway"); err != nil || u != "http://127.0.0.1:30080" {
		t.Errorf("URL = %q, %v", u, err)
	}
}
