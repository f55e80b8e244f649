package testbed

import "github.com/testbed-dev/testbed/engine"

// localRegistry (E2E_REGISTRY=local) puts each image into testbed's
// registry once, pinned by digest, and points the nodes at it: they pull.
// Many clusters on one machine then share one copy of each image.
type localRegistry struct{}

func (localRegistry) builds() bool { return true }
func (localRegistry) bakes() bool  { return false }

func (localRegistry) addSteps(b *planner) {
	r := b.r
	b.add(engine.Step{Name: stepRegistry, Phase: engine.PhaseCluster, Run: r.startRegistry})
	addPointNodes(b, stepRegistry)
	for _, name := range b.imgs {
		if !b.loaded(name) {
			continue
		}
		needs := []string{stepRegistry}
		if b.built(name) && b.parts.Build {
			needs = append(needs, buildStep(name))
		}
		b.add(engine.Step{Name: pushStep(name), Needs: needs, Phase: engine.PhaseLoad, Run: r.push(name)})
	}
}

func (localRegistry) applyNeeds(b *planner, images []string) []string {
	return append([]string{stepRegistryHosts}, deliveredNeeds(b, images, pushStep)...)
}
