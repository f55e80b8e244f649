package testbed

// sideLoad loads every image into each node of the run's cluster: the
// built ones from the engine, the third-party ones too (or bakes those
// into the node image, E2E_BAKE). No registry is involved.
type sideLoad struct{}

func (sideLoad) builds() bool        { return true }
func (sideLoad) bakes() bool         { return true }
func (sideLoad) addSteps(b *planner) { addLoads(b) }

func (sideLoad) applyNeeds(b *planner, images []string) []string { return loadNeeds(b, images) }
