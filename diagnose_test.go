package testbed

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiagnoseNothingBeforeTheRunHasACluster: a run that failed before its
// cluster step (a build error in a warm plan, whose cluster handle names
// <name>-<service>, perhaps a user's kept cluster) diagnoses nothing and
// leaves the previous run's diagnostics.
func TestDiagnoseNothingBeforeTheRunHasACluster(t *testing.T) {
	cfg := Options{Artifacts: t.TempDir()}
	prev := filepath.Join(cfg.Artifacts, "gateway", "diagnostics", "pods.txt")
	if err := os.MkdirAll(filepath.Dir(prev), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prev, []byte("the previous run's"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A run on an existing cluster whose connect step never ran.
	r := &run{cfg: cfg, name: "gateway", existing: &existingCluster{kubeconfig: filepath.Join(t.TempDir(), "not-yet-written")}}
	var out bytes.Buffer
	if err := r.diagnose(context.Background(), &out); err != nil {
		t.Errorf("diagnose: %v", err)
	}
	if _, err := os.Stat(prev); err != nil {
		t.Errorf("the previous run's diagnostics are gone: %v", err)
	}
	if !strings.Contains(out.String(), "no cluster to diagnose") {
		t.Errorf("diagnose does not say why it did nothing: %q", out.String())
	}
}

// TestHoldingMarksTheCluster: the cluster step's wrapper marks the run as
// holding a cluster when the step ends well, or when it made a cluster
// before failing; a step that failed before kind ran does not.
func TestHoldingMarksTheCluster(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		made bool
		err  error
		want bool
	}{{"ok", false, nil, true}, {"made, then failed", true, boom, true}, {"failed before kind", false, boom, false}} {
		r := &run{}
		step := r.holding(func(context.Context, io.Writer) error {
			r.made.Store(tc.made)
			return tc.err
		})
		if err := step(context.Background(), io.Discard); !errors.Is(err, tc.err) {
			t.Errorf("%s: the step's error %v became %v", tc.name, tc.err, err)
		}
		if r.holds.Load() != tc.want {
			t.Errorf("%s: holds %v, want %v", tc.name, r.holds.Load(), tc.want)
		}
	}
}
