package testbed

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/engine"
	"github.com/testbed-dev/testbed/internal/kube"
)

// BenchDeploy measures deploy-and-wait of a service's stack in each mode on
// its existing cluster: before each run the namespace is deleted, so every
// mode starts from the same empty state; images stay loaded. Runs are
// interleaved (seq, phased, dataflow, seq, …) so drift hits every mode alike.
func (t *Testbed) BenchDeploy(ctx context.Context, service string, n int) error {
	if _, err := t.Topo.Service(service); err != nil {
		return err
	}
	c, err := cluster.Open(cluster.NameFor(service), io.Discard)
	if err != nil {
		return err
	}
	if err := c.EnsureKubeconfig(ctx); err != nil {
		return err
	}
	k, err := kube.NewClient(c.Kubeconfig)
	if err != nil {
		return err
	}
	modes := []engine.Mode{engine.Sequential, engine.Phased, engine.Dataflow}
	times := map[engine.Mode][]time.Duration{}
	var effs []float64
	for i := range n {
		for _, m := range modes {
			if err := k.DeleteNamespace(ctx, t.Topo.Namespace); err != nil {
				return fmt.Errorf("resetting namespace %s: %w", t.Topo.Namespace, err)
			}
			tb := *t
			tb.Cfg.Mode = m
			tb.Out = io.Discard
			res, err := tb.Run(ctx, service, PartsDeploy)
			if err != nil {
				return fmt.Errorf("run %d, mode %s: %w", i+1, m, err)
			}
			times[m] = append(times[m], res.Makespan)
			if m == engine.Dataflow {
				effs = append(effs, res.Analyze().Efficiency)
			}
			fmt.Fprintf(t.Out, "run %d %-10s makespan %s\n", i+1, m, res.Makespan.Round(100*time.Millisecond))
		}
	}
	df := median(times[engine.Dataflow])
	tw := tabwriter.NewWriter(t.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\ndeploy:parallel %s, %d run(s) per mode, same cluster\nmode\tmedian\tmin\tmax\t× dataflow\n", service, n)
	for _, m := range modes {
		ts := times[m]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\n", m, median(ts).Round(100*time.Millisecond), slices.Min(ts).Round(100*time.Millisecond),
			slices.Max(ts).Round(100*time.Millisecond), float64(median(ts))/float64(df))
	}
	tw.Flush()
	slices.Sort(effs)
	fmt.Fprintf(t.Out, "dataflow efficiency (its run's lower bound ÷ its makespan): median %.2f, min %.2f\n", effs[len(effs)/2], effs[0])
	return nil
}

func median(ts []time.Duration) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
