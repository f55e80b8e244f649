package kube

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// fatalReasons end a wait at once: the pod cannot start without a change.
var fatalReasons = []string{"ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"}

// WaitOptions configure a readiness wait.
type WaitOptions struct {
	// Timeout bounds the whole wait.
	Timeout time.Duration
	// FailOnCrashLoop ends the wait when a container crash-loops. Set it
	// when everything the objects need was Ready before they were applied:
	// a crash then is a real failure, not a dependency still starting.
	FailOnCrashLoop bool
}

// NotReadyError is a readiness failure: the object, why, and what the
// cluster said about it.
type NotReadyError struct {
	Object  string
	Reason  string
	Details string // events, log tail, or the status of every object still waiting
}

func (e *NotReadyError) Error() string {
	s := fmt.Sprintf("%s: %s", e.Object, e.Reason)
	if e.Details != "" {
		s += "\n" + e.Details
	}
	return s
}

// Wait watches the objects until kstatus calls each Current. It fails fast
// on a Failed status, on a pod of theirs that cannot start, or at the
// timeout, listing what is still not ready.
func (c *Client) Wait(ctx context.Context, objs []Object, o WaitOptions, w io.Writer) error {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	var mu sync.Mutex
	last := map[string]string{} // object → its latest status message
	ready := map[string]bool{}

	type failure struct{ err error }
	fail := make(chan failure, len(objs)+1)
	var wg sync.WaitGroup
	wctx, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()

	// Pods of the workloads: fail fast on what kstatus would wait out.
	if sel, ns := podSelectors(objs); len(sel) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.watchPods(wctx, ns, sel, o.FailOnCrashLoop); err != nil && wctx.Err() == nil {
				fail <- failure{err}
			}
		}()
	}
	remaining := len(objs)
	done := make(chan string, len(objs))
	for _, obj := range objs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.watchObject(wctx, obj, func(res *status.Result) {
				mu.Lock()
				last[obj.String()] = fmt.Sprintf("%s: %s", res.Status, res.Message)
				mu.Unlock()
			})
			if err != nil {
				if wctx.Err() == nil {
					fail <- failure{err}
				}
				return
			}
			done <- obj.String()
		}()
	}
	t0 := time.Now()
	for remaining > 0 {
		select {
		case name := <-done:
			remaining--
			mu.Lock()
			ready[name] = true
			mu.Unlock()
			fmt.Fprintf(w, "%s ready after %s\n", name, time.Since(t0).Round(100*time.Millisecond))
		case f := <-fail:
			return f.err
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			var lines []string
			for _, obj := range objs {
				if !ready[obj.String()] {
					st := last[obj.String()]
					if st == "" {
						st = "not seen yet"
					}
					lines = append(lines, fmt.Sprintf("  %s: %s", obj, st))
				}
			}
			return &NotReadyError{
				Object:  fmt.Sprintf("%d of %d objects", len(lines), len(objs)),
				Reason:  fmt.Sprintf("not ready after %s (%v)", o.Timeout, context.Cause(ctx)),
				Details: "still waiting for:\n" + strings.Join(lines, "\n") + "\nthe diagnostics (pods, events, logs) say why; if it is only slow, raise E2E_TIMEOUT",
			}
		}
	}
	return nil
}

// watchObject follows one object until it is Current; a Job until it is
// Complete or as many of its pods have succeeded as it needs.
func (c *Client) watchObject(ctx context.Context, obj Object, seen func(*status.Result)) error {
	if obj.GetKind() != "Job" {
		return c.watchStatus(ctx, obj, seen)
	}
	ctx, cancel := context.WithCancel(ctx)
	first := make(chan error, 2)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for _, f := range []func() error{
		func() error { return c.watchStatus(ctx, obj, seen) },
		func() error { return c.jobPodsSucceeded(ctx, obj.GetNamespace(), obj.GetName()) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); first <- f() }()
	}
	return <-first
}

