package testbed

import (
	"fmt"

	"github.com/testbed-dev/testbed/engine"
)

// existingSource: a cluster testbed did not make (E2E_EXISTING_KUBECONFIG,
// see sharedCluster). Nothing is loaded into its nodes: they pull from a
// registry. The run owns a namespace of its own on it, reaches its ports
// through port-forwards and releases the namespace at its end.
type existingSource struct{ sourceDefaults }

func (*existingSource) prepare(r *run) error {
	s, err := openShared(r.cfg)
	if err != nil {
		return err
	}
	r.shared, r.namespace, r.ns = s, s, runNamespace(r.topo.Namespace)
	return nil
}

func (*existingSource) describe(r *run) string {
	return fmt.Sprintf("existing cluster %s (context %s), namespace %s", r.shared.server, r.shared.context, r.ns)
}
func (*existingSource) ownsNodes() bool     { return false }
func (*existingSource) sharedCluster() bool { return true }

func (*existingSource) addSteps(b *planner) string {
	if clusterNeeded(b.parts) {
		b.add(engine.Step{Name: stepShared, Phase: engine.PhaseCluster, Run: b.r.holding(b.r.connectShared)})
	}
	return stepShared
}

func (*existingSource) addFinally(b *planner) { addRelease(b) }
