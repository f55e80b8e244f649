package testbed

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbed-dev/testbed/internal/testenv"
)

// TestStepSummaryOnlyWhereTheCommandLayerSaysSo runs a build-only plan with
// GITHUB_STEP_SUMMARY set, as it is in every step of a GitHub Actions job:
// the library writes nothing there (testbed's own tests would otherwise fill
// the job's summary with gantt charts). With Testbed.StepSummary set, as the
// command layer sets it, the gantt is appended to that file.
func TestStepSummaryOnlyWhereTheCommandLayerSaysSo(t *testing.T) {
	testenv.RequireDocker(t)
	service, dir := rerunFixture(t, "itest-summary")
	topo := loadFixture(t, dir)
	fromEnv := filepath.Join(t.TempDir(), "env-summary.md")
	t.Setenv("GITHUB_STEP_SUMMARY", fromEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(summary string) {
		t.Helper()
		var out bytes.Buffer
		tb := &Testbed{Opts: Options{Root: ".", BuildConcurrency: 1, BuildTimeout: 5 * time.Minute, Artifacts: t.TempDir()},
			Topo: topo, Out: &out, StepSummary: summary}
		if _, err := tb.Run(ctx, service, PartsBuild); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
	}
	run("")
	if _, err := os.Stat(fromEnv); !os.IsNotExist(err) {
		t.Errorf("the library wrote GITHUB_STEP_SUMMARY (%s): stat says %v", fromEnv, err)
	}
	asked := filepath.Join(t.TempDir(), "summary.md")
	run(asked)
	b, err := os.ReadFile(asked)
	if err != nil || !strings.Contains(string(b), "gantt") {
		t.Errorf("Testbed.StepSummary got no gantt: %q, %v", b, err)
	}
}
