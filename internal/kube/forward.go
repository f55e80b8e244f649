package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/klog/v2"
)

// Forward is a port-forward from 127.0.0.1 to a Service's port, through
// one Ready pod behind it at a time.
type Forward struct {
	Local int    // the port on 127.0.0.1
	Pod   string // the pod it first forwarded to

	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	switches int    // how many times another pod took over
	lost     error  // why the last pod's connection ended
	failed   int    // connections that failed to reach the pod
	failure  string // the last of them
}

// Stop ends the forward, waits until its listener is closed, and says
// whether another pod had to take over meanwhile ("" when not).
func (f *Forward) Stop() string {
	f.cancel()
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	var says []string
	if f.failed > 0 {
		says = append(says, fmt.Sprintf("%d connection(s) failed to reach the pod, the last: %s", f.failed, f.failure))
	}
	if f.switches > 0 {
		says = append(says, fmt.Sprintf("another pod took over %d time(s); the last connection ended with: %v", f.switches, f.lost))
	}
	return strings.Join(says, "; ")
}

// record keeps what client-go's forwarder reports of a connection that
// failed (it would print it on stderr, into the suite's output).
func (f *Forward) record(prefix, args string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed++
	f.failure = args
}

// Forward forwards a free port of 127.0.0.1 to port (the Service's port
// number) of the Service ns/service, as kubectl port-forward svc/... does:
// to the target port of a Ready pod the Service selects. When that pod's
// connection is lost (the pod went), a Ready pod takes over on the same
// local port, until Stop.
func (c *Client) Forward(ctx context.Context, ns, service string, port int32) (*Forward, error) {
	f := &Forward{done: make(chan struct{})}
	fctx, cancel := context.WithCancel(klog.NewContext(context.WithoutCancel(ctx), funcr.New(f.record, funcr.Options{})))
	f.cancel = cancel
	// start forwards local (0: a free port) to a Ready pod.
	start := func(ctx context.Context, local int) (string, int, chan error, error) {
		return c.forwardTo(ctx, fctx, ns, service, port, local)
	}
	pod, local, errc, err := start(ctx, 0)
	if err != nil {
		cancel()
		return nil, err
	}
	f.Pod, f.Local = pod, local
	go func() {
		defer close(f.done)
		for {
			select {
			case <-fctx.Done():
				<-errc
				return
			case err := <-errc:
				if fctx.Err() != nil {
					return
				}
				f.mu.Lock()
				f.switches, f.lost = f.switches+1, err
				f.mu.Unlock()
			}
			// Another Ready pod, on the same local port.
			for {
				select {
				case <-fctx.Done():
					return
				case <-time.After(500 * time.Millisecond):
				}
				var serr error
				if _, _, errc, serr = start(fctx, local); serr == nil {
					break
				}
			}
		}
	}()
	return f, nil
}

// forwardTo forwards local (0: a free port) to a Ready pod behind the
// Service until fctx ends; errc gets the forward's end. ctx bounds the
// start only.
func (c *Client) forwardTo(ctx, fctx context.Context, ns, service string, port int32, local int) (pod string, got int, errc chan error, err error) {
	pod, target, err := c.podFor(ctx, ns, service, port)
	if err != nil {
		return "", 0, nil, err
	}
	transport, upgrader, err := spdy.RoundTripperFor(c.cfg)
	if err != nil {
		return "", 0, nil, err
	}
	url := c.Core.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	pctx, pcancel := context.WithCancel(fctx)
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddressesWithContext(pctx, dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("%d:%d", local, target)}, ready, nil, io.Discard)
	if err != nil {
		pcancel()
		return "", 0, nil, err
	}
	errc = make(chan error, 1)
	go func() {
		defer pcancel()
		errc <- pf.ForwardPorts()
	}()
	fail := func(err error) (string, int, chan error, error) {
		pcancel()
		<-errc
		return "", 0, nil, fmt.Errorf("port-forward to pod %s/%s port %d: %w", ns, pod, target, err)
	}
	select {
	case <-ready:
	case err := <-errc:
		return "", 0, nil, fmt.Errorf("port-forward to pod %s/%s port %d: %w", ns, pod, target, err)
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		return fail(fmt.Errorf("no local port: %v", err))
	}
	return pod, int(ports[0].Local), errc, nil
}

// podFor finds a Ready pod behind the Service and the pod's port its
// Service port targets.
func (c *Client) podFor(ctx context.Context, ns, service string, port int32) (string, int, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	svc, err := c.Core.CoreV1().Services(ns).Get(rctx, service, metav1.GetOptions{})
	if err != nil {
		return "", 0, err
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return "", 0, fmt.Errorf("service %s/%s has no port %d", ns, service, port)
	}
	if len(svc.Spec.Selector) == 0 {
		return "", 0, fmt.Errorf("service %s/%s selects no pods: there is nothing to forward to", ns, service)
	}
	pods, err := c.Core.CoreV1().Pods(ns).List(rctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return "", 0, err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || !podReady(&p) {
			continue
		}
		target, err := targetPort(&p, sp)
		if err != nil {
			return "", 0, err
		}
		return p.Name, target, nil
	}
	return "", 0, errors.New("service " + ns + "/" + service + " has no Ready pod")
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// targetPort is the container port a Service port sends to in pod p.
func targetPort(p *corev1.Pod, sp *corev1.ServicePort) (int, error) {
	switch {
	case sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal != 0:
		return int(sp.TargetPort.IntVal), nil
	case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == sp.TargetPort.StrVal {
					return int(cp.ContainerPort), nil
				}
			}
		}
		return 0, fmt.Errorf("pod %s has no container port named %s", p.Name, sp.TargetPort.StrVal)
	}
	return int(sp.Port), nil
}
