package testbed

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/topology"
)

// The steps that deploy the environment: the run's namespace, the host
// ports, rendering and applying each component, waiting until it is Ready.

func (r *run) prepareNamespace(ctx context.Context, w io.Writer) error {
	k, err := r.kubeClient()
	if err != nil {
		return err
	}
	if err := r.namespace.create(ctx, k, r.ns); err != nil {
		return fmt.Errorf("namespace %s: %w", r.ns, err)
	}
	fmt.Fprintf(w, "namespace %s\n", r.ns)
	for _, name := range slices.Sorted(maps.Keys(r.topo.Secrets)) {
		keys := r.topo.Secrets[name].Generate
		created, err := k.EnsureSecret(ctx, r.ns, name, keys)
		if err != nil {
			return fmt.Errorf("secret %s: %w", name, err)
		}
		fmt.Fprintf(w, "secret %s %s\n", name, map[bool]string{true: "created with random " + strings.Join(keys, ", "), false: "kept"}[created])
	}
	return nil
}

// reachPorts waits until every mapped port answers HTTP from the host: a
// Service can be Ready before kube-proxy has programmed its NodePort, and
// the suite comes in through the NodePort (seen: connection reset by peer
// on a cluster a few seconds old).
func (r *run) reachPorts(ctx context.Context, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	t0 := time.Now()
	for _, p := range r.svc.Ports {
		hp := r.hostPort(p)
		url := fmt.Sprintf("http://127.0.0.1:%d%s", hp, p.ProbePath())
		var last error
		told := false
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				fmt.Fprintf(w, "127.0.0.1:%d (%s) answered %d after %s\n", hp, p.Name, resp.StatusCode, time.Since(t0).Round(100*time.Millisecond))
				break
			}
			last = err
			// A port that does not answer for a while is usually a
			// Service without a ready pod: say which, and why, once while
			// waiting and again in the error.
			if !told && time.Since(t0) > 15*time.Second {
				told = true
				if why := r.whyNotServing(ctx, p); why != "" {
					fmt.Fprintf(w, "127.0.0.1:%d (%s) does not answer yet (%v):\n%s\n", hp, p.Name, err, why)
				}
			}
			select {
			case <-ctx.Done():
				err := fmt.Errorf("127.0.0.1:%d (%s, %s) does not answer: %v", hp, p.Name, r.namespace.portVia(p.NodePort), last)
				if why := r.whyNotServing(context.WithoutCancel(ctx), p); why != "" {
					err = fmt.Errorf("%w\n%s", err, why)
				}
				return err
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// whyNotServing names the pods that keep a port's Service from answering
// ("" when it finds none).
func (r *run) whyNotServing(ctx context.Context, p topology.Port) string {
	k, err := r.kubeClient()
	if err != nil {
		return ""
	}
	service, known := r.namespace.portService(p.NodePort)
	if !known {
		return ""
	}
	return k.WhyNotServing(ctx, r.ns, service, int32(p.NodePort))
}

// manifests is a component's rendered objects, namespaced for the cluster:
// its apply and its readiness wait use the same objects.
func (r *run) manifests(name string, c *topology.Component) ([]kube.Object, error) {
	objs, err := r.render(name, c)
	if err != nil {
		return nil, err
	}
	k, err := r.kubeClient()
	if err != nil {
		return nil, err
	}
	// Idempotent: it only sets or clears each object's namespace.
	if err := k.SetNamespace(objs, r.ns); err != nil {
		return nil, err
	}
	return objs, nil
}

// render renders a component's kustomize base with the run's image
// references, once per run. The cache is keyed by component, not by base:
// two components may share a base and differ in their images.
func (r *run) render(name string, c *topology.Component) ([]kube.Object, error) {
	r.mu.Lock()
	objs, ok := r.objs[name]
	r.mu.Unlock()
	if ok {
		return objs, nil
	}
	refs := map[string]string{}
	for _, img := range c.Images {
		ref, _ := r.image(img)
		if ref == "" {
			return nil, fmt.Errorf("image %s has no reference: it was not built in this run", img)
		}
		refs[img] = ref
	}
	objs, err := kube.Render(r.topo.Path(c.Manifests), r.ns, refs)
	if err != nil {
		return nil, err
	}
	own, ports, err := r.namespace.isolate(r, objs)
	if err != nil {
		return nil, err
	}
	if r.cfg.Coverage {
		kube.AddCoverDir(objs, r.builtRefs(c), cluster.CoverDir, coverMount)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cached, ok := r.objs[name]; ok { // rendered meanwhile by another step
		return cached, nil
	}
	r.objs[name] = objs
	r.namespace.keep(own, ports)
	return objs, nil
}

// componentStep is the body of a step on a component's objects, with the
// objects rendered and the cluster's client opened.
func (r *run) componentStep(name string, c *topology.Component, body func(ctx context.Context, k *kube.Client, objs []kube.Object, w io.Writer) error) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		objs, err := r.manifests(name, c)
		if err != nil {
			return err
		}
		k, err := r.kubeClient()
		if err != nil {
			return err
		}
		return body(ctx, k, objs, w)
	}
}

func (r *run) apply(name string, c *topology.Component) func(context.Context, io.Writer) error {
	return r.componentStep(name, c, func(ctx context.Context, k *kube.Client, objs []kube.Object, w io.Writer) error {
		return k.Apply(ctx, r.ns, objs, w)
	})
}

func (r *run) ready(name string, c *topology.Component) func(context.Context, io.Writer) error {
	return r.componentStep(name, c, func(ctx context.Context, k *kube.Client, objs []kube.Object, w io.Writer) error {
		// In phased mode a component may start before what it needs: a
		// crash loop there is the design's cost, not a failure.
		strict := r.cfg.Mode != engine.Phased
		t0 := time.Now()
		if err := k.Wait(ctx, objs, kube.WaitOptions{Timeout: r.cfg.Timeout, FailOnCrashLoop: strict}, w); err != nil {
			return err
		}
		r.mu.Lock()
		pc := r.probes
		r.mu.Unlock()
		if pc == nil {
			return nil
		}
		// A claimed warm cluster: kstatus read the status from before the
		// pause; the pods must pass their readiness probes again.
		select {
		case <-pc.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if pc.err != nil {
			return pc.err
		}
		return k.WaitFreshReadiness(ctx, objs, pc.since, max(r.cfg.Timeout-time.Since(t0), 10*time.Second), w)
	})
}
