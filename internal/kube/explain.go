package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// WhyNotServing says why a Service's port does not answer: which of the
// pods it selects are not Ready, with their Ready condition, recent events
// (a readiness probe's failures) and log tail. The Service is the one in ns
// named service, or, with service "", the one that has nodePort. It returns
// "" when it finds nothing to blame (every selected pod is Ready).
func (c *Client) WhyNotServing(ctx context.Context, ns, service string, nodePort int32) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	svcs, err := c.Core.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("listing the Services of %s: %v", ns, err)
	}
	var svc *corev1.Service
	for i, s := range svcs.Items {
		if s.Name == service && service != "" {
			svc = &svcs.Items[i]
		}
		for _, p := range s.Spec.Ports {
			if service == "" && p.NodePort == nodePort {
				svc = &svcs.Items[i]
			}
		}
	}
	if svc == nil {
		if service != "" {
			return fmt.Sprintf("no Service %s in namespace %s", service, ns)
		}
		return fmt.Sprintf("no Service in namespace %s has nodePort %d", ns, nodePort)
	}
	if len(svc.Spec.Selector) == 0 {
		return ""
	}
	pods, err := c.Core.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return fmt.Sprintf("Service %s: listing its pods: %v", svc.Name, err)
	}
	if len(pods.Items) == 0 {
		return fmt.Sprintf("Service %s selects no pod (selector %s)", svc.Name, labels.SelectorFromSet(svc.Spec.Selector))
	}
	var b strings.Builder
	for i := range pods.Items {
		pod := &pods.Items[i]
		why, container := notReady(pod)
		if why == "" {
			continue
		}
		fmt.Fprintf(&b, "Service %s: pod %s is not Ready: %s\n", svc.Name, pod.Name, why)
		if d := c.podDetails(ctx, pod, container); d != "" {
			b.WriteString(d + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// notReady returns why a pod is not Ready ("" when it is) and the first
// container that is not.
func notReady(pod *corev1.Pod) (why, container string) {
	if pod.DeletionTimestamp != nil {
		return "", ""
	}
	why = "phase " + string(pod.Status.Phase)
	for _, cond := range pod.Status.Conditions {
		if cond.Type != corev1.PodReady {
			continue
		}
		if cond.Status == corev1.ConditionTrue {
			return "", ""
		}
		why = strings.TrimSpace(fmt.Sprintf("%s %s (since %s)", cond.Reason, cond.Message, cond.LastTransitionTime.Format(time.TimeOnly)))
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if !cs.Ready {
			return why, cs.Name
		}
	}
	return why, ""
}
