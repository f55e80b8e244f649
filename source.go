package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/testbed-dev/testbed/engine"
)

// Where a run's cluster comes from: one clusterSource per plan, chosen by
// chooseSource from the options and the target's parts. Start reading
// here; planner.go adds the steps every source shares (builds, image
// delivery, namespace, components, suite), asking the source only what
// it is (ownsNodes, sharedCluster).
//
//	chosen when                 source, file          its steps                  at the end
//	--------------------------  --------------------  -------------------------  ------------------------
//	e2e:all puts services on    oneSource             create shared cluster      release the namespace
//	one cluster                 source_one.go         (the first run makes it)
//	E2E_EXISTING_KUBECONFIG     existingSource        connect existing cluster   release the namespace
//	                            source_existing.go                               (kept: E2E_KEEP_CLUSTER,
//	                                                                             or no suite)
//	cluster:warm                warmingSource         bake node image, create    delete it if it failed
//	                            source_warming.go     cluster (a warm name);
//	                                                  pause warm cluster once
//	                                                  every component is Ready
//	a target that creates,      kindSource            bake node image, claim     delete what the run made
//	E2E_WARM on (not with       source_kind.go        warm cluster, create       or claimed (not with
//	reuse or keep)                                    cluster (none if claimed)  E2E_KEEP_CLUSTER)
//	a target that creates       kindSource            bake node image, create    the same
//	                                                  (or reuse) cluster
//	a target that loads or      kindSource            connect cluster (the       -
//	deploys only                                      service's, as it is)
//
// Two questions tell the other parts what the source is:
//   - ownsNodes: the cluster is a kind cluster on this machine, so testbed
//     brings images to its nodes and waits for its DNS. On an existing
//     cluster the nodes pull from a registry and its DNS is up.
//   - sharedCluster: the run owns only a namespace of its own on a
//     cluster others use too (a run namespace, its own copies of
//     cluster-scoped objects, ports reached through port-forwards).
type clusterSource interface {
	// prepare sets the run's cluster, namespace and clients up for the
	// source, before any step is added.
	prepare(r *run) error
	// describe names the cluster for the run's first line.
	describe(r *run) string
	// addSteps adds the steps that give the run its cluster and returns
	// the step everything done on the cluster needs.
	addSteps(b *planner) string
	ownsNodes() bool
	sharedCluster() bool
	// wrapLoad adapts an image's load step to the source.
	wrapLoad(r *run, image string, load stepFunc) stepFunc
	// addAfterReady adds what follows every component being Ready,
	// before the suite.
	addAfterReady(b *planner)
	// addFinally adds what the run gives back at its end.
	addFinally(b *planner)
}

// stepFunc is what a step runs.
type stepFunc = func(context.Context, io.Writer) error

// chooseSource picks where the run's cluster comes from (the table
// above) and refuses options that contradict each other there.
func (t *Testbed) chooseSource(parts Parts, env runEnv) (clusterSource, error) {
	if err := t.Opts.Check(); err != nil {
		return nil, err
	}
	existing, warming := t.Opts.Existing != "", env.warming
	switch {
	case warming && (existing || env.one != nil):
		return nil, &InputError{errors.New("E2E_EXISTING_KUBECONFIG: warm clusters are kind clusters testbed makes; unset it to warm")}
	case env.one != nil:
		return &oneSource{one: env.one}, nil
	case existing:
		return &existingSource{}, nil
	case warming:
		return &warmingSource{}, nil
	}
	claim := parts.Create && t.Opts.Warm && !t.Opts.ReuseCluster && !t.Opts.KeepCluster
	return &kindSource{claim: claim}, nil
}

