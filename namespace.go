package testbed

import (
	"context"
	"fmt"

	"github.com/testbed-dev/testbed/internal/kube"
)

// namespacePart is which namespace a run owns, set by the cluster's
// source (source.go):
//   - ownNamespace: the topology's namespace on the run's own kind
//     cluster, taken as it is; services keep their node ports.
//   - *runNamespace (namespace_run.go): a namespace of its own on a cluster
//     others use (an existing one, or e2e:all's one cluster): created,
//     never taken over; its own copies of cluster-scoped objects; node
//     ports given up for port-forwards; released at the end.
//
// The deploy steps ask it; they know no mode.
type namespacePart interface {
	// create makes the namespace ns the run's.
	create(ctx context.Context, k *kube.Client, ns string) error
	// isolate makes a component's rendered objects the run's own; keep
	// records what isolate made of it, once per component.
	isolate(r *run, objs []kube.Object) (own []kube.Object, ports map[int32]kube.ServicePort, err error)
	keep(own []kube.Object, ports map[int32]kube.ServicePort)
	// portService is the Service behind a node port of the topology: ""
	// for any Service that has it; known is false when none took it.
	portService(nodePort int) (service string, known bool)
	// portVia says how the host reaches a node port, for errors.
	portVia(nodePort int) string
}

// ownNamespace is the topology's namespace on the run's own cluster.
type ownNamespace struct{}

func (ownNamespace) create(ctx context.Context, k *kube.Client, ns string) error {
	return k.EnsureNamespace(ctx, ns)
}

func (ownNamespace) isolate(*run, []kube.Object) ([]kube.Object, map[int32]kube.ServicePort, error) {
	return nil, nil, nil
}

func (ownNamespace) keep([]kube.Object, map[int32]kube.ServicePort) {}

func (ownNamespace) portService(int) (string, bool) { return "", true }

func (ownNamespace) portVia(nodePort int) string { return fmt.Sprintf("NodePort %d", nodePort) }
