package testbed

import (
	"context"
	"io"
	"slices"

	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/images"
	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/topology"
)

// The planner: which steps a plan holds, one concern per method, and what
// each needs.

// planner holds what the parts of one plan are chosen from.
type planner struct {
	t        *Testbed
	r        *run
	p        *engine.Plan
	parts    Parts
	svc      *topology.Service
	imgs     []string      // the service's images
	src      clusterSource // where the cluster comes from (source.go)
	delivery imageDelivery // how images reach its nodes (delivery.go)
	// clusterStep is the step that gives the run its cluster; importClass
	// allows one import into the cluster's nodes at a time.
	clusterStep, importClass string
	// bakeNext is what the run bakes into the node image after a pass,
	// for the next run, when no bake of it existed (see addBakeAndCreate).
	bakeNext []string
}

func (t *Testbed) newPlanner(service string, parts Parts, env runEnv) (*planner, error) {
	svc, err := t.Topo.Service(service)
	if err != nil {
		return nil, &InputError{err}
	}
	src, err := t.chooseSource(parts, env)
	if err != nil {
		return nil, err
	}
	delivery, err := t.chooseDelivery(parts)
	if err != nil {
		return nil, err
	}
	once := t.once
	if once == nil { // a Testbed not made by New
		once = &processOnce{}
	}
	r := &run{tb: t, env: env, cfg: t.Opts, once: once, topo: t.Topo, name: service, svc: svc, scope: t.scope(), ns: t.Topo.Namespace, refs: map[string]string{}, ids: map[string]string{}, objs: map[string][]kube.Object{}, source: src, suites: env.suites}
	if err := src.prepare(r); err != nil {
		return nil, err
	}
	b := &planner{t: t, r: r, parts: parts, svc: svc, imgs: t.Topo.ImagesOf(svc), src: src, delivery: delivery,
		p: &engine.Plan{Name: service, Limits: map[string]int{"build": t.Opts.BuildConcurrency}}}
	if r.cluster != nil {
		b.importClass = "import:" + r.cluster.Name
		b.p.Limits[b.importClass] = 1
	}
	return b, nil
}

func (b *planner) add(s engine.Step) { b.p.Steps = append(b.p.Steps, s) }

// built reports whether this run builds (and loads) an image: not when
// the images come from a registry.
func (b *planner) built(name string) bool {
	return b.t.Topo.Images[name].Built() && b.delivery.builds()
}

// loaded reports whether the run brings an image to the nodes. Nothing is
// loaded into a cluster testbed did not make: it pulls.
func (b *planner) loaded(name string) bool {
	return b.parts.Load && b.src.ownsNodes() && (b.built(name) || !b.t.Topo.Images[name].Built())
}

// addBuilds adds a build step per image the run builds, and sets the
// reference of every other image.
func (b *planner) addBuilds() {
	t, r := b.t, b.r
	for _, name := range b.imgs {
		img := t.Topo.Images[name]
		switch {
		case !img.Built():
			r.refs[name] = images.ThirdParty(img)
		case !b.delivery.builds():
			r.refs[name] = t.Opts.Registry + "/" + name + ":" + t.Opts.Tag
		case b.parts.Build:
			r.compiling.add()
			b.add(engine.Step{Name: buildStep(name), Class: "build", Phase: engine.PhaseBuild, Run: r.build(name, img)})
		}
	}
}

// addClusterReady adds what the cluster needs before any apply: the run's
// namespace, its DNS (an existing cluster's is up), the coverage dir.
func (b *planner) addClusterReady() {
	r := b.r
	b.add(engine.Step{Name: stepNamespace, Needs: []string{b.clusterStep}, Phase: engine.PhaseCluster, Run: r.prepareNamespace})
	if b.src.ownsNodes() {
		b.add(engine.Step{Name: stepDNS, Needs: []string{b.clusterStep}, Phase: engine.PhaseCluster, Run: r.clusterDNS})
	}
	if b.t.Opts.Coverage {
		b.add(engine.Step{Name: stepCoverDir, Needs: []string{b.clusterStep}, Phase: engine.PhaseCluster, Run: r.prepareCoverDir})
	}
}

// addComponents adds an apply and a ready step per component, each apply
// needing what brings its images and the components it needs Ready; it
// returns the ready steps.
func (b *planner) addComponents() (gate []string) {
	t, r := b.t, b.r
	for _, comp := range b.svc.Components {
		c := t.Topo.Components[comp]
		needs := append([]string{stepNamespace}, b.delivery.applyNeeds(b, c.Images)...)
		if t.Opts.Coverage && slices.ContainsFunc(c.Images, b.built) {
			needs = append(needs, stepCoverDir)
		}
		for _, n := range c.Needs {
			needs = append(needs, readyStep(n))
		}
		if len(c.Needs) > 0 && b.src.ownsNodes() {
			// It reaches what it needs by Service name.
			needs = append(needs, stepDNS)
		}
		b.add(engine.Step{Name: applyStep(comp), Needs: needs, Phase: engine.PhaseApply, Run: r.apply(comp, c)})
		b.add(engine.Step{Name: readyStep(comp), Needs: []string{applyStep(comp)}, Phase: engine.PhaseWait, Run: r.ready(comp, c)})
		gate = append(gate, readyStep(comp))
	}
	return gate
}

// addSuite adds the suite after the gate, with the port-forwards of an
// existing cluster and the host ports' check first.
func (b *planner) addSuite(gate []string) {
	r := b.r
	if len(b.svc.Ports) > 0 && b.src.sharedCluster() {
		b.add(engine.Step{Name: stepForward, Needs: gate, Phase: engine.PhaseWait, Run: r.forwardPorts})
		gate = append(gate, stepForward)
	}
	if len(b.svc.Ports) > 0 {
		b.add(engine.Step{Name: stepPorts, Needs: gate, Phase: engine.PhaseWait, Run: r.reachPorts})
		gate = append(gate, stepPorts)
	}
	suite := r.suite
	if done := b.r.env.suiteDone; done != nil {
		suite = func(ctx context.Context, w io.Writer) error {
			defer done()
			return r.suite(ctx, w)
		}
	}
	if precompiled(r.svc.Suite) {
		b.add(engine.Step{Name: stepCompileSuite, Phase: engine.PhaseBuild, Run: r.compileSuite})
		gate = append(gate, stepCompileSuite)
	}
	b.add(engine.Step{Name: "suite " + r.name, Needs: gate, Phase: engine.PhaseTest, Run: suite})
}

// addFinally adds what runs at the end: diagnostics on failure, coverage,
// then what the cluster's source gives back (a namespace released, a
// cluster the run made deleted).
func (b *planner) addFinally() {
	t, r, parts, p := b.t, b.r, b.parts, b.p
	if parts.Create || parts.Deploy {
		p.Finally = append(p.Finally, engine.Step{Name: stepDiagnose, OnFailure: true, Run: r.diagnose})
	}
	if parts.Deploy && t.Opts.Coverage {
		// After the diagnostics: flushing stops the pods whose logs they keep.
		p.Finally = append(p.Finally, engine.Step{Name: stepCoverage, Run: r.collectCoverage})
	}
	b.src.addFinally(b)
}
