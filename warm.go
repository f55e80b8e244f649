package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/errdefs"
	"golang.org/x/sync/errgroup"

	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/images"
)

// partsWarm are the parts of a warm cluster: everything up to the suite.
var partsWarm = Parts{Build: true, Create: true, Load: true, Deploy: true}

// Warm makes n warm clusters of service ("all": n of every service), as
// many at once as e2e:all runs: each is built, created, loaded, deployed
// until every component is Ready, then its node is paused. A run of the
// service then claims one (E2E_WARM=1) instead of creating a cluster.
func (t *Testbed) Warm(ctx context.Context, service string, n int) error {
	services := []string{service}
	if service == "all" {
		services = t.Topo.ServiceNames()
	} else if _, err := t.Topo.Service(service); err != nil {
		return &InputError{err}
	}
	if n < 1 {
		return &InputError{fmt.Errorf("%d warm clusters: ask for at least 1", n)}
	}
	t.initOnce()
	parallel := t.Opts.Parallel
	if parallel < 1 {
		parallel = DefaultParallel()
	}
	pr := newAllPrinter(t.Out)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	var mu sync.Mutex
	var errs []error
	for _, svc := range services {
		for i := range n {
			label := fmt.Sprintf("%s#%d", svc, i+1)
			g.Go(func() error {
				var buf bytes.Buffer
				env := runEnv{out: &buf, progress: pr.progress(label), plain: true, warming: true}
				p, r, err := t.plan(svc, partsWarm, env)
				if err != nil {
					return err
				}
				defer r.close()
				pr.line(label, "▶ start")
				res, err := engine.Run(gctx, p, engine.Options{Mode: t.Opts.Mode, Out: &buf, Style: engine.Plain, Progress: env.progress})
				var total time.Duration
				if res != nil {
					total = res.Total
				}
				if err == nil {
					fmt.Fprintf(&buf, "warm cluster %s of %s is ready and paused\n", r.cluster.Name, svc)
				}
				pr.block(label, buf.String(), err == nil, total)
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", label, firstLineErr(err)))
					mu.Unlock()
				}
				return nil
			})
		}
	}
	return errors.Join(append(errs, g.Wait())...)
}

// List prints the clusters testbed made: warm (paused, ready to be
// claimed), in use (claimed by a run), or other (a run's, kept or reused).
func (t *Testbed) List(ctx context.Context) error {
	names, _, err := t.scope().List(ctx)
	if err != nil {
		return err
	}
	warm, err := t.scope().ListWarm("")
	if err != nil {
		return err
	}
	byName := map[string]cluster.Warm{}
	for _, w := range warm {
		byName[w.Name] = w
	}
	tw := tabwriter.NewWriter(t.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "cluster\tservice\tstate\tage")
	for _, n := range names {
		svc, isWarm := t.scope().IsWarmName(n)
		state, age := "running (a run's, kept or reused)", "-"
		if !isWarm {
			svc = strings.TrimPrefix(n, t.scope().Prefix())
		} else if w, ok := byName[n]; ok {
			state, age = "warm (paused)", time.Since(w.Made).Round(time.Second).String()
			switch {
			case w.Abandoned:
				state = "abandoned (its run ended without deleting it; cluster:prune deletes it)"
			case w.Claimed:
				state = "in use (claimed by a run)"
			}
		} else {
			state = "being warmed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n, svc, state, age)
	}
	if len(names) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	return tw.Flush()
}

// pruneBaked removes the node images testbed baked for the topology
// (testbed/<name>-node:*). One a container still runs from (a kept
// cluster) is left, and said.
func (t *Testbed) pruneBaked(ctx context.Context) error {
	d, err := images.NewDocker(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	imgs, err := d.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", t.scope().BakedRepo()))})
	if err != nil {
		return err
	}
	var errs []error
	for _, img := range imgs {
		if _, err := d.ImageRemove(ctx, img.ID, image.RemoveOptions{PruneChildren: true}); errdefs.IsConflict(err) {
			fmt.Fprintf(t.Out, "left baked node image %s: a container still uses it (a kept cluster?)\n", strings.Join(img.RepoTags, ", "))
			continue
		} else if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(t.Out, "removed baked node image %s\n", strings.Join(img.RepoTags, ", "))
	}
	return errors.Join(errs...)
}