// Check refuses options that contradict each other, whichever part they
// choose (OptionsFromEnv calls it; a program that sets Options itself
// gets the same refusals when it plans). Its errors are ErrInput.
func (o Options) Check() error {
	var why string
	switch {
	case (o.Registry == "") != (o.Tag == ""):
		why = fmt.Sprintf("IMAGE_REGISTRY=%q IMAGE_TAG=%q: set both (images come from the registry) or neither (images are built here)", o.Registry, o.Tag)
	case o.Registry != "" && o.Coverage:
		why = "E2E_COVERAGE=1 builds instrumented binaries here; it cannot be combined with images from IMAGE_REGISTRY"
	case o.LocalRegistry && o.Registry != "":
		why = fmt.Sprintf("E2E_REGISTRY=local and IMAGE_REGISTRY=%s: choose one (local pushes what it builds; IMAGE_REGISTRY pulls what a build job pushed)", o.Registry)
	case o.Context != "" && o.Existing == "":
		why = fmt.Sprintf("E2E_EXISTING_CONTEXT=%s names a context of E2E_EXISTING_KUBECONFIG, which is not set", o.Context)
	case o.Existing != "" && o.LocalRegistry:
		why = "E2E_EXISTING_KUBECONFIG and E2E_REGISTRY=local: testbed does not point the nodes of a cluster it did not make at its registry; push with build:push and set IMAGE_REGISTRY and IMAGE_TAG"
	case o.Existing != "" && o.Registry == "":
		why = "E2E_EXISTING_KUBECONFIG: nothing is loaded into a cluster testbed did not make, so its images come from a registry: set IMAGE_REGISTRY and IMAGE_TAG (build:push <service> puts them there)"
	case o.Existing != "" && o.ReuseCluster:
		why = "E2E_EXISTING_KUBECONFIG and E2E_REUSE_CLUSTER=1: an existing cluster is always used as it is; unset E2E_REUSE_CLUSTER"
	default:
		return nil
	}
	return &InputError{errors.New(why)}
}

// sourceDefaults are what most sources do: loads as they are, nothing
// after the components are Ready.
type sourceDefaults struct{}

func (sourceDefaults) wrapLoad(_ *run, _ string, load stepFunc) stepFunc { return load }
func (sourceDefaults) addAfterReady(*planner)                            {}

// addBakeNext adds the bake addBakeAndCreate put off, after the run's
// teardown and only after a pass: a user who stops the run or reads a
// failure does not wait for it.
func addBakeNext(b *planner) {
	if b.bakeNext != nil {
		b.p.Finally = append(b.p.Finally, engine.Step{Name: stepBakeNext, OnSuccess: true, Run: b.r.bakeForNextRun(b.r.bake(b.bakeNext))})
	}
}

// clusterNeeded reports whether the parts do anything on a cluster.
func clusterNeeded(parts Parts) bool { return parts.Create || parts.Load || parts.Deploy }

// addBakeAndCreate adds the bake of the node image (when the run loads
// third-party images and bakes them in) and the step that makes the
// cluster, after claim when one is given; it returns the create step.
// With later, a bake not made yet does not hold the create back (about
// 1.5 min here, against seconds to load the images): the run uses a bake
// made before, or creates from the base and loads the images, and bakes
// after a pass for the next run (the source adds addBakeNext).
func addBakeAndCreate(b *planner, claim, create stepFunc, later bool) string {
	t, r := b.t, b.r
	var needs []string
	if third := r.thirdParty(b.imgs); len(third) > 0 && t.Opts.Bake && b.parts.Load && b.delivery.bakes() {
		step := engine.Step{Name: stepBake, Phase: engine.PhaseCluster, Run: r.bake(third)}
		if later {
			step = engine.Step{Name: stepFindBaked, Phase: engine.PhaseCluster, Run: r.findBaked(third)}
			b.bakeNext = third
		}
		needs = append(needs, step.Name)
		b.add(step)
	}
	if claim != nil {
		b.add(engine.Step{Name: stepClaim, Needs: needs, Phase: engine.PhaseCluster, Run: claim})
		needs = []string{stepClaim}
	}
	b.add(engine.Step{Name: stepCluster, Needs: needs, Phase: engine.PhaseCluster, Run: r.holding(create)})
	return stepCluster
}
