package testbed

import (
	"context"
	"errors"
	"io"
	"slices"

	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/images"
	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/internal/registry"
	"github.com/testbed-dev/testbed/topology"
)

// The planner: which steps a plan holds, one concern per method, and what
// each needs.

// planner holds what the parts of one plan are chosen from.
type planner struct {
	t     *Testbed
	r     *run
	p     *engine.Plan
	parts Parts
	svc   *topology.Service
	imgs  []string // the service's images
	warm  bool
	// existing: a cluster testbed did not make (see sharedCluster), or
	// one: the cluster e2e:all makes for several services (oneCluster).
	// Both run the service as on a shared cluster.
	one      *oneCluster
	existing bool
	// clusterStep is the step that gives the run its cluster; importClass
	// allows one import into the cluster's nodes at a time.
	clusterStep, importClass string
	// local: each image goes to testbed's registry once, and the nodes
	// pull it. viaLocal: the nodes pull from that registry (local, or
	// IMAGE_REGISTRY names it).
	local, viaLocal bool
}

func (t *Testbed) newPlanner(service string, parts Parts, warm bool) (*planner, error) {
	svc, err := t.Topo.Service(service)
	if err != nil {
		return nil, &InputError{err}
	}
	one := t.one
	existing := t.Opts.Existing != "" || one != nil
	if existing && warm {
		return nil, &InputError{errors.New("E2E_EXISTING_KUBECONFIG: warm clusters are kind clusters testbed makes; unset it to warm")}
	}
	var cl *cluster.Cluster
	if one != nil {
		cl = one.c
	} else if !existing {
		if cl, err = t.scope().Open(t.scope().NameFor(service), io.Discard); err != nil {
			return nil, err
		}
	}
	memo := t.memo
	if memo == nil {
		memo = &buildMemo{}
	}
	r := &run{tb: t, cfg: t.Opts, memo: memo, topo: t.Topo, name: service, svc: svc, scope: t.scope(), cluster: cl, ns: t.Topo.Namespace, refs: map[string]string{}, ids: map[string]string{}, objs: map[string][]kube.Object{}, warming: warm}
	switch {
	case one != nil:
		r.one, r.shared = one, sharedOne(one)
		r.ns = runNamespace(t.Topo.Namespace)
	case existing:
		if r.shared, err = openShared(t.Opts); err != nil {
			return nil, err
		}
		r.ns = runNamespace(t.Topo.Namespace)
	}
	b := &planner{t: t, r: r, parts: parts, svc: svc, imgs: t.Topo.ImagesOf(svc), warm: warm, one: one, existing: existing,
		p: &engine.Plan{Name: service, Limits: map[string]int{"build": t.Opts.BuildConcurrency}}}
	if cl != nil {
		b.importClass = "import:" + cl.Name
		b.p.Limits[b.importClass] = 1
	}
	b.local = t.Opts.LocalRegistry && parts.Load
	b.viaLocal = b.local || (t.Opts.Registry == registry.Host && (parts.Load || parts.Deploy) && !existing)
	return b, nil
}

func (b *planner) add(s engine.Step) { b.p.Steps = append(b.p.Steps, s) }

// built reports whether this run builds (and loads) an image: not when
// the images come from a registry.
func (b *planner) built(name string) bool {
	return b.t.Topo.Images[name].Built() && b.t.Opts.Registry == ""
}

// loaded reports whether the run brings an image to the nodes. Nothing is
// loaded into a cluster testbed did not make: it pulls. The one e2e:all
// shares gets each image once.
func (b *planner) loaded(name string) bool {
	return b.parts.Load && (!b.existing || b.one != nil) && (b.built(name) || !b.t.Topo.Images[name].Built())
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
		case t.Opts.Registry != "":
			r.refs[name] = t.Opts.Registry + "/" + name + ":" + t.Opts.Tag
		case b.parts.Build:
			r.compiling.add()
			b.add(engine.Step{Name: buildStep(name), Class: "build", Phase: engine.PhaseBuild, Run: r.build(name, img)})
		}
	}
}

