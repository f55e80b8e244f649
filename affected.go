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
	topoFile, err := filepath.Rel(t.Opts.Root, t.Opts.Topology)
	if err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU() + 2)
	c := &inputCollector{ctx: gctx, g: g, root: t.Opts.Root, topo: t.Topo}
	everything := affected.Input{What: "testbed and what every service is made from", Paths: []affected.Path{
		affected.File(topoFile), affected.File("go.mod"), affected.File("go.sum"), affected.File("magefile.go"),
		affected.Tree(".ci"), affected.Tree(".github"),
	}}
	var magefiles []affected.Path
	if fi, err := os.Stat(filepath.Join(c.root, "magefiles")); err == nil && fi.IsDir() {
		g.Go(func() (err error) {
			magefiles, err = affected.GoPackage(gctx, c.root, "./magefiles", false, nil, "mage")
			return err
		})
	}
	c.images()
	if err := c.components(); err != nil {
		_ = g.Wait()
		return nil, err
	}
	c.suites()
	if err := g.Wait(); err != nil {
		return nil, err
	}
	everything.Paths = append(everything.Paths, magefiles...)
	// Most specific first, for the reasons printed: an image or manifest
	// before everything.
	slices.SortFunc(c.inputs, func(a, b affected.Input) int { return strings.Compare(a.What, b.What) })
	return append(c.inputs, everything), nil
}

// inputCollector gathers the inputs of a topology's images, components
// and suites, asking go list in parallel (g).
type inputCollector struct {
	ctx    context.Context
	g      *errgroup.Group
	root   string
	topo   *topology.Topology
	mu     sync.Mutex
	inputs []affected.Input
}

func (c *inputCollector) add(in affected.Input) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inputs = append(c.inputs, in)
}

// rel is a topology path relative to the repository.
func (c *inputCollector) rel(p string) string {
	if r, err := filepath.Rel(c.root, c.topo.Path(p)); err == nil {
		return r
	}
	return p
}

// using names the services for which has holds.
func (c *inputCollector) using(has func(*topology.Service) bool) []string {
	svcs := []string{}
	for _, name := range c.topo.ServiceNames() {
		if has(c.topo.Services[name]) {
			svcs = append(svcs, name)
		}
	}
	return svcs
}

// images: each built image's Dockerfile, context and binaries' packages.
func (c *inputCollector) images() {
	for name, img := range c.topo.Images {
		if !img.Built() {
			continue
		}
		svcs := c.using(func(s *topology.Service) bool { return slices.Contains(c.topo.ImagesOf(s), name) })
		c.g.Go(func() error {
			in := affected.Input{What: "image " + name, Image: name, Services: svcs, Paths: []affected.Path{affected.File(c.rel(img.Dockerfile))}}
			if img.Context != "" {
				in.Paths = append(in.Paths, affected.Tree(c.rel(img.Context)))
			}
			for _, b := range img.Binaries {
				paths, err := affected.GoPackage(c.ctx, c.root, b.Package, false, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH})
				if err != nil {
					return fmt.Errorf("image %s: %w", name, err)
				}
				in.Paths = append(in.Paths, paths...)
			}
			c.add(in)
			return nil
		})
	}
}

// components: the files each component's kustomization is built from.
func (c *inputCollector) components() error {
	for name, comp := range c.topo.Components {
		paths, err := affected.Kustomization(c.root, c.rel(comp.Manifests))
		if err != nil {
			return fmt.Errorf("component %s: %w", name, err)
		}
		c.add(affected.Input{What: "manifests of " + name, Paths: paths, Services: c.using(func(s *topology.Service) bool { return slices.Contains(s.Components, name) })})
	}
	return nil
}

// suites: each suite's package (tests included) and everything under its
// directory: its fixtures (testdata), scripts and files a test reads at
// run time.
func (c *inputCollector) suites() {
	for name, s := range c.topo.Services {
		if s.Suite == topology.NoSuite {
			continue
		}
		c.g.Go(func() error {
			paths, err := affected.GoPackage(c.ctx, c.root, s.Suite, true, nil)
			if err != nil {
				return fmt.Errorf("suite of %s: %w", name, err)
			}
			paths = append(paths, affected.Tree(c.rel(s.Suite)))
			c.add(affected.Input{What: "suite of " + name, Suite: true, Paths: paths, Services: []string{name}})
			return nil
		})
	}
}
