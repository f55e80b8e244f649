package testbed

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/testbed-dev/testbed/internal/kube"
)

// runNamespace is a namespace of the run's own on a cluster others use
// too (an existing cluster, or e2e:all's one cluster): <namespace>-<random>,
// created, never taken over. The run has its own copies of the
// cluster-scoped objects other than CRDs; CRDs are applied when absent or
// testbed's, left as they are when someone else made them, and never
// deleted. Services lose their node ports (a node port is the cluster's,
// and two runs would ask for the same one): the suite reaches each port of
// the topology through a port-forward on 127.0.0.1 instead, under the same
// E2E_<PORT>_URL. At the end the namespace, the run's own copies and the
// port-forwards go (E2E_KEEP_CLUSTER=1 keeps the namespace and its copies).
type runNamespace struct {
	mu        sync.Mutex
	made      bool                       // the run created its namespace
	own       []kube.Object              // its own copies of cluster-scoped objects
	nodePorts map[int32]kube.ServicePort // node port → the Service port that had it
	forwards  []*kube.Forward
}

const (
	stepForward = "forward ports"
	stepRelease = "release namespace"
)

func newRunNamespace() *runNamespace {
	return &runNamespace{nodePorts: map[int32]kube.ServicePort{}}
}

// runNamespaceName is the name of a run namespace:
// base-<5 random letters or digits>, at most 63 characters.
func runNamespaceName(base string) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789" // no vowels: no words
	b := make([]byte, 5)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	if len(base) > 57 {
		base = base[:57]
	}
	return base + "-" + string(b)
}

// create makes the run's namespace: created, never taken over.
func (s *runNamespace) create(ctx context.Context, k *kube.Client, ns string) error {
	if err := k.CreateNamespace(ctx, ns, map[string]string{"app.kubernetes.io/managed-by": kube.FieldManager, kube.RunLabel: ns}); err != nil {
		return err
	}
	s.mu.Lock()
	s.made = true
	s.mu.Unlock()
	return nil
}

// portService is the Service that had the node port before isolate took
// it away.
func (s *runNamespace) portService(nodePort int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := s.nodePorts[int32(nodePort)].Service
	return svc, svc != ""
}

func (s *runNamespace) portVia(nodePort int) string {
	return "a port-forward to the Service that had NodePort " + strconv.Itoa(nodePort)
}

// isolate makes a component's rendered objects the run's own (see
// runNamespace).
func (s *runNamespace) isolate(r *run, objs []kube.Object) (own []kube.Object, ports map[int32]kube.ServicePort, err error) {
	k, err := r.kubeClient()
	if err != nil {
		return nil, nil, err
	}
	if err := kube.RefuseClusterWide(objs); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if err := k.SetNamespace(objs, r.ns); err != nil {
		return nil, nil, err
	}
	kube.MoveSubjects(objs, r.topo.Namespace, r.ns)
	ports, err = kube.ClusterIPOnly(objs)
	if err != nil {
		return nil, nil, err
	}
	return kube.OwnCopies(objs, r.ns), ports, nil
}

// keep records what render made of a component.
func (s *runNamespace) keep(own []kube.Object, ports map[int32]kube.ServicePort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.own = append(s.own, own...)
	for np, sp := range ports {
		s.nodePorts[np] = sp
	}
}

// forwardPorts forwards a port of 127.0.0.1 to each port of the service,
// to the Service port that had its node port: the suite's E2E_<PORT>_URL
// names it.
func (r *run) forwardPorts(ctx context.Context, w io.Writer) error {
	k, err := r.kubeClient()
	if err != nil {
		return err
	}
	local := map[int]int{}
	for _, p := range r.svc.Ports {
		r.runNS.mu.Lock()
		sp, ok := r.runNS.nodePorts[int32(p.NodePort)]
		r.runNS.mu.Unlock()
		if !ok {
			return fmt.Errorf("port %s: no Service of %s's components has nodePort %d, so there is nothing to forward to", p.Name, r.name, p.NodePort)
		}
		f, err := k.Forward(ctx, r.ns, sp.Service, sp.Port)
		if err != nil {
			return fmt.Errorf("port %s: %w", p.Name, err)
		}
		r.runNS.mu.Lock()
		r.runNS.forwards = append(r.runNS.forwards, f)
		r.runNS.mu.Unlock()
		local[p.NodePort] = f.Local
		fmt.Fprintf(w, "%s: 127.0.0.1:%d → service %s port %d (pod %s)\n", p.Name, f.Local, sp.Service, sp.Port, f.Pod)
	}
	r.mu.Lock()
	r.ports = local
	r.mu.Unlock()
	return nil
}

// stopForwards ends the run's port-forwards.
func (s *runNamespace) stopForwards(w io.Writer) {
	s.mu.Lock()
	fs := s.forwards
	s.forwards = nil
	s.mu.Unlock()
	for _, f := range fs {
		if why := f.Stop(); why != "" {
			fmt.Fprintf(w, "port-forward 127.0.0.1:%d: %s\n", f.Local, why)
		}
	}
}

// release ends the run in its namespace: its port-forwards stop; its
// namespace and its own copies of cluster-scoped objects are deleted
// (unless kept), and nothing else.
func (r *run) release(keep bool) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		s := r.runNS
		s.stopForwards(w)
		s.mu.Lock()
		made, own := s.made, slices.Clone(s.own)
		s.mu.Unlock()
		if !made {
			fmt.Fprintln(w, "no namespace was made")
			return nil
		}
		if keep {
			fmt.Fprintf(w, "kept namespace %s (E2E_KEEP_CLUSTER=1 or no suite)", r.ns)
			if len(own) > 0 {
				fmt.Fprintf(w, " and %d cluster-scoped object(s) labelled %s=%s", len(own), kube.RunLabel, r.ns)
			}
			fmt.Fprintln(w)
			return nil
		}
		k, err := r.kubeClient()
		if err != nil {
			return err
		}
		t0 := time.Now()
		n, err := k.DeleteRun(ctx, own, r.ns)
		if err = errors.Join(err, k.DeleteNamespace(ctx, r.ns)); err != nil {
			return fmt.Errorf("releasing namespace %s: %w", r.ns, err)
		}
		fmt.Fprintf(w, "deleted namespace %s and %d cluster-scoped object(s) of this run in %s; CRDs stay\n", r.ns, n, time.Since(t0).Round(100*time.Millisecond))
		return nil
	}
}