// addClusterStep adds the step that gives the run its cluster: e2e:all's
// one cluster, an existing one, a new (or reused, or claimed warm) one
// with its baked node image, or the service's cluster as it is.
func (b *planner) addClusterStep() {
	t, r, parts := b.t, b.r, b.parts
	b.clusterStep = stepConnect
	if b.one != nil {
		b.clusterStep = stepOne
		if parts.Create || parts.Load || parts.Deploy {
			b.add(engine.Step{Name: stepOne, Phase: engine.PhaseCluster, Run: r.holding(r.createOne)})
		}
	} else if b.existing {
		b.clusterStep = stepShared
		if parts.Create || parts.Load || parts.Deploy {
			b.add(engine.Step{Name: stepShared, Phase: engine.PhaseCluster, Run: r.holding(r.connectShared)})
		}
	} else if parts.Create {
		b.clusterStep = stepCluster
		var needs []string
		if third := r.thirdParty(b.imgs); len(third) > 0 && t.Opts.Bake && parts.Load && !t.Opts.LocalRegistry {
			needs = append(needs, stepBake)
			b.add(engine.Step{Name: stepBake, Phase: engine.PhaseCluster, Run: r.bake(third)})
		}
		b.add(engine.Step{Name: stepCluster, Needs: needs, Phase: engine.PhaseCluster, Run: r.holding(r.create)})
	} else if parts.Load || parts.Deploy {
		b.add(engine.Step{Name: stepConnect, Phase: engine.PhaseCluster, Run: r.holding(r.connect)})
	}
}

// addImageDelivery adds the steps that bring images to the nodes: the
// local registry and the nodes' pointer to it, registry mode's check, and
// a load (or a push to the local registry) per image.
func (b *planner) addImageDelivery() {
	t, r := b.t, b.r
	if b.local {
		b.add(engine.Step{Name: stepRegistry, Phase: engine.PhaseCluster, Run: r.startRegistry})
	}
	if b.viaLocal {
		needs := []string{b.clusterStep}
		if b.local {
			needs = append(needs, stepRegistry)
		}
		b.add(engine.Step{Name: stepRegistryHosts, Needs: needs, Phase: engine.PhaseCluster, Run: r.configureRegistry})
	}
	if t.Opts.Registry != "" && b.parts.Deploy {
		// A wrong tag or an unreachable registry fails the run now, not
		// as a pod that cannot pull after the cluster was made.
		b.add(engine.Step{Name: stepCheckImages, Phase: engine.PhaseBuild, Run: r.checkImages(b.imgs)})
	}
	for _, name := range b.imgs {
		if !b.loaded(name) {
			continue
		}
		needs := []string{b.clusterStep}
		if b.local {
			needs = []string{stepRegistry}
		}
		if b.built(name) && b.parts.Build {
			needs = append(needs, buildStep(name))
		}
		if b.local {
			b.add(engine.Step{Name: pushStep(name), Needs: needs, Phase: engine.PhaseLoad, Run: r.push(name)})
			continue
		}
		load := r.load(name)
		if b.one != nil {
			load = r.loadOne(name, load)
		}
		b.add(engine.Step{Name: loadStep(name), Needs: needs, Class: b.importClass, Phase: engine.PhaseLoad, Run: load})
	}
}

