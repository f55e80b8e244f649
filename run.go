package testbed

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/docker/docker/client"

	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/images"
	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/topology"
)

// The state of one run of a plan: the service, its cluster, its clients, the
// images it built; the steps of the other files are its methods.

// run is the state the steps of one plan share.
type run struct {
	tb       *Testbed
	env      runEnv
	cfg      Options
	once     *processOnce
	topo     *topology.Topology
	name     string
	svc      *topology.Service
	scope    cluster.Scope
	cluster  *cluster.Cluster // nil on a shared cluster
	ns       string           // the namespace the components run in
	existing *existingCluster // set on a cluster testbed did not make
	runNS    *runNamespace    // set on a cluster others use too (existing, one)
	one      *oneCluster      // set on the cluster e2e:all shares between services

	// made is set once this run started kind for its cluster: only then
	// does the run delete the cluster at its end.
	made atomic.Bool
	// holds is set once the run's cluster step gave it a cluster (made,
	// reused, claimed, connected): before that there is nothing of this
	// run's to diagnose.
	holds atomic.Bool

	docker lazy[*client.Client]
	held   lazy[map[string]string] // image ref → ID the cluster's nodes held at the first load

	mu   sync.Mutex
	kube *kube.Client
	refs map[string]string        // image name → reference
	ids  map[string]string        // image name → image ID
	objs map[string][]kube.Object // component name → rendered manifests
	node string                   // the node image clusters are made from (baked or E2E_NODE_IMAGE)
	// unbaked is set when findBaked found no bake of the run's images:
	// the cluster is made from the base, and a pass bakes for the next run.
	unbaked bool
	ports   map[int]int // node port → host port, when the engine chose them (warm clusters)
	// probes is the kubelets' readiness probe counts right after a
	// claimed warm cluster was unpaused (nil otherwise).
	probes *probeCount
	// compiling counts the run's build steps that may still compile:
	// a claimed warm cluster is unpaused only when it is zero, since an
	// awake cluster takes the cores a compile needs.
	compiling countdown

	// source is where the run's cluster comes from (source.go), and
	// namespace which namespace the run owns there (namespace.go).
	source    clusterSource
	namespace namespacePart
	// claimed is set once the claim step gave the run a warm cluster:
	// the create step then has nothing to make.
	claimed atomic.Bool
	// suites is where the suite is compiled (env.suites, or the run's own,
	// ownSuites, removed at its end); suiteBin is what compile suite made.
	suites    *suiteCache
	ownSuites bool
	suiteBin  compiledSuite
}

// hostPort is where the host reaches a node port of the run's cluster.
func (r *run) hostPort(p topology.Port) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if hp, ok := r.ports[p.NodePort]; ok {
		return hp
	}
	return p.HostPort
}

// dockerClient returns the run's Docker client, made on first use. The
// client is made and pinged (up to 10 s) outside the run's mutex, which
// every step takes: two steps that need it at once may both make one, and
// the second is closed.
func (r *run) dockerClient(ctx context.Context) (*client.Client, error) {
	return r.docker.get(func() (*client.Client, error) { return images.NewDocker(ctx) }, func(d *client.Client) { d.Close() })
}

func (r *run) kubeClient() (*kube.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kube == nil {
		k, err := kube.NewClient(r.kubeconfig())
		if err != nil {
			return nil, err
		}
		// On a cluster others use too, what others made is left.
		k.LeaveOthers = r.runNS != nil
		k.Manager = kube.ManagerFor(r.topo.Name)
		r.kube = k
	}
	return r.kube, nil
}

// kubeconfig is the file of the run's cluster: the kind cluster's own, or
// the one context of an existing cluster.
func (r *run) kubeconfig() string {
	if r.existing != nil {
		return r.existing.kubeconfig
	}
	return r.cluster.Kubeconfig
}

func (r *run) setImage(name, ref, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refs[name], r.ids[name] = ref, id
}

func (r *run) image(name string) (ref, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refs[name], r.ids[name]
}

func (r *run) close() {
	r.mu.Lock()
	pc := r.probes
	r.mu.Unlock()
	if pc != nil {
		pc.stop()
		<-pc.done
	}
	if d, ok := r.docker.peek(); ok {
		d.Close()
	}
	r.mu.Lock()
	own := r.ownSuites
	r.mu.Unlock()
	if own {
		r.suites.remove()
	}
	if r.runNS != nil {
		r.runNS.stopForwards(io.Discard)
	}
	if r.existing != nil {
		r.existing.close()
	}
}
