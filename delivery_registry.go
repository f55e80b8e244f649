package testbed

import "github.com/testbed-dev/testbed/engine"

// fromRegistry (IMAGE_REGISTRY, IMAGE_TAG): nothing is built; the run
// first checks that the registry holds every built image at the tag (a
// wrong tag fails at once, not as a pod that cannot pull), and the nodes
// pull them. Third-party images are loaded as with sideLoad. On an
// existing cluster this is the only way images arrive.
type fromRegistry struct{}

func (fromRegistry) builds() bool { return false }
func (fromRegistry) bakes() bool  { return true }

func (fromRegistry) addSteps(b *planner) {
	if b.nodesPullFromLocal() {
		addPointNodes(b)
	}
	if b.parts.Deploy {
		b.add(engine.Step{Name: stepCheckImages, Phase: engine.PhaseBuild, Run: b.r.checkImages(b.imgs)})
	}
	addLoads(b)
}

func (fromRegistry) applyNeeds(b *planner, images []string) []string {
	var needs []string
	if b.nodesPullFromLocal() {
		needs = append(needs, stepRegistryHosts)
	}
	return append(append(needs, stepCheckImages), loadNeeds(b, images)...)
}
