package kube

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ProbeCount is what a node's kubelet counted of one container's readiness
// probe: successes and failures since the kubelet started.
type ProbeCount struct{ Successes, Failures float64 }

// ReadinessProbes reads the readiness probe counters of every node's
// kubelet (its /metrics/probes, through the API server's node proxy), by
// "namespace/pod/container".
//
// A pod's Ready condition is only rewritten when it changes: after a
// paused node is unpaused, the status the API server holds is the one from
// before the pause, and says nothing of whether the pod answers now. A
// counter that grew since a count taken after the unpause does.
func (c *Client) ReadinessProbes(ctx context.Context) (map[string]ProbeCount, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nodes, err := c.Core.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]ProbeCount{}
	for _, n := range nodes.Items {
		raw, err := c.Core.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", n.Name, "proxy", "metrics", "probes").DoRaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("node %s: the kubelet's probe counters: %w", n.Name, err)
		}
		parseProbes(string(raw), out)
	}
	return out, nil
}

// parseProbes adds the readiness lines of a kubelet's /metrics/probes to
// out, e.g.
//
//	prober_probe_total{container="app",namespace="ns",pod="p",pod_uid="…",probe_type="Readiness",result="successful"} 42
func parseProbes(text string, out map[string]ProbeCount) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "prober_probe_total{")
		if !ok {
			continue
		}
		labelText, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		// "value" or "value timestamp"; a line cut short has neither.
		fields := strings.Fields(value)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		l := map[string]string{}
		for _, kv := range strings.Split(labelText, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if ok {
				l[k] = strings.Trim(v, `"`)
			}
		}
		if l["probe_type"] != "Readiness" {
			continue
		}
		key := l["namespace"] + "/" + l["pod"] + "/" + l["container"]
		pc := out[key]
		switch l["result"] {
		case "successful":
			pc.Successes += v
		case "failed", "unknown":
			pc.Failures += v
		}
		out[key] = pc
	}
}

// freshPoll is how often WaitFreshReadiness looks again: a probe passes
// within its period (1 s for the platform's), so a look every 250 ms
// added 125 ms on average to a claimed cluster's readiness.
const freshPoll = 100 * time.Millisecond

// WaitFreshReadiness waits until every container with a readiness probe,
// in the running pods of the workloads among objs, is Ready and has passed
// its probe since since was counted (see ReadinessProbes). It fails at the
// timeout naming the containers that have not, with their pods' recent
// events (the probe's failures) and log tails.
func (c *Client) WaitFreshReadiness(ctx context.Context, objs []Object, since map[string]ProbeCount, timeout time.Duration, w io.Writer) error {
	sels, ns := podSelectors(objs)
	if len(sels) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	told := false
	for {
		stale, pods, err := c.staleReadiness(ctx, ns, sels, since)
		if err == nil && len(stale) == 0 {
			if time.Since(t0) > 500*time.Millisecond {
				fmt.Fprintf(w, "every readiness probe passed again since the unpause (waited %s)\n", time.Since(t0).Round(100*time.Millisecond))
			}
			return nil
		}
		why := strings.Join(stale, "; ")
		if err != nil {
			why = err.Error()
		}
		if !told && time.Since(t0) > 10*time.Second {
			told = true
			fmt.Fprintf(w, "waiting for readiness probes to pass since the unpause: %s\n", why)
		}
		select {
		case <-ctx.Done():
			var details []string
			for _, p := range pods {
				details = append(details, c.podDetails(context.WithoutCancel(ctx), p, ""))
			}
			return &NotReadyError{
				Object:  "warm cluster",
				Reason:  fmt.Sprintf("its pods did not pass their readiness probes again within %s: %s", timeout.Round(time.Second), why),
				Details: joinLines(strings.Join(details, "\n"), "what to do: the pods served before the pause and do not since; E2E_WARM=0 runs on a fresh cluster, cluster:prune deletes the warm ones"),
			}
		case <-time.After(freshPoll):
		}
	}
}

// staleReadiness lists the containers (and their pods) that are not Ready
// or have not passed their readiness probe since since.
func (c *Client) staleReadiness(ctx context.Context, ns string, sels map[string]labels.Selector, since map[string]ProbeCount) ([]string, []*corev1.Pod, error) {
	list, err := c.Core.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	now, err := c.ReadinessProbes(ctx)
	if err != nil {
		return nil, nil, err
	}
	var stale []string
	var pods []*corev1.Pod
	for i := range list.Items {
		pod := &list.Items[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning || !selected(pod, sels) {
			continue
		}
		ready := map[string]bool{}
		for _, cs := range pod.Status.ContainerStatuses {
			ready[cs.Name] = cs.Ready
		}
		bad := false
		for _, ct := range pod.Spec.Containers {
			if ct.ReadinessProbe == nil {
				continue
			}
			key := pod.Namespace + "/" + pod.Name + "/" + ct.Name
			before, after := since[key], now[key]
			switch {
			case !ready[ct.Name]:
				stale = append(stale, fmt.Sprintf("pod %s container %s is not Ready (%.0f probe failures since the unpause)", pod.Name, ct.Name, after.Failures-before.Failures))
				bad = true
			case after.Successes <= before.Successes:
				stale = append(stale, fmt.Sprintf("pod %s container %s: no readiness probe passed since the unpause (%.0f failed)", pod.Name, ct.Name, after.Failures-before.Failures))
				bad = true
			}
		}
		if bad {
			pods = append(pods, pod)
		}
	}
	sort.Strings(stale)
	return stale, pods, nil
}

func selected(pod *corev1.Pod, sels map[string]labels.Selector) bool {
	for _, sel := range sels {
		if sel.Matches(labels.Set(pod.Labels)) {
			return true
		}
	}
	return false
}

// ReadinessProbesWithin reads the probe counters (ReadinessProbes), trying
// again until d has passed: a kubelet just unpaused may not answer at once.
func (c *Client) ReadinessProbesWithin(ctx context.Context, d time.Duration) (map[string]ProbeCount, error) {
	deadline := time.Now().Add(d)
	for {
		m, err := c.ReadinessProbes(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return m, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
