package testbed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/topology"
)

// coverMount is where pods see the node's coverage directory.
const coverMount = "/testbed-coverage"

// prepareCoverDir makes the node directory the instrumented binaries write
// their coverage data into (E2E_COVERAGE).
func (r *run) prepareCoverDir(ctx context.Context, w io.Writer) error {
	if err := r.cluster.PrepareCoverDir(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "node directory %s is empty and writable; pods mount it at %s\n", cluster.CoverDir, coverMount)
	return nil
}

// builtRefs are the references of the component's images built in this
// run: the instrumented ones under E2E_COVERAGE.
func (r *run) builtRefs(c *topology.Component) map[string]bool {
	refs := map[string]bool{}
	for _, img := range c.Images {
		if r.topo.Images[img].Built() {
			ref, _ := r.image(img)
			refs[ref] = true
		}
	}
	return refs
}

// collectCoverage stops the instrumented pods so they write their counters
// (a Go binary built with -cover writes them when it exits), copies the
// data out of the node and turns it into a report under
// E2E_ARTIFACTS/<service>/coverage: percent.txt (per package), func.txt
// (per function, total last) and coverage.out (for go tool cover -html).
func (r *run) collectCoverage(ctx context.Context, w io.Writer) error {
	if ok, err := r.cluster.Exists(ctx); err != nil || !ok {
		fmt.Fprintln(w, "no cluster: no coverage to collect")
		return err
	}
	k, err := r.kubeClient()
	if err != nil {
		return err
	}
	var objs []kube.Object
	for _, name := range r.svc.Components {
		c := r.topo.Components[name]
		if len(r.builtRefs(c)) == 0 {
			continue
		}
		o, err := r.manifests(name, c)
		if err != nil {
			return err
		}
		objs = append(objs, o...)
	}
	if err := k.ScaleToZero(ctx, objs, w); err != nil {
		return err
	}
	if r.cfg.KeepCluster {
		fmt.Fprintln(w, "the kept cluster's instrumented workloads are now at zero replicas; deploy:parallel scales them back")
	}
	dir, err := r.freshArtifactDir("coverage")
	if err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	n, err := r.cluster.CopyCoverDir(ctx, data)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no coverage data in %s: did the instrumented pods start and exit?", cluster.CoverDir)
	}
	report := func(out string, args ...string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, "go", args...)
		cmd.Dir = r.cfg.Root
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		if out != "" {
			return stdout.String(), os.WriteFile(filepath.Join(dir, out), stdout.Bytes(), 0o644)
		}
		return stdout.String(), nil
	}
	percent, err := report("percent.txt", "tool", "covdata", "percent", "-i", data)
	if err != nil {
		return err
	}
	profile := filepath.Join(dir, "coverage.out")
	if _, err := report("", "tool", "covdata", "textfmt", "-i", data, "-o", profile); err != nil {
		return err
	}
	funcs, err := report("func.txt", "tool", "cover", "-func", profile)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d coverage files from the node\n%s", n, percent)
	lines := strings.Split(strings.TrimSpace(funcs), "\n")
	fmt.Fprintf(w, "%s\nreport: %s (go tool cover -html=%s)\n", strings.Join(strings.Fields(lines[len(lines)-1]), " "), dir, profile)
	return nil
}
