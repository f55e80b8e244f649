package testbed

import (
	"github.com/testbed-dev/testbed/engine"
)

// oneSource: the kind cluster e2e:all makes once for several services
// (see oneCluster). The first run that needs it makes it, the others wait;
// each image is loaded into it once; each run owns a namespace of its own
// on it and releases it at its end. e2e:all deletes the cluster when every
// service is done.
type oneSource struct{ one *oneCluster }

func (s *oneSource) prepare(r *run) error {
	r.cluster, r.one, r.runNS = s.one.c, s.one, newRunNamespace()
	r.namespace, r.ns = r.runNS, runNamespaceName(r.topo.Namespace)
	return nil
}

func (*oneSource) describe(r *run) string {
	return "cluster " + r.one.c.Name + " shared by e2e:all, namespace " + r.ns
}
func (*oneSource) ownsNodes() bool     { return true }
func (*oneSource) sharedCluster() bool { return true }

func (*oneSource) addSteps(b *planner) string {
	if clusterNeeded(b.parts) {
		b.add(engine.Step{Name: stepOne, Phase: engine.PhaseCluster, Run: b.r.holding(b.r.createOne)})
	}
	return stepOne
}

// wrapLoad loads each image into the one cluster once for all its runs.
func (*oneSource) wrapLoad(r *run, image string, load stepFunc) stepFunc {
	return r.loadOne(image, load)
}

func (*oneSource) addAfterReady(*planner) {}

func (*oneSource) addFinally(b *planner) { addRelease(b) }

// addRelease adds the release of the run's namespace on a cluster others
// use: what the suite is done with goes; without a suite (deploy:parallel)
// the namespace is what the user asked for.
func addRelease(b *planner) {
	if !b.parts.Deploy {
		return
	}
	keep := b.t.Opts.KeepCluster || !b.parts.Suite
	b.p.Finally = append(b.p.Finally, engine.Step{Name: stepRelease, Run: b.r.release(keep)})
}
