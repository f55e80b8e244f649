package testbed

import (
	"io"

	"github.com/testbed-dev/testbed/engine"
)

// warmingSource makes a warm cluster (cluster:warm): a kind cluster under
// a new warm name, with host ports the engine chooses, brought up like a
// run's own and, once every component is Ready, paused for a later run to
// claim. One that failed on the way is deleted: it would serve nobody.
type warmingSource struct{ sourceDefaults }

func (*warmingSource) prepare(r *run) error {
	// The warm name is chosen when the cluster is made; until then the
	// run names the service's cluster (for messages only).
	c, err := r.scope.Open(r.scope.NameFor(r.name), io.Discard)
	r.cluster, r.namespace = c, ownNamespace{}
	return err
}

func (*warmingSource) describe(r *run) string { return "a new warm cluster for " + r.name }
func (*warmingSource) ownsNodes() bool        { return true }
func (*warmingSource) sharedCluster() bool    { return false }

func (*warmingSource) addSteps(b *planner) string {
	return addBakeAndCreate(b, nil, b.r.createWarm, false)
}

// addAfterReady pauses the cluster after every step before it, not only
// the ready steps: a component that needs no Service name does not wait
// for CoreDNS, but a cluster paused while CoreDNS starts wakes with it not
// ready (and the DNS step, still waiting, times out on a frozen node).
func (*warmingSource) addAfterReady(b *planner) {
	var all []string
	for _, s := range b.p.Steps {
		all = append(all, s.Name)
	}
	b.add(engine.Step{Name: stepPauseWarm, Needs: all, Phase: engine.PhaseWait, Run: b.r.pauseWarm})
}

func (*warmingSource) addFinally(b *planner) {
	b.p.Finally = append(b.p.Finally, engine.Step{Name: stepDelete, OnFailure: true, Run: b.r.deleteIfMade})
}
