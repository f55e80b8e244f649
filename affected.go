package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/testbed-dev/testbed/internal/affected"
	"github.com/testbed-dev/testbed/topology"
)

// Cause is why a change affects a service: the first changed file that
// does, and what that file is to the service.
type Cause struct {
	File, What string
}

// Affected lists the services whose environment or suite the changes on
// HEAD since base (git diff base...HEAD) can change, each with its Cause.
func (t *Testbed) Affected(ctx context.Context, base string) (map[string]Cause, error) {
	files, err := affected.ChangedFiles(ctx, t.Opts.Root, base)
	if err != nil {
		return nil, &InputError{Err: err}
	}
	inputs, err := t.inputs(ctx)
	if err != nil {
		return nil, err
	}
	var ignore []string
	if t.Topo.CI != nil {
		ignore = t.Topo.CI.Ignore
	}
	out := map[string]Cause{}
	for svc, r := range affected.Services(inputs, t.Topo.ServiceNames(), files, ignore) {
		out[svc] = Cause(r)
	}
	return out, nil
}

// WriteAffected writes the affected services as the matrix ci:matrix
// writes (JSON, to w) and, for people, why each one is in it (to why).
func (t *Testbed) WriteAffected(ctx context.Context, base string, w, why io.Writer) error {
	svcs, err := t.Affected(ctx, base)
	if err != nil {
		return err
	}
	targets := []string{}
	var md strings.Builder
	fmt.Fprintf(&md, "### Services affected by the changes since `%s`\n\n", base)
	for _, s := range t.Topo.ServiceNames() {
		if r, ok := svcs[s]; ok {
			targets = append(targets, mageTarget(s))
			fmt.Fprintf(why, "%s: %s (%s)\n", s, r.File, r.What)
			fmt.Fprintf(&md, "- **%s**: `%s` (%s)\n", s, r.File, r.What)
		}
	}
	if len(targets) == 0 {
		fmt.Fprintf(why, "no service is affected by the changes since %s\n", base)
		md.WriteString("None: every changed file is ignored (the topology's ci.ignore) or a test of a package.\n")
	}
	if t.StepSummary != "" {
		// The job summary says why each service runs; failing to write it
		// is not a reason to fail the matrix.
		if f, err := os.OpenFile(t.StepSummary, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(f, md.String())
			f.Close()
		}
	}
	b, err := json.Marshal(map[string][]string{"service": targets})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// inputs are what each service is made from, read from the topology and
// go list, and what every service is made from: the topology, go.mod and
// go.sum (testbed and every other module come in through them), CI's own
// files, and, in the repository testbed is developed in, the packages its
// targets are built from.
func (t *Testbed) inputs(ctx context.Context) ([]affected.Input, error) {
	root, topo := t.Opts.Root, t.Topo
	rel := func(p string) string {
		if r, err := filepath.Rel(root, topo.Path(p)); err == nil {
			return r
		}
		return p
	}
	topoFile, err := filepath.Rel(root, t.Opts.Topology)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	everything := affected.Input{What: "testbed and what every service is made from", Paths: []affected.Path{
		affected.File(topoFile), affected.File("go.mod"), affected.File("go.sum"), affected.File("magefile.go"),
		affected.Tree(".ci"), affected.Tree(".github"),
	}}
	inputs := []affected.Input{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU() + 2)
	if fi, err := os.Stat(filepath.Join(root, "magefiles")); err == nil && fi.IsDir() {
		g.Go(func() error {
			paths, err := affected.GoPackage(gctx, root, "./magefiles", false, nil, "mage")
			mu.Lock()
			everything.Paths = append(everything.Paths, paths...)
			mu.Unlock()
			return err
		})
	}
	add := func(in affected.Input) {
		mu.Lock()
		inputs = append(inputs, in)
		mu.Unlock()
	}
	using := func(has func(*topology.Service) bool) []string {
		svcs := []string{}
		for _, name := range topo.ServiceNames() {
			if has(topo.Services[name]) {
				svcs = append(svcs, name)
			}
		}
		return svcs
	}
	for name, img := range topo.Images {
		if !img.Built() {
			continue
		}
		svcs := using(func(s *topology.Service) bool { return slices.Contains(topo.ImagesOf(s), name) })
		g.Go(func() error {
			in := affected.Input{What: "image " + name, Services: svcs, Paths: []affected.Path{affected.File(rel(img.Dockerfile))}}
			if img.Context != "" {
				in.Paths = append(in.Paths, affected.Tree(rel(img.Context)))
			}
			for _, b := range img.Binaries {
				paths, err := affected.GoPackage(gctx, root, b.Package, false, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH})
				if err != nil {
					return fmt.Errorf("image %s: %w", name, err)
				}
				in.Paths = append(in.Paths, paths...)
			}
			add(in)
			return nil
		})
	}
	for name, c := range topo.Components {
		paths, err := affected.Kustomization(root, rel(c.Manifests))
		if err != nil {
			return nil, fmt.Errorf("component %s: %w", name, err)
		}
		add(affected.Input{What: "manifests of " + name, Paths: paths, Services: using(func(s *topology.Service) bool { return slices.Contains(s.Components, name) })})
	}
	for name, s := range topo.Services {
		if s.Suite == topology.NoSuite {
			continue
		}
		g.Go(func() error {
			paths, err := affected.GoPackage(gctx, root, s.Suite, true, nil)
			if err != nil {
				return fmt.Errorf("suite of %s: %w", name, err)
			}
			// Everything under the suite's directory: its fixtures
			// (testdata), scripts and files a test reads at run time.
			paths = append(paths, affected.Tree(rel(s.Suite)))
			add(affected.Input{What: "suite of " + name, Paths: paths, Services: []string{name}})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// Most specific first, for the reasons printed: an image or manifest
	// before everything.
	slices.SortFunc(inputs, func(a, b affected.Input) int { return strings.Compare(a.What, b.What) })
	return append(inputs, everything), nil
}
