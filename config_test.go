package testbed

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/testbed-dev/testbed/engine"
)

func TestReadmeListsEveryKnob(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Knobs {
		row := "| `" + k.Name + "` | " + k.Default + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row %q", row)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("E2E_MODE", "phased")
	t.Setenv("E2E_BUILD_CONCURRENCY", "2")
	t.Setenv("E2E_KEEP_CLUSTER", "1")
	t.Setenv("E2E_TIMEOUT", "90s")
	c, err := OptionsFromEnv("/repo")
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != engine.Phased || c.BuildConcurrency != 2 || !c.KeepCluster || c.Timeout != 90*time.Second || c.Artifacts != "/repo/_artifacts" {
		t.Errorf("config %+v", c)
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	for _, tt := range []struct{ name, value, want string }{
		{"E2E_MODE", "fast", "unknown mode"},
		{"E2E_BUILD_CONCURRENCY", "0", "at least 1"},
		{"E2E_KEEP_CLUSTER", "yes please", "use 1 or 0"},
		{"E2E_TIMEOUT", "5", "positive duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tt.name, tt.value)
			_, err := OptionsFromEnv("/repo")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestConfigRegistryNeedsBothAndExcludesCoverage(t *testing.T) {
	t.Setenv("IMAGE_REGISTRY", "registry.example.com/team/")
	if _, err := OptionsFromEnv("/repo"); err == nil || !strings.Contains(err.Error(), "set both") {
		t.Errorf("IMAGE_REGISTRY without IMAGE_TAG: %v", err)
	}
	t.Setenv("IMAGE_TAG", "v1")
	c, err := OptionsFromEnv("/repo")
	if err != nil || c.Registry != "registry.example.com/team" || c.Tag != "v1" {
		t.Errorf("config %+v, %v", c, err)
	}
	t.Setenv("E2E_COVERAGE", "1")
	if _, err := OptionsFromEnv("/repo"); err == nil || !strings.Contains(err.Error(), "E2E_COVERAGE") {
		t.Errorf("coverage with registry images: %v", err)
	}
}
