package testbed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/kube"
)

// The steps that give a run its cluster: create (or reuse), its ports and
// shape, connect to an existing one, wait for its DNS, delete what it made.

// holding wraps the step that gives the run its cluster: once it ends
// well, or made a cluster before it failed, the run holds one.
func (r *run) holding(step func(context.Context, io.Writer) error) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		err := step(ctx, w)
		if err == nil || r.made.Load() {
			r.holds.Store(true)
		}
		return err
	}
}

// create makes the service's cluster (or reuses it with
// E2E_REUSE_CLUSTER), unless the claim step before it claimed a warm one.
func (r *run) create(ctx context.Context, w io.Writer) error {
	if r.claimed.Load() {
		r.mu.Lock()
		name := r.cluster.Name
		r.mu.Unlock()
		fmt.Fprintf(w, "warm cluster %s was claimed: nothing to create\n", name)
		return nil
	}
	_, err := r.makeCluster(ctx, w, r.cluster.Name, false)
	return err
}

// createWarm makes a cluster under a new warm name, with host ports the
// engine chooses, and reads them.
func (r *run) createWarm(ctx context.Context, w io.Writer) error {
	c, err := r.makeCluster(ctx, w, r.scope.WarmName(r.name), true)
	if err != nil {
		return err
	}
	return r.readHostPorts(ctx, c)
}

// makeCluster creates the kind cluster name and makes it the run's.
func (r *run) makeCluster(ctx context.Context, w io.Writer, name string, anyHostPorts bool) (*cluster.Cluster, error) {
	c, err := r.scope.Open(name, w)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.cluster = c
	r.mu.Unlock()
	got, err := c.Create(ctx, cluster.CreateOptions{NodeImage: r.nodeImage(), Ports: r.svc.Ports, Service: r.name, Reuse: r.cfg.ReuseCluster, AnyHostPorts: anyHostPorts, Shape: r.topo.ClusterOf(r.svc), Registry: r.cfg.nodesPullFromLocal()}, w)
	if got == cluster.Made {
		r.made.Store(true)
	}
	if err != nil {
		return nil, r.tb.hint(err, r.name)
	}
	if got == cluster.Made {
		fmt.Fprintf(w, "created cluster %s; kubeconfig %s\n", c.Name, c.Kubeconfig)
	}
	return c, nil
}

func (r *run) readHostPorts(ctx context.Context, c *cluster.Cluster) error {
	ports, err := c.HostPorts(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.ports = ports
	r.mu.Unlock()
	return nil
}

// shape hashes what a warm cluster must have been made from to serve this
// run: the node image (by ID: a rebuilt or re-baked one differs), the kind
// config, the namespace, how its nodes were paused. What the run can bring
// up to date (images, manifests) is not in it.
func (r *run) shape(ctx context.Context) (string, error) {
	d, err := r.dockerClient(ctx)
	if err != nil {
		return "", err
	}
	node := r.nodeImage()
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	img, err := d.ImageInspect(ictx, node)
	if err != nil {
		return "", fmt.Errorf("node image %s: %w", node, err)
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{img.ID, cluster.ConfigHash(r.svc.Ports, true, r.topo.ClusterOf(r.svc), r.cfg.nodesPullFromLocal()), r.topo.Namespace, r.name, cluster.PauseProtocol}, "\x00")))
	return hex.EncodeToString(sum[:12]), nil
}

// deleteIfMade deletes the cluster at the end of a run only if this run
// made it: a cluster that existed before (cluster:create, a kept or reused
// one, one a refused run found) is not the run's to delete.
func (r *run) deleteIfMade(ctx context.Context, w io.Writer) error {
	if !r.made.Load() {
		fmt.Fprintf(w, "cluster %s was not made by this run: left as it was\n", r.cluster.Name)
		return nil
	}
	return r.cluster.Delete(ctx, w)
}

// connect uses the service's cluster as it is. Its kubeconfig, when its
// API answers through it, is current (the address and CA are that
// cluster's): the listing and the kubeconfig export kind does (about
// 0.6 s here, on every save of e2e:watch) are needed only otherwise.
func (r *run) connect(ctx context.Context, w io.Writer) error {
	if k, err := kube.NewClient(r.cluster.Kubeconfig); err == nil && k.Answers(ctx, time.Second) {
		fmt.Fprintf(w, "using cluster %s, whose API answers through its kubeconfig %s\n", r.cluster.Name, r.cluster.Kubeconfig)
		return nil
	}
	if err := r.cluster.EnsureKubeconfig(ctx); err != nil {
		return r.tb.hint(err, r.name)
	}
	fmt.Fprintf(w, "using cluster %s; kubeconfig %s\n", r.cluster.Name, r.cluster.Kubeconfig)
	return nil
}

// clusterDNS waits until the cluster's DNS answers: a fresh cluster
// answers the API before its DNS, and a pod that looks up a Service then
// fails. One ready kube-dns endpoint is what a lookup needs; waiting for the
// whole CoreDNS Deployment (two replicas, probed every 10 s) waited for
// the second replica too.
func (r *run) clusterDNS(ctx context.Context, w io.Writer) error {
	k, err := r.kubeClient()
	if err != nil {
		return err
	}
	t0 := time.Now()
	n, err := k.WaitServiceEndpoint(ctx, "kube-system", "kube-dns", clusterReadyTimeout)
	if err != nil && ctx.Err() == nil {
		if node := k.NodeSettling(context.WithoutCancel(ctx)); node != "" {
			err = fmt.Errorf("%w\n  %s", err, node)
		}
		if short := cluster.InotifyShort(0); short != "" {
			return fmt.Errorf("%w\n  likely why: %s", err, short)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "kube-dns has %d ready endpoint(s) after %s\n", n, time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// clusterReadyTimeout bounds the wait for the cluster's own parts (CoreDNS),
// as kind bounds its wait for the control plane: E2E_TIMEOUT is the
// platform's components' deadline, and a short one (a user hunting a stuck
// component) must not fail on CoreDNS, which took up to 27 s here on a
// loaded 2-core machine.
const clusterReadyTimeout = 3 * time.Minute
