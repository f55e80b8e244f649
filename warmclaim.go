package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/kube"
)

// Warm clusters: claiming a paused one for a run, counting the probes that
// tell when its workloads are back, pausing a freshly warmed one.

// claimWarmStep is the step that claims a warm cluster of the run's
// shape, if there is one; the create step after it then makes nothing.
// The run holds a cluster only once it claimed one.
func (r *run) claimWarmStep(ctx context.Context, w io.Writer) error {
	ok, err := r.claimWarm(ctx, w)
	if ok {
		r.claimed.Store(true)
	}
	if ok || r.made.Load() {
		r.holds.Store(true)
	}
	if err == nil && !ok {
		fmt.Fprintln(w, "no warm cluster of this run's shape: the next step creates one")
	}
	return err
}

// claimWarm claims the oldest warm cluster of the run's shape, unpauses it
// and makes it the run's cluster (deleted at the end, as one it made).
// Warm clusters of another shape or older than E2E_WARM_MAX_AGE are
// discarded. ok is false when there is none: the run creates one.
func (r *run) claimWarm(ctx context.Context, w io.Writer) (ok bool, err error) {
	warm, err := r.scope.ListWarm(r.name)
	if err != nil || len(warm) == 0 {
		return false, err
	}
	shape, err := r.shape(ctx)
	if err != nil {
		return false, err
	}
	// Stale ones go first; only a usable one is worth waiting for.
	usable, err := r.discardStale(ctx, warm, shape, w)
	if err != nil {
		return false, err
	}
	if len(usable) == 0 {
		return false, nil // the run creates one, beside its builds
	}
	// Measured here (2 cores): a one-line change's compile took 4.8 s
	// beside a paused cluster, 7.2 s beside an idle awake one and 10.3 s
	// beside one waking up. The claim comes after, so a compile error
	// leaves the warm cluster as it was.
	if t0 := time.Now(); r.compiling.pending() {
		if err := r.compiling.wait(ctx); err != nil {
			return false, err
		}
		fmt.Fprintf(w, "waited %s for the builds to compile or find their images cached\n", time.Since(t0).Round(10*time.Millisecond))
	}
	for _, wc := range usable {
		c, err := r.scope.Claim(wc.Name)
		if errors.Is(err, cluster.ErrClaimed) {
			continue // another run took it
		}
		if err != nil {
			return false, err
		}
		r.mu.Lock()
		r.cluster = c
		r.held.put(wc.Images) // what a load would ask the waking nodes
		r.mu.Unlock()
		r.made.Store(true) // the run deletes it: a warm cluster serves one run
		return true, r.wake(ctx, c, wc, w)
	}
	return false, nil
}

// discardStale deletes the warm clusters of another shape, or older than
// E2E_WARM_MAX_AGE, that no other run has claimed, and returns the usable
// ones.
func (r *run) discardStale(ctx context.Context, warm []cluster.Warm, shape string, w io.Writer) ([]cluster.Warm, error) {
	var usable []cluster.Warm
	for _, wc := range warm {
		if wc.Claimed {
			continue
		}
		age := time.Since(wc.Made)
		if wc.Shape == shape && age <= r.cfg.WarmMaxAge {
			usable = append(usable, wc)
			continue
		}
		c, err := r.scope.Claim(wc.Name)
		if errors.Is(err, cluster.ErrClaimed) {
			continue // another run took it
		}
		if err != nil {
			return nil, err
		}
		why := "its node image or kind config differ from this run's"
		if wc.Shape == shape {
			why = fmt.Sprintf("warmed %s ago, more than E2E_WARM_MAX_AGE=%s", age.Round(time.Second), r.cfg.WarmMaxAge)
		}
		fmt.Fprintf(w, "discarding warm cluster %s: %s\n", wc.Name, why)
		if err := c.Delete(context.WithoutCancel(ctx), w); err != nil {
			fmt.Fprintf(w, "deleting %s: %v\n", wc.Name, err)
		}
	}
	return usable, nil
}

// wake unpauses the claimed warm cluster and waits for its API server.
func (r *run) wake(ctx context.Context, c *cluster.Cluster, wc cluster.Warm, w io.Writer) error {
	t0 := time.Now()
	if err := c.Unpause(ctx); err != nil {
		return err
	}
	if err := r.readHostPorts(ctx, c); err != nil {
		return err
	}
	k, err := r.kubeClient()
	if err != nil {
		return err
	}
	if err := k.WaitAPI(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("warm cluster %s after the unpause: %w", c.Name, err)
	}
	r.countProbes(k, c.Name)
	fmt.Fprintf(w, "claimed warm cluster %s (warmed %s ago); API answered %s after the unpause\n",
		c.Name, time.Since(wc.Made).Round(time.Second), time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// countProbes reads, in the background, the kubelets' readiness probe
// counts after a claimed cluster's unpause: what the ready steps require
// to have grown (the status from before the pause says nothing of the pods
// now). A kubelet just unpaused can take seconds to answer (up to 17 s
// with two runs at once here); the loads and applies need not wait for it.
// close stops and waits for it.
func (r *run) countProbes(k *kube.Client, cluster string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	done := make(chan struct{})
	r.mu.Lock()
	r.probes = &probeCount{done: done, stop: cancel}
	pc := r.probes
	r.mu.Unlock()
	go func() {
		defer close(done)
		defer cancel()
		pc.since, pc.err = k.ReadinessProbesWithin(ctx, 30*time.Second)
		if pc.err != nil {
			pc.err = fmt.Errorf("warm cluster %s after the unpause: the kubelet's probe counters (docker exec %s-control-plane systemctl status kubelet): %w", cluster, cluster, pc.err)
		}
	}()
}

// countdown counts what is still to happen; wait returns when none is.
// Its zero value counts nothing.
type countdown struct {
	mu   sync.Mutex
	n    int
	none chan struct{} // closed when n falls to 0
}

func (c *countdown) add() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		c.none = make(chan struct{})
	}
	c.n++
}

func (c *countdown) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 {
		close(c.none)
	}
}

func (c *countdown) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n > 0
}

func (c *countdown) wait(ctx context.Context) error {
	c.mu.Lock()
	none := c.none
	n := c.n
	c.mu.Unlock()
	if n == 0 {
		return nil
	}
	select {
	case <-none:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// probeCount is countProbes's result, ready when done is closed.
type probeCount struct {
	done  chan struct{}
	stop  context.CancelFunc
	since map[string]kube.ProbeCount
	err   error
}

// pauseWarm records the run's cluster as warm and pauses its nodes.
func (r *run) pauseWarm(ctx context.Context, w io.Writer) error {
	shape, err := r.shape(ctx)
	if err != nil {
		return err
	}
	if err := r.cluster.MarkWarm(ctx, r.name, shape); err != nil {
		return err
	}
	fmt.Fprintf(w, "warm cluster %s paused (shape %s)\n", r.cluster.Name, shape)
	return nil
}
