package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Where a run's evidence goes, and the diagnostics of a failed run.

// artifacts is where a service's timelines, diagnostics and coverage go:
// a directory of its own under E2E_ARTIFACTS, never outside it, whatever
// the name (the topology's validation refuses such names first).
func artifacts(cfg Options, service string) (string, error) {
	if !filepath.IsLocal(service) || strings.ContainsAny(service, `/\`) {
		return "", fmt.Errorf("service %q: not a name a directory under %s can have", service, cfg.Artifacts)
	}
	return filepath.Join(cfg.Artifacts, service), nil
}

// freshArtifactDir is the run's artifacts subdirectory name, emptied of
// what an earlier run wrote there.
func (r *run) freshArtifactDir(name string) (string, error) {
	base, err := artifacts(r.cfg, r.name)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, name)
	return dir, os.RemoveAll(dir)
}

// diagnose writes the diagnostics of the cluster the run holds. A run
// that failed before it had one (a build error) diagnoses nothing: the
// cluster of its name may be someone's kept one, and the previous run's
// diagnostics stay.
func (r *run) diagnose(ctx context.Context, w io.Writer) error {
	if !r.holds.Load() {
		fmt.Fprintln(w, "no cluster to diagnose: the run failed before it had one")
		return nil
	}
	if r.cluster != nil {
		ok, err := r.cluster.Exists(ctx)
		if err != nil || !ok {
			fmt.Fprintln(w, "no cluster to diagnose")
			return err
		}
	}
	dir, err := r.freshArtifactDir("diagnostics")
	if err != nil {
		return err
	}
	var errs []error
	if k, err := r.kubeClient(); err == nil {
		errs = append(errs, k.Diagnose(ctx, r.ns, dir))
	} else {
		errs = append(errs, err)
	}
	if r.cluster != nil {
		errs = append(errs, r.cluster.CollectLogs(ctx, filepath.Join(dir, "kind")))
	}
	fmt.Fprintf(w, "diagnostics written to %s\n", dir)
	return errors.Join(errs...)
}
