package testbed

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestBakeForNextRunBakesOnlyWhatWasMissing: the bake after a pass runs
// only when the run found no bake, and not on a GitHub Actions runner,
// which has no next run (the workflow's node job bakes).
func TestBakeForNextRunBakesOnlyWhatWasMissing(t *testing.T) {
	for _, tc := range []struct {
		unbaked bool
		github  string
		bakes   bool
		says    string
	}{
		{unbaked: false, github: "", bakes: false, says: "nothing to bake"},
		{unbaked: true, github: "", bakes: true},
		{unbaked: true, github: "true", bakes: false, says: "not baking in GitHub Actions"},
	} {
		t.Setenv("GITHUB_ACTIONS", tc.github)
		r := &run{unbaked: tc.unbaked}
		baked := false
		step := r.bakeForNextRun(func(context.Context, io.Writer) error { baked = true; return nil })
		var out strings.Builder
		if err := step(context.Background(), &out); err != nil {
			t.Fatal(err)
		}
		if baked != tc.bakes || !strings.Contains(out.String(), tc.says) {
			t.Errorf("unbaked=%v GITHUB_ACTIONS=%q: baked %v, said %q; want baked %v, saying %q", tc.unbaked, tc.github, baked, out.String(), tc.bakes, tc.says)
		}
	}
}
