package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"time"

	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/images"
	"github.com/testbed-dev/testbed/topology"
)

// oneCluster is a kind cluster e2e:all makes and runs several services on
// (E2E_ONE_CLUSTER=1): one kind create, one CoreDNS, one load of each
// image, instead of one of each per service. The first run that needs it
// makes it; the others wait for it. Each service then runs as on an
// existing cluster (see runNamespace): a namespace of its own, its own
// copies of cluster-scoped objects but CRDs, no node ports, the suite
// reaching its ports through port-forwards; its namespace is deleted when
// its suite ends. All deletes the cluster when every service is done.
type oneCluster struct {
	c     *cluster.Cluster
	shape *topology.Cluster
	third []string // the services' third-party images: baked into its node image

	made atomic.Bool // kind was started for it: All deletes it
}

const stepOne = "create shared cluster"

// oneClusterWhy says why e2e:all cannot put services on one cluster with
// these options ("" when it can).
func oneClusterWhy(o Options) string {
	switch {
	case o.Existing != "":
		return "E2E_EXISTING_KUBECONFIG already shares one cluster"
	case o.Registry != "" || o.LocalRegistry:
		return "images come from a registry (IMAGE_REGISTRY, E2E_REGISTRY)"
	case o.Coverage:
		return "E2E_COVERAGE=1 collects each service's coverage from its own node"
	case o.ReuseCluster:
		return "E2E_REUSE_CLUSTER=1 uses each service's own cluster"
	}
	return ""
}

// oneClusters groups services by cluster shape: services of one shape
// share a cluster, named <name>-all (then -all-2, ...).
func (t *Testbed) oneClusters(services []string) (map[string]*oneCluster, error) {
	byShape := map[string]*oneCluster{}
	out := map[string]*oneCluster{}
	for _, name := range services {
		svc, err := t.Topo.Service(name)
		if err != nil {
			return nil, &InputError{err}
		}
		shape := t.Topo.ClusterOf(svc)
		key := cluster.ConfigHash(nil, false, shape, false)
		o := byShape[key]
		if o == nil {
			cname := "all"
			if len(byShape) > 0 {
				cname = fmt.Sprintf("all-%d", len(byShape)+1)
			}
			c, err := t.scope().Open(t.scope().NameFor(cname), io.Discard)
			if err != nil {
				return nil, err
			}
			o = &oneCluster{c: c, shape: shape}
			byShape[key] = o
		}
		for _, img := range t.Topo.ImagesOf(svc) {
			if i := t.Topo.Images[img]; !i.Built() {
				if ref := images.ThirdParty(i); !slices.Contains(o.third, ref) {
					o.third = append(o.third, ref)
				}
			}
		}
		out[name] = o
	}
	return out, nil
}

// createOne makes the shared cluster, or waits for the run that makes it.
func (r *run) createOne(ctx context.Context, w io.Writer) error {
	o := r.one
	t0 := time.Now()
	_, reused, err := r.once.steps.do(ctx, "one cluster\x00"+o.c.Name, func() (struct{}, error) {
		return struct{}{}, r.makeOne(ctx, w)
	})
	if err != nil {
		return err
	}
	if reused {
		fmt.Fprintf(w, "cluster %s was made by another service's run (waited %s)\n", o.c.Name, time.Since(t0).Round(100*time.Millisecond))
	}
	k, err := r.kubeClient()
	if err != nil {
		return err
	}
	return k.WaitAPI(ctx, 30*time.Second)
}

// makeOne bakes the node image with every service's third-party images
// and creates the cluster, without host ports: the suites reach their
// services through port-forwards.
func (r *run) makeOne(ctx context.Context, w io.Writer) error {
	o := r.one
	if len(o.third) > 0 && r.cfg.Bake {
		if err := r.bake(o.third)(ctx, w); err != nil {
			return err
		}
	}
	got, err := o.c.Create(ctx, cluster.CreateOptions{NodeImage: r.nodeImage(), Service: "e2e:all", Shape: o.shape}, w)
	if got == cluster.Made {
		o.made.Store(true)
	}
	if errors.Is(err, cluster.ErrExists) {
		// Not a service's cluster: cluster:delete <service> is no remedy.
		return fmt.Errorf("%w\n  e2e:all shares a cluster of that name: if a kept e2e:all made it, cluster:prune deletes it; or set E2E_ONE_CLUSTER=0", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "created cluster %s for e2e:all's services; kubeconfig %s\n", o.c.Name, o.c.Kubeconfig)
	return nil
}

// loadOne loads an image into the shared cluster once for all its runs.
func (r *run) loadOne(name string, load func(context.Context, io.Writer) error) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		_, ref, id, err := r.hostImage(ctx, name)
		if err != nil {
			return err
		}
		_, reused, err := r.once.steps.do(ctx, "load\x00"+r.one.c.Name+"\x00"+ref+"\x00"+id, func() (struct{}, error) {
			return struct{}{}, load(ctx, w)
		})
		if reused {
			fmt.Fprintf(w, "%s was loaded into %s by another service's run\n", ref, r.one.c.Name)
		}
		return err
	}
}

// deleteOnes deletes the shared clusters e2e:all made, unless kept.
func (t *Testbed) deleteOnes(ctx context.Context, ones map[string]*oneCluster) error {
	var errs []error
	seen := map[*oneCluster]bool{}
	for _, o := range ones {
		if seen[o] || !o.made.Load() {
			continue
		}
		seen[o] = true
		if t.Opts.KeepCluster {
			fmt.Fprintf(t.Out, "kept cluster %s (E2E_KEEP_CLUSTER=1) with each service's namespace; kubeconfig %s\n", o.c.Name, o.c.Kubeconfig)
			continue
		}
		errs = append(errs, o.c.Delete(ctx, t.Out))
	}
	return errors.Join(errs...)
}

// sharing maps the services e2e:all runs on a shared cluster to it: every
// service, unless the options need a cluster per service or the service
// has a warm cluster to claim (a warm cluster is faster still).
func (t *Testbed) sharing(services []string) (map[string]*oneCluster, error) {
	if !t.Opts.OneCluster {
		return nil, nil
	}
	if why := oneClusterWhy(t.Opts); why != "" {
		fmt.Fprintf(t.Out, "testbed: a cluster per service: %s\n", why)
		return nil, nil
	}
	var share []string
	for _, svc := range services {
		if t.Opts.Warm {
			if warm, _ := t.scope().ListWarm(svc); slices.ContainsFunc(warm, func(w cluster.Warm) bool { return !w.Claimed }) {
				fmt.Fprintf(t.Out, "testbed: %s has a warm cluster: it claims it instead of sharing\n", svc)
				continue
			}
		}
		share = append(share, svc)
	}
	if len(share) < 2 {
		return nil, nil
	}
	return t.oneClusters(share)
}
