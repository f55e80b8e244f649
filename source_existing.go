package testbed

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/atexit"
	"github.com/testbed-dev/testbed/internal/kube"
)

// existingSource: a cluster testbed did not make (E2E_EXISTING_KUBECONFIG,
// see existingCluster). Nothing is loaded into its nodes: they pull from a
// registry. The run owns a namespace of its own on it, reaches its ports
// through port-forwards and releases the namespace at its end.
type existingSource struct{ sourceDefaults }

func (*existingSource) prepare(r *run) error {
	s, err := openExisting(r.cfg)
	if err != nil {
		return err
	}
	r.existing, r.runNS = s, newRunNamespace()
	r.namespace, r.ns = r.runNS, runNamespaceName(r.topo.Namespace)
	return nil
}

func (*existingSource) describe(r *run) string {
	return fmt.Sprintf("existing cluster %s (context %s), namespace %s", r.existing.server, r.existing.context, r.ns)
}
func (*existingSource) ownsNodes() bool     { return false }
func (*existingSource) sharedCluster() bool { return true }

func (*existingSource) addSteps(b *planner) string {
	if clusterNeeded(b.parts) {
		b.add(engine.Step{Name: stepExisting, Phase: engine.PhaseCluster, Run: b.r.holding(b.r.connectExisting)})
	}
	return stepExisting
}

func (*existingSource) addFinally(b *planner) { addRelease(b) }

// existingCluster is a cluster testbed did not make (E2E_EXISTING_KUBECONFIG):
// a team's cluster, reached through a context of the user's kubeconfig.
// testbed creates and deletes no cluster there and changes nothing it did
// not make; the run owns a namespace of its own on it (runNamespace).
// Images come from a registry (IMAGE_REGISTRY, IMAGE_TAG).
type existingCluster struct {
	source  string // the user's kubeconfig file
	context string // its context the run uses
	server  string // that context's API server
	dir     string // holds kubeconfig, removed at the end
	// kubeconfig holds only that context: the run's and the suite's.
	kubeconfig string
	unregister func() // of the exit cleanup that removes dir
}

const stepExisting = "connect existing cluster"

// openExisting writes the one-context kubeconfig a run on an existing
// cluster uses (Options.Check has refused what cannot run there).
func openExisting(o Options) (*existingCluster, error) {
	dir, err := os.MkdirTemp("", "testbed-shared-")
	if err != nil {
		return nil, err
	}
	s := &existingCluster{source: o.Existing, dir: dir, kubeconfig: filepath.Join(dir, "kubeconfig")}
	s.context, s.server, err = kube.WriteContext(o.Existing, o.Context, s.kubeconfig)
	if err != nil {
		os.RemoveAll(dir)
		return nil, &InputError{fmt.Errorf("E2E_EXISTING_KUBECONFIG: %w", err)}
	}
	// The copy holds the user's credentials: a second Ctrl-C, which exits
	// before close runs, removes it too.
	s.unregister = atexit.Register(func() { os.RemoveAll(dir) })
	return s, nil
}

// connectExisting waits for the existing cluster's API server.
func (r *run) connectExisting(ctx context.Context, w io.Writer) error {
	k, err := r.kubeClient()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := k.WaitAPI(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("context %s of %s (%s): %w", r.existing.context, r.existing.source, r.existing.server, err)
	}
	fmt.Fprintf(w, "using existing cluster: context %s of %s, API server %s (answered in %s); namespace %s\n",
		r.existing.context, r.existing.source, r.existing.server, time.Since(t0).Round(time.Millisecond), r.ns)
	return nil
}

// close removes the one-context kubeconfig (it holds the user's
// credentials).
func (s *existingCluster) close() {
	os.RemoveAll(s.dir)
	if s.unregister != nil {
		s.unregister()
	}
}