// addClusterReady adds what the cluster needs before any apply: the run's
// namespace, its DNS (an existing cluster's is up), the coverage dir.
func (b *planner) addClusterReady() {
	r := b.r
	b.add(engine.Step{Name: stepNamespace, Needs: []string{b.clusterStep}, Phase: engine.PhaseCluster, Run: r.prepareNamespace})
	if !b.existing || b.one != nil {
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
		needs := []string{stepNamespace}
		if b.viaLocal {
			needs = append(needs, stepRegistryHosts)
		}
		if t.Opts.Registry != "" {
			needs = append(needs, stepCheckImages)
		}
		for _, img := range c.Images {
			if b.loaded(img) && b.local {
				needs = append(needs, pushStep(img))
			} else if b.loaded(img) {
				needs = append(needs, loadStep(img))
			} else if b.built(img) && b.parts.Build {
				needs = append(needs, buildStep(img))
			}
			if t.Opts.Coverage && b.built(img) && !slices.Contains(needs, stepCoverDir) {
				needs = append(needs, stepCoverDir)
			}
		}
		for _, n := range c.Needs {
			needs = append(needs, readyStep(n))
		}
		if len(c.Needs) > 0 && (!b.existing || b.one != nil) {
			// It reaches what it needs by Service name.
			needs = append(needs, stepDNS)
		}
		b.add(engine.Step{Name: applyStep(comp), Needs: needs, Phase: engine.PhaseApply, Run: r.apply(comp, c)})
		b.add(engine.Step{Name: readyStep(comp), Needs: []string{applyStep(comp)}, Phase: engine.PhaseWait, Run: r.ready(comp, c)})
		gate = append(gate, readyStep(comp))
	}
	return gate
}

// addPauseWarm pauses a warm cluster after every step before it, not
// only the ready steps: a component that needs no Service name does not
// wait for CoreDNS, but a cluster paused while CoreDNS starts wakes with
// it not ready (and the DNS step, still waiting, times out on a frozen
// node).
func (b *planner) addPauseWarm() {
	var all []string
	for _, s := range b.p.Steps {
		all = append(all, s.Name)
	}
	b.add(engine.Step{Name: stepPauseWarm, Needs: all, Phase: engine.PhaseWait, Run: b.r.pauseWarm})
}

// addSuite adds the suite after the gate, with the port-forwards of an
// existing cluster and the host ports' check first.
func (b *planner) addSuite(gate []string) {
	r := b.r
	if len(b.svc.Ports) > 0 && b.existing {
		b.add(engine.Step{Name: stepForward, Needs: gate, Phase: engine.PhaseWait, Run: r.forwardPorts})
		gate = append(gate, stepForward)
	}
	if len(b.svc.Ports) > 0 {
		b.add(engine.Step{Name: stepPorts, Needs: gate, Phase: engine.PhaseWait, Run: r.reachPorts})
		gate = append(gate, stepPorts)
	}
	suite := r.suite
	if done := b.t.suiteDone; done != nil {
		suite = func(ctx context.Context, w io.Writer) error {
			defer done()
			return r.suite(ctx, w)
		}
	}
	b.add(engine.Step{Name: "suite " + r.name, Needs: gate, Phase: engine.PhaseTest, Run: suite})
}

// addFinally adds what runs at the end: diagnostics on failure, coverage,
// the release of a shared cluster's namespace, the deletion of a cluster
// the run made.
func (b *planner) addFinally() {
	t, r, parts, p := b.t, b.r, b.parts, b.p
	if parts.Create || parts.Deploy {
		p.Finally = append(p.Finally, engine.Step{Name: stepDiagnose, OnFailure: true, Run: r.diagnose})
	}
	if parts.Deploy && t.Opts.Coverage {
		// After the diagnostics: flushing stops the pods whose logs they keep.
		p.Finally = append(p.Finally, engine.Step{Name: stepCoverage, Run: r.collectCoverage})
	}
	if b.existing && parts.Deploy {
		// What the suite is done with goes; without a suite (deploy:parallel)
		// the namespace is what the user asked for.
		keep := t.Opts.KeepCluster || !parts.Suite
		p.Finally = append(p.Finally, engine.Step{Name: stepRelease, Run: r.release(keep)})
	}
	if parts.Destroy && parts.Create && !t.Opts.KeepCluster && !b.existing {
		p.Finally = append(p.Finally, engine.Step{Name: stepDelete, Run: r.deleteIfMade})
	}
	if b.warm {
		// A warm cluster that did not get Ready is no use to anyone.
		p.Finally = append(p.Finally, engine.Step{Name: stepDelete, OnFailure: true, Run: r.deleteIfMade})
	}
}
