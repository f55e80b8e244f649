package testbed

import (
	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/registry"
)

// imageDelivery is how the run's images reach the nodes, chosen by
// chooseDelivery beside the cluster's source (source.go):
//
//	chosen when              delivery, file                  its steps
//	-----------------------  ------------------------------  ----------------------------------------
//	E2E_REGISTRY=local       localRegistry                   start registry, point nodes at registry,
//	(a target that loads)    delivery_local.go               push <image> (built and third-party)
//	IMAGE_REGISTRY set       fromRegistry                    check registry images; nothing built;
//	                         delivery_registry.go            third-party images loaded; the nodes
//	                                                         pull the rest (point nodes at registry
//	                                                         when it is testbed's own)
//	otherwise                sideLoad                        load <image> into each node (third-party
//	                         delivery_sideload.go            ones baked into the node image first)
//
// On a cluster testbed did not make nothing is loaded (ownsNodes is
// false): its nodes pull, which is why it requires IMAGE_REGISTRY.
type imageDelivery interface {
	// builds reports whether the run builds the topology's images (else a
	// registry holds them).
	builds() bool
	// bakes reports whether third-party images may be baked into the node
	// image (E2E_BAKE decides whether they are).
	bakes() bool
	// addSteps adds the steps that bring the images to the nodes.
	addSteps(b *planner)
	// applyNeeds is what an apply of a component with these images waits
	// for, beyond its namespace.
	applyNeeds(b *planner, images []string) []string
}

func (t *Testbed) chooseDelivery(parts Parts) (imageDelivery, error) {
	switch {
	case t.Opts.LocalRegistry && parts.Load:
		return localRegistry{}, nil
	case t.Opts.Registry != "":
		return fromRegistry{}, nil
	}
	return sideLoad{}, nil
}

// addLoads adds a load step per image the run brings to the nodes, after
// the cluster and the image's build.
func addLoads(b *planner) {
	for _, name := range b.imgs {
		if !b.loaded(name) {
			continue
		}
		needs := []string{b.clusterStep}
		if b.built(name) && b.parts.Build {
			needs = append(needs, buildStep(name))
		}
		load := b.src.wrapLoad(b.r, name, b.r.load(name))
		b.add(engine.Step{Name: loadStep(name), Needs: needs, Class: b.importClass, Phase: engine.PhaseLoad, Run: load})
	}
}

// loadNeeds is what an apply waits for of an image: its load, or its build
// when it is not loaded.
func loadNeeds(b *planner, images []string) []string { return deliveredNeeds(b, images, loadStep) }

// deliveredNeeds is what an apply waits for of each image: the step that
// delivers it (delivered names it), or its build when nothing delivers it.
func deliveredNeeds(b *planner, images []string, delivered func(string) string) []string {
	var needs []string
	for _, img := range images {
		if b.loaded(img) {
			needs = append(needs, delivered(img))
		} else if b.built(img) && b.parts.Build {
			needs = append(needs, buildStep(img))
		}
	}
	return needs
}

// addPointNodes adds the step that points the nodes at testbed's registry.
func addPointNodes(b *planner, needs ...string) {
	b.add(engine.Step{Name: stepRegistryHosts, Needs: append([]string{b.clusterStep}, needs...), Phase: engine.PhaseCluster, Run: b.r.configureRegistry})
}

// nodesPullFromLocal reports whether the nodes of a cluster testbed makes
// are set to pull from its local registry (E2E_REGISTRY=local, or
// IMAGE_REGISTRY naming that registry): the cluster's containerd
// configuration, and so part of its reuse hash.
func (o Options) nodesPullFromLocal() bool {
	return o.LocalRegistry || o.Registry == registry.Host
}

// nodesPullFromLocal reports whether the run's nodes pull from testbed's
// registry.
func (b *planner) nodesPullFromLocal() bool {
	switch b.delivery.(type) {
	case localRegistry:
		return true
	case fromRegistry:
		return b.t.Opts.nodesPullFromLocal() && (b.parts.Load || b.parts.Deploy) && !b.src.sharedCluster()
	}
	return false
}
