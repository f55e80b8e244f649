package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Diagnose writes what a person needs to see why namespace ns failed, into
// dir: pods (wide), events by time, each pod's full object, and every
// container's current and previous log. It runs every collector and
// returns every error it met.
func (c *Client) Diagnose(ctx context.Context, ns, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	pods, err := c.Core.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing pods in %s: %w", ns, err)
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPHASE\tREADY\tRESTARTS\tNODE\tIP\tAGE\tWAITING")
	for _, p := range pods.Items {
		ready, restarts, waiting := 0, int32(0), []string{}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
			restarts += cs.RestartCount
			if cs.State.Waiting != nil {
				waiting = append(waiting, cs.Name+"="+cs.State.Waiting.Reason)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%s\t%s\t%s\t%s\n", p.Name, p.Status.Phase, ready, len(p.Spec.Containers), restarts,
			p.Spec.NodeName, p.Status.PodIP, time.Since(p.CreationTimestamp.Time).Round(time.Second), strings.Join(waiting, ","))
	}
	tw.Flush()
	errs = append(errs, os.WriteFile(filepath.Join(dir, "pods.txt"), []byte(b.String()), 0o644))

	evs, err := c.Core.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing events: %w", err))
	} else {
		sort.Slice(evs.Items, func(i, j int) bool { return eventTime(evs.Items[i]).Before(eventTime(evs.Items[j])) })
		var eb strings.Builder
		for _, e := range evs.Items {
			fmt.Fprintf(&eb, "%s %-7s %-22s %s/%s: %s\n", eventTime(e).Format(time.RFC3339), e.Type, e.Reason,
				e.InvolvedObject.Kind, e.InvolvedObject.Name, strings.TrimSpace(e.Message))
		}
		errs = append(errs, os.WriteFile(filepath.Join(dir, "events.txt"), []byte(eb.String()), 0o644))
	}

	for _, p := range pods.Items {
		p.ManagedFields = nil
		if y, err := yaml.Marshal(p); err == nil {
			errs = append(errs, os.WriteFile(filepath.Join(dir, "pod-"+p.Name+".yaml"), y, 0o644))
		}
		for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			errs = append(errs, c.saveLog(ctx, &p, cs, false, dir))
			if cs.RestartCount > 0 {
				errs = append(errs, c.saveLog(ctx, &p, cs, true, dir))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *Client) saveLog(ctx context.Context, p *corev1.Pod, cs corev1.ContainerStatus, previous bool, dir string) error {
	name := fmt.Sprintf("log-%s-%s.txt", p.Name, cs.Name)
	if previous {
		name = fmt.Sprintf("log-%s-%s.previous.txt", p.Name, cs.Name)
	}
	if !previous && cs.State.Running == nil && cs.State.Terminated == nil {
		return nil // never started: no log to fetch
	}
	raw, err := c.Core.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: cs.Name, Previous: previous}).Do(ctx).Raw()
	if err != nil {
		// A log the node no longer has is a fact to record, not a failure
		// of the diagnosis.
		raw = []byte(fmt.Sprintf("log unavailable: %v\n", err))
	}
	return os.WriteFile(filepath.Join(dir, name), raw, 0o644)
}
