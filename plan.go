package testbed

import (
	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/topology"
)

// Parts selects which parts of an E2E environment a plan covers.
type Parts struct {
	Build   bool // build the service's images
	Create  bool // create the cluster (else use the existing one)
	Load    bool // load images into the cluster
	Deploy  bool // apply and wait for every component
	Suite   bool // run the service's suite
	Destroy bool // delete the cluster at the end (unless E2E_KEEP_CLUSTER)
}

// The parts of each target.
var (
	PartsE2E    = Parts{Build: true, Create: true, Load: true, Deploy: true, Suite: true, Destroy: true}
	PartsDeploy = Parts{Build: true, Load: true, Deploy: true}
	PartsBuild  = Parts{Build: true}
	PartsCreate = Parts{Create: true}
	PartsLoad   = Parts{Build: true, Load: true}
)

// Names of the steps, in one place.
func buildStep(image string) string { return "build " + image }
func loadStep(image string) string  { return "load " + image }
func pushStep(image string) string  { return "push " + image }
func applyStep(comp string) string  { return "apply " + comp }
func readyStep(comp string) string  { return "ready " + comp }

const (
	stepBake      = "bake node image"
	stepFindBaked = "find baked node image"
	stepBakeNext  = "bake for the next run"
	stepClaim     = "claim warm cluster"
	stepCluster   = "create cluster"
	stepConnect   = "connect cluster"
	stepNamespace = "prepare namespace"
	stepDNS       = "ready cluster DNS"
	stepPorts     = "reach host ports"
	stepDiagnose  = "collect diagnostics"
	stepDelete    = "delete cluster"
	stepCoverDir  = "prepare coverage dir"
	stepCoverage  = "collect coverage"
	stepPauseWarm = "pause warm cluster"
	// E2E_REGISTRY=local
	stepRegistry      = "start registry"
	stepRegistryHosts = "point nodes at registry"
	stepCheckImages   = "check registry images" // IMAGE_REGISTRY
)

// Plan builds the plan of a service for the given parts, to look at
// (engine.Plan's Describe prints it, as plan:show does): Run builds and
// runs it, and reports its timeline.
func (t *Testbed) Plan(service string, parts Parts) (*engine.Plan, error) {
	p, r, err := t.plan(service, parts, runEnv{out: t.Out})
	if r != nil {
		r.close()
	}
	return p, err
}

// plan builds the plan; with env.warming, the plan of a warm cluster:
// built, created, loaded, deployed, every component Ready, then paused. Each
// concern adds its steps in a method of planner, in this order (the
// order of the steps in plan:show).
func (t *Testbed) plan(service string, parts Parts, env runEnv) (*engine.Plan, *run, error) {
	b, err := t.newPlanner(service, parts, env)
	if err != nil {
		return nil, nil, err
	}
	b.addBuilds()
	b.clusterStep = b.src.addSteps(b)
	b.delivery.addSteps(b)
	if parts.Deploy {
		b.addClusterReady()
		gate := b.addComponents()
		b.src.addAfterReady(b)
		if parts.Suite && b.svc.Suite != topology.NoSuite {
			b.addSuite(gate)
		}
	}
	b.addFinally()
	if err := b.p.Validate(); err != nil {
		b.r.close()
		return nil, nil, &InputError{err}
	}
	return b.p, b.r, nil
}