// jobPodsSucceeded returns once as many pods of the Job (its present one,
// by UID) have succeeded as it needs completions, distinct indexes for an
// Indexed Job: its work is done. The Job's own Complete comes 1–2 s
// later, since the job controller batches pod updates for a second and
// writes SuccessCriteriaMet, then Complete (kind, Kubernetes 1.34, here: a
// pod that exits at once succeeded 0.8 s after the apply and its Job was
// Complete at 2.9 s, 3 runs; the migrations' pod at 2.2 s, Complete at
// 3.2 s, 2 runs). A Job with a success policy is left to its condition.
func (c *Client) jobPodsSucceeded(ctx context.Context, ns, name string) error {
	job, err := c.Core.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil || job.Spec.SuccessPolicy != nil {
		<-ctx.Done() // the status watch decides
		return ctx.Err()
	}
	need := 1
	if job.Spec.Completions != nil {
		need = int(*job.Spec.Completions)
	}
	indexed := job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
	sel := labels.SelectorFromSet(labels.Set{batchv1.ControllerUidLabel: string(job.UID)}).String()
	pods := c.Core.CoreV1().Pods(ns)
	lw := listWatch(pods.List, pods.Watch, func(o *metav1.ListOptions) { o.LabelSelector = sel })
	succeeded := map[string]bool{} // pod name, or completion index
	_, err = watchtools.UntilWithSync(untilCancelQuiet(ctx), cache.ToListWatcherWithWatchListSemantics(lw, c.Core), &corev1.Pod{}, nil, func(ev watch.Event) (bool, error) {
		pod, ok := ev.Object.(*corev1.Pod)
		if !ok || pod.Status.Phase != corev1.PodSucceeded || pod.Labels[batchv1.ControllerUidLabel] != string(job.UID) {
			return false, nil
		}
		key := pod.Name
		if indexed {
			key = pod.Annotations[batchv1.JobCompletionIndexAnnotation]
		}
		succeeded[key] = true
		return len(succeeded) >= need, nil
	})
	return err
}

// listWatch lists and watches through list and watchFn, each call's
// options narrowed by narrow (a selector).
func listWatch[T runtime.Object](list func(context.Context, metav1.ListOptions) (T, error), watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error), narrow func(*metav1.ListOptions)) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			narrow(&o)
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			narrow(&o)
			return watchFn(ctx, o)
		},
	}
}

// watchStatus follows one object until kstatus calls it Current (a Job:
// Complete).
func (c *Client) watchStatus(ctx context.Context, obj Object, seen func(*status.Result)) error {
	ri, err := c.resourceFor(obj.Unstructured)
	if err != nil {
		return err
	}
	sel := fields.OneTermEqualSelector("metadata.name", obj.GetName()).String()
	lw := listWatch(ri.List, ri.Watch, func(o *metav1.ListOptions) { o.FieldSelector = sel })
	_, err = watchtools.UntilWithSync(untilCancelQuiet(ctx), lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok || ev.Type == watch.Deleted {
			return false, nil
		}
		res, err := status.Compute(u)
		if err != nil {
			return false, nil
		}
		if u.GetKind() == "Job" && res.Status == status.CurrentStatus && !jobComplete(u) {
			// kstatus calls a running Job Current; a component waits for
			// its Job to complete (migrations).
			res = &status.Result{Status: status.InProgressStatus, Message: res.Message}
		}
		seen(res)
		switch res.Status {
		case status.CurrentStatus:
			return true, nil
		case status.FailedStatus:
			return false, &NotReadyError{Object: obj.String(), Reason: res.Message}
		}
		return false, nil
	})
	return err
}

// podSelectors maps each workload to the selector of its pods, and returns
// the workloads' namespace (a component's workloads share one).
func podSelectors(objs []Object) (map[string]labels.Selector, string) {
	out := map[string]labels.Selector{}
	ns := ""
	for _, o := range objs {
		if _, ok := podSpecPaths[o.GetKind()]; ok {
			ns = o.GetNamespace()
		}
		switch o.GetKind() {
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet":
			ml, _, _ := unstructured.NestedStringMap(o.Object, "spec", "selector", "matchLabels")
			if len(ml) > 0 {
				out[o.String()] = labels.SelectorFromSet(ml)
			}
		case "Job":
			out[o.String()] = labels.SelectorFromSet(labels.Set{"batch.kubernetes.io/job-name": o.GetName()})
		}
	}
	return out, ns
}

// watchPods returns an error as soon as a pod of the selectors cannot start.
func (c *Client) watchPods(ctx context.Context, ns string, sels map[string]labels.Selector, failOnCrash bool) error {
	pods := c.Core.CoreV1().Pods(ns)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return pods.Watch(ctx, o)
		},
	}
	// A fake clientset (the tests') cannot stream the initial list.
	_, err := watchtools.UntilWithSync(untilCancelQuiet(ctx), cache.ToListWatcherWithWatchListSemantics(lw, c.Core), &corev1.Pod{}, nil, func(ev watch.Event) (bool, error) {
		pod, ok := ev.Object.(*corev1.Pod)
		if !ok || ev.Type == watch.Deleted || pod.DeletionTimestamp != nil {
			return false, nil
		}
		owner := ""
		for name, sel := range sels {
			if sel.Matches(labels.Set(pod.Labels)) {
				owner = name
			}
		}
		if owner == "" {
			return false, nil
		}
		if reason, container, msg := podProblem(pod, failOnCrash); reason != "" {
			if reason == "Unschedulable" && c.NodeSettling(ctx) != "" {
				return false, nil // the scheduler tries again when the node recovers
			}
			return false, &NotReadyError{
				Object:  fmt.Sprintf("%s (pod %s, container %s)", owner, pod.Name, container),
				Reason:  fmt.Sprintf("%s: %s", reason, msg),
				Details: joinLines(c.podDetails(context.WithoutCancel(ctx), pod, container), remedy(reason)),
			}
		}
		return false, nil
	})
	return err
}

