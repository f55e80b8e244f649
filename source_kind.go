package testbed

import (
	"io"

	"github.com/testbed-dev/testbed/engine"
)

// kindSource: the service's own kind cluster, <name>-<service>. A target
// that creates makes it (after the bake of its node image), or reuses it
// with E2E_REUSE_CLUSTER; with claim, a warm cluster of the run's shape
// is claimed first and nothing is made. A target that only loads or
// deploys connects to it as it is. The run deletes what it made or
// claimed, unless E2E_KEEP_CLUSTER.
type kindSource struct {
	sourceDefaults
	claim bool
}

func (*kindSource) prepare(r *run) error {
	c, err := r.scope.Open(r.scope.NameFor(r.name), io.Discard)
	r.cluster, r.namespace = c, ownNamespace{}
	return err
}

func (*kindSource) describe(r *run) string { return "cluster " + r.cluster.Name }
func (*kindSource) ownsNodes() bool        { return true }
func (*kindSource) sharedCluster() bool    { return false }

func (s *kindSource) addSteps(b *planner) string {
	r, parts := b.r, b.parts
	if parts.Create {
		var claim stepFunc
		if s.claim {
			claim = r.claimWarmStep
		}
		return addBakeAndCreate(b, claim, r.create, true)
	}
	if parts.Load || parts.Deploy {
		b.add(engine.Step{Name: stepConnect, Phase: engine.PhaseCluster, Run: r.holding(r.connect)})
	}
	return stepConnect
}

func (*kindSource) addFinally(b *planner) {
	t, parts := b.t, b.parts
	if parts.Destroy && parts.Create && !t.Opts.KeepCluster {
		b.p.Finally = append(b.p.Finally, engine.Step{Name: stepDelete, Run: b.r.deleteIfMade})
	}
	addBakeNext(b)
}
