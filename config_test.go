package testbed

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/testbed-dev/testbed/engine"
)

// knobsTable is the README's table of the knobs, generated from Knobs.
func knobsTable() string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, k := range Knobs {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", k.Name, k.Default, strings.ReplaceAll(k.Help, "|", "\\|"))
	}
	return b.String()
}

// TestReadmeKnobsTableIsGenerated: the README's knob table is the one
// Knobs generates, between its markers (go test -run TestReadme -update
// rewrites it).
func TestReadmeKnobsTableIsGenerated(t *testing.T) {
	const begin, end = "<!-- knobs:begin -->\n", "<!-- knobs:end -->"
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %q ... %q", begin, end)
	}
	got, want := s[i+len(begin):j], knobsTable()
	if got == want {
		return
	}
	if *updateGolden {
		if err := os.WriteFile("README.md", []byte(s[:i+len(begin)]+want+s[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's knob table is not Knobs' (go test -run TestReadme -update rewrites it):\n%s", lineDiff(got, want))
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

func TestArtifactsStayUnderTheirRoot(t *testing.T) {
	cfg := Options{Artifacts: t.TempDir()}
	for _, s := range []string{"x/../../../../../any/dir", "..", "a/b"} {
		if dir, err := artifacts(cfg, s); err == nil {
			t.Errorf("service %q: artifacts %s", s, dir)
		}
	}
	if _, err := artifacts(cfg, "gateway"); err != nil {
		t.Error(err)
	}
}