// NodeSettling names a node that is not Ready or carries the not-ready or
// unreachable taint, "" when none does (or the nodes cannot be read): the
// reason a wait for the cluster's own pods may have run out. The
// scheduler turns pods away from such a node until it recovers: seen on a
// fresh cluster before its node's first Ready, and on a warm cluster just
// unpaused, whose kubelet reported "container runtime is down" once, then
// Ready. A pod Unschedulable then is no reason to fail.
func (c *Client) NodeSettling(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nodes, err := c.Core.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	for _, n := range nodes.Items {
		for _, t := range n.Spec.Taints {
			if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
				return fmt.Sprintf("node %s has the taint %s", n.Name, t.Key)
			}
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status != corev1.ConditionTrue {
				return fmt.Sprintf("node %s is not Ready: %s", n.Name, cond.Message)
			}
		}
	}
	return ""
}

// podProblem returns the reason a pod cannot become ready without a change.
// remedy says what to do about a pod that cannot start, by its reason.
func remedy(reason string) string {
	switch reason {
	case "ErrImageNeverPull":
		return "what to do: the image is not on the node and nothing is pulled here; list it under the component's images in the topology (testbed builds or side-loads those and puts their references in the manifests), or set the variable a third-party image's topology entry names (env:) to an image present on the host"
	case "ErrImagePull", "ImagePullBackOff", "InvalidImageName":
		return "what to do: the node could not pull the image named above (the pull error says why: a wrong registry, name or tag, or no access); list it under the component's images in the topology so that testbed builds or side-loads it, or with IMAGE_REGISTRY push it first (build:push) with the same IMAGE_TAG"
	case "CrashLoopBackOff":
		return "what to do: the container keeps exiting; its log tail is above, and the previous container's full log is under E2E_ARTIFACTS/<service>/diagnostics"
	case "CreateContainerConfigError", "CreateContainerError":
		return "what to do: the container could not be made; a Secret, ConfigMap or volume it names is usually missing (see the events above)"
	case "Unschedulable":
		return "what to do: no node can take the pod; its requests, node selector or tolerations ask for what the single kind node lacks"
	}
	return ""
}

func joinLines(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n" + b
}

func podProblem(pod *corev1.Pod, failOnCrash bool) (reason, container, message string) {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Reason == corev1.PodReasonUnschedulable {
			return "Unschedulable", "-", cond.Message
		}
	}
	statuses := append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if wt := cs.State.Waiting; wt != nil {
			if slices.Contains(fatalReasons, wt.Reason) || (failOnCrash && wt.Reason == "CrashLoopBackOff") {
				msg := wt.Message
				if t := cs.LastTerminationState.Terminated; t != nil {
					msg = fmt.Sprintf("%s (last exit code %d, %s)", msg, t.ExitCode, t.Reason)
				}
				return wt.Reason, cs.Name, strings.TrimSpace(msg)
			}
		}
	}
	return "", "", ""
}

// podDetails gathers the pod's recent events and its container's log tail.
func (c *Client) podDetails(ctx context.Context, pod *corev1.Pod, container string) string {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var b strings.Builder
	evs, err := c.Core.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", pod.Name).String(),
	})
	if err == nil && len(evs.Items) > 0 {
		sort.Slice(evs.Items, func(i, j int) bool { return eventTime(evs.Items[i]).Before(eventTime(evs.Items[j])) })
		items := evs.Items[max(0, len(evs.Items)-8):]
		b.WriteString("recent events:\n")
		for _, e := range items {
			fmt.Fprintf(&b, "  %s %s %s: %s\n", eventTime(e).Format(time.TimeOnly), e.Type, e.Reason, strings.TrimSpace(e.Message))
		}
	}
	if container != "" && container != "-" {
		if tail := c.logTail(ctx, pod, container, 20); tail != "" {
			fmt.Fprintf(&b, "log tail of %s:\n%s", container, tail)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// logTail returns the last lines of a container's log: the previous
// instance's when it has restarted (that is the one that crashed).
func (c *Client) logTail(ctx context.Context, pod *corev1.Pod, container string, lines int64) string {
	previous := false
	for _, cs := range append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...) {
		if cs.Name == container && cs.RestartCount > 0 {
			previous = true
		}
	}
	raw, err := c.Core.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: container, TailLines: &lines, Previous: previous}).Do(ctx).Raw()
	if err != nil {
		return ""
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		out = append(out, "  "+l)
	}
	return strings.Join(out, "\n")
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// jobComplete reports whether a Job has the condition Complete=True.
func jobComplete(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Complete" && m["status"] == "True" {
			return true
		}
	}
	return false
}
