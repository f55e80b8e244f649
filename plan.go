package testbed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kind/pkg/apis/config/defaults"

	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/atexit"
	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/images"
	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/internal/registry"
	"github.com/testbed-dev/testbed/suiteenv"
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

// run is the state the steps of one plan share.
type run struct {
	tb      *Testbed
	cfg     Options
	memo    *buildMemo
	topo    *topology.Topology
	name    string
	svc     *topology.Service
	scope   cluster.Scope
	cluster *cluster.Cluster // nil on a shared cluster
	ns      string           // the namespace the components run in
	shared  *sharedCluster   // set on a cluster testbed did not make, or shares (one)
	one     *oneCluster      // set on the cluster e2e:all shares between services

	// made is set once this run started kind for its cluster: only then
	// does the run delete the cluster at its end.
	made atomic.Bool

	mu     sync.Mutex
	docker *client.Client
	kube   *kube.Client
	refs   map[string]string        // image name → reference
	ids    map[string]string        // image name → image ID
	objs   map[string][]kube.Object // component name → rendered manifests
	node   string                   // the node image clusters are made from (baked or E2E_NODE_IMAGE)
	ports  map[int]int              // node port → host port, when the engine chose them (warm clusters)
	// probes is the kubelets' readiness probe counts right after a
	// claimed warm cluster was unpaused (nil otherwise).
	probes *probeCount
	held   map[string]string // image ref → ID the cluster's nodes held at the first load
	// compiling counts the run's build steps that may still compile:
	// a claimed warm cluster is unpaused only when it is zero, since an
	// awake cluster takes the cores a compile needs.
	compiling countdown

	// warming makes a warm cluster: a new name, host ports the engine
	// chooses, and at the end the nodes paused instead of a suite.
	warming bool
}

// hostPort is where the host reaches a node port of the run's cluster.
func (r *run) hostPort(p topology.Port) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if hp, ok := r.ports[p.NodePort]; ok {
		return hp
	}
	return p.HostPort
}

// dockerClient returns the run's Docker client, made on first use. The
// client is made and pinged (up to 10 s) outside the run's mutex, which
// every step takes: two steps that need it at once may both make one, and
// the second is closed.
func (r *run) dockerClient(ctx context.Context) (*client.Client, error) {
	r.mu.Lock()
	d := r.docker
	r.mu.Unlock()
	if d != nil {
		return d, nil
	}
	d, err := images.NewDocker(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.docker != nil {
		d.Close()
		return r.docker, nil
	}
	r.docker = d
	return d, nil
}

func (r *run) kubeClient() (*kube.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kube == nil {
		k, err := kube.NewClient(r.kubeconfig())
		if err != nil {
			return nil, err
		}
		// On a cluster testbed did not make, what others made is left.
		k.LeaveOthers = r.shared != nil
		r.kube = k
	}
	return r.kube, nil
}

// kubeconfig is the file of the run's cluster: the kind cluster's own, or
// the one context of a shared cluster.
func (r *run) kubeconfig() string {
	if r.shared != nil {
		return r.shared.kubeconfig
	}
	return r.cluster.Kubeconfig
}

func (r *run) setImage(name, ref, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refs[name], r.ids[name] = ref, id
}

func (r *run) image(name string) (ref, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refs[name], r.ids[name]
}

func (r *run) close() {
	r.mu.Lock()
	pc := r.probes
	r.mu.Unlock()
	if pc != nil {
		pc.stop()
		<-pc.done
	}
	if r.docker != nil {
		r.docker.Close()
	}
	if r.shared != nil {
		r.shared.close()
	}
}

// Names of the steps, in one place.
func buildStep(image string) string { return "build " + image }
func loadStep(image string) string  { return "load " + image }
func pushStep(image string) string  { return "push " + image }
func applyStep(comp string) string  { return "apply " + comp }
func readyStep(comp string) string  { return "ready " + comp }

const (
	stepBake      = "bake node image"
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
	p, r, err := t.plan(service, parts, false)
	if r != nil {
		r.close()
	}
	return p, err
}

// plan builds the plan; with warm, the plan of a warm cluster: built,
// created, loaded, deployed, every component Ready, then paused.
func (t *Testbed) plan(service string, parts Parts, warm bool) (*engine.Plan, *run, error) {
	svc, err := t.Topo.Service(service)
	if err != nil {
		return nil, nil, &InputError{err}
	}
	// existing: a cluster testbed did not make (see sharedCluster), or
	// one: the cluster e2e:all makes for several services (oneCluster).
	// Both run the service as on a shared cluster.
	one := t.one
	existing := t.Opts.Existing != "" || one != nil
	if existing && warm {
		return nil, nil, &InputError{errors.New("E2E_EXISTING_KUBECONFIG: warm clusters are kind clusters testbed makes; unset it to warm")}
	}
	var cl *cluster.Cluster
	if one != nil {
		cl = one.c
	} else if !existing {
		if cl, err = t.scope().Open(t.scope().NameFor(service), io.Discard); err != nil {
			return nil, nil, err
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
			return nil, nil, err
		}
		r.ns = runNamespace(t.Topo.Namespace)
	}
	p := &engine.Plan{Name: service, Limits: map[string]int{"build": t.Opts.BuildConcurrency}}
	var importClass string // one import into the cluster's nodes at a time
	if cl != nil {
		importClass = "import:" + cl.Name
		p.Limits[importClass] = 1
	}
	add := func(s engine.Step) { p.Steps = append(p.Steps, s) }

	imgs := t.Topo.ImagesOf(svc)
	// built reports whether this run builds (and loads) an image: not when
	// the images come from a registry.
	built := func(name string) bool { return t.Topo.Images[name].Built() && t.Opts.Registry == "" }
	for _, name := range imgs {
		img := t.Topo.Images[name]
		switch {
		case !img.Built():
			r.refs[name] = images.ThirdParty(img)
		case t.Opts.Registry != "":
			r.refs[name] = t.Opts.Registry + "/" + name + ":" + t.Opts.Tag
		case parts.Build:
			r.compiling.add()
			add(engine.Step{Name: buildStep(name), Class: "build", Phase: engine.PhaseBuild, Run: r.build(name, img)})
		}
	}
	clusterStep := stepConnect
	if one != nil {
		clusterStep = stepOne
		if parts.Create || parts.Load || parts.Deploy {
			add(engine.Step{Name: stepOne, Phase: engine.PhaseCluster, Run: r.createOne})
		}
	} else if existing {
		clusterStep = stepShared
		if parts.Create || parts.Load || parts.Deploy {
			add(engine.Step{Name: stepShared, Phase: engine.PhaseCluster, Run: r.connectShared})
		}
	} else if parts.Create {
		clusterStep = stepCluster
		var needs []string
		if third := r.thirdParty(imgs); len(third) > 0 && t.Opts.Bake && parts.Load && !t.Opts.LocalRegistry {
			needs = append(needs, stepBake)
			add(engine.Step{Name: stepBake, Phase: engine.PhaseCluster, Run: r.bake(third)})
		}
		add(engine.Step{Name: stepCluster, Needs: needs, Phase: engine.PhaseCluster, Run: r.create})
	} else if parts.Load || parts.Deploy {
		add(engine.Step{Name: stepConnect, Phase: engine.PhaseCluster, Run: r.connect})
	}
	// Nothing is loaded into a cluster testbed did not make: it pulls.
	// The one e2e:all shares gets each image once.
	loaded := func(name string) bool {
		return parts.Load && (!existing || one != nil) && (built(name) || !t.Topo.Images[name].Built())
	}
	// local: each image goes to testbed's registry once, and the nodes
	// pull it. viaLocal: the nodes pull from that registry (local, or
	// IMAGE_REGISTRY names it).
	local := t.Opts.LocalRegistry && parts.Load
	viaLocal := local || (t.Opts.Registry == registry.Host && (parts.Load || parts.Deploy) && !existing)
	if local {
		add(engine.Step{Name: stepRegistry, Phase: engine.PhaseCluster, Run: r.startRegistry})
	}
	if viaLocal {
		needs := []string{clusterStep}
		if local {
			needs = append(needs, stepRegistry)
		}
		add(engine.Step{Name: stepRegistryHosts, Needs: needs, Phase: engine.PhaseCluster, Run: r.configureRegistry})
	}
	if t.Opts.Registry != "" && parts.Deploy {
		// A wrong tag or an unreachable registry fails the run now, not
		// as a pod that cannot pull after the cluster was made.
		add(engine.Step{Name: stepCheckImages, Phase: engine.PhaseBuild, Run: r.checkImages(imgs)})
	}
	for _, name := range imgs {
		if !loaded(name) {
			continue
		}
		needs := []string{clusterStep}
		if local {
			needs = []string{stepRegistry}
		}
		if built(name) && parts.Build {
			needs = append(needs, buildStep(name))
		}
		if local {
			add(engine.Step{Name: pushStep(name), Needs: needs, Phase: engine.PhaseLoad, Run: r.push(name)})
			continue
		}
		load := r.load(name)
		if one != nil {
			load = r.loadOne(name, load)
		}
		add(engine.Step{Name: loadStep(name), Needs: needs, Class: importClass, Phase: engine.PhaseLoad, Run: load})
	}
	if parts.Deploy {
		add(engine.Step{Name: stepNamespace, Needs: []string{clusterStep}, Phase: engine.PhaseCluster, Run: r.prepareNamespace})
		if !existing || one != nil { // an existing cluster's DNS is up
			add(engine.Step{Name: stepDNS, Needs: []string{clusterStep}, Phase: engine.PhaseCluster, Run: r.clusterDNS})
		}
		if t.Opts.Coverage {
			add(engine.Step{Name: stepCoverDir, Needs: []string{clusterStep}, Phase: engine.PhaseCluster, Run: r.prepareCoverDir})
		}
		var gate []string
		for _, comp := range svc.Components {
			c := t.Topo.Components[comp]
			needs := []string{stepNamespace}
			if viaLocal {
				needs = append(needs, stepRegistryHosts)
			}
			if t.Opts.Registry != "" {
				needs = append(needs, stepCheckImages)
			}
			for _, img := range c.Images {
				if loaded(img) && local {
					needs = append(needs, pushStep(img))
				} else if loaded(img) {
					needs = append(needs, loadStep(img))
				} else if built(img) && parts.Build {
					needs = append(needs, buildStep(img))
				}
				if t.Opts.Coverage && built(img) && !slices.Contains(needs, stepCoverDir) {
					needs = append(needs, stepCoverDir)
				}
			}
			for _, n := range c.Needs {
				needs = append(needs, readyStep(n))
			}
			if len(c.Needs) > 0 && (!existing || one != nil) {
				// It reaches what it needs by Service name.
				needs = append(needs, stepDNS)
			}
			add(engine.Step{Name: applyStep(comp), Needs: needs, Phase: engine.PhaseApply, Run: r.apply(comp, c)})
			add(engine.Step{Name: readyStep(comp), Needs: []string{applyStep(comp)}, Phase: engine.PhaseWait, Run: r.ready(comp, c)})
			gate = append(gate, readyStep(comp))
		}
		if warm {
			// Every step before it, not only the ready steps: a component
			// that needs no Service name does not wait for CoreDNS, but a
			// cluster paused while CoreDNS starts wakes with it not ready
			// (and the DNS step, still waiting, times out on a frozen node).
			var all []string
			for _, s := range p.Steps {
				all = append(all, s.Name)
			}
			add(engine.Step{Name: stepPauseWarm, Needs: all, Phase: engine.PhaseWait, Run: r.pauseWarm})
		}
		if parts.Suite && svc.Suite != topology.NoSuite {
			if len(svc.Ports) > 0 && existing {
				add(engine.Step{Name: stepForward, Needs: gate, Phase: engine.PhaseWait, Run: r.forwardPorts})
				gate = append(gate, stepForward)
			}
			if len(svc.Ports) > 0 {
				add(engine.Step{Name: stepPorts, Needs: gate, Phase: engine.PhaseWait, Run: r.reachPorts})
				gate = append(gate, stepPorts)
			}
			suite := r.suite
			if done := t.suiteDone; done != nil {
				suite = func(ctx context.Context, w io.Writer) error {
					defer done()
					return r.suite(ctx, w)
				}
			}
			add(engine.Step{Name: "suite " + service, Needs: gate, Phase: engine.PhaseTest, Run: suite})
		}
	}
	if parts.Create || parts.Deploy {
		p.Finally = append(p.Finally, engine.Step{Name: stepDiagnose, OnFailure: true, Run: r.diagnose})
	}
	if parts.Deploy && t.Opts.Coverage {
		// After the diagnostics: flushing stops the pods whose logs they keep.
		p.Finally = append(p.Finally, engine.Step{Name: stepCoverage, Run: r.collectCoverage})
	}
	if existing && parts.Deploy {
		// What the suite is done with goes; without a suite (deploy:parallel)
		// the namespace is what the user asked for.
		keep := t.Opts.KeepCluster || !parts.Suite
		p.Finally = append(p.Finally, engine.Step{Name: stepRelease, Run: r.release(keep)})
	}
	if parts.Destroy && parts.Create && !t.Opts.KeepCluster && !existing {
		p.Finally = append(p.Finally, engine.Step{Name: stepDelete, Run: r.deleteIfMade})
	}
	if warm {
		// A warm cluster that did not get Ready is no use to anyone.
		p.Finally = append(p.Finally, engine.Step{Name: stepDelete, OnFailure: true, Run: r.deleteIfMade})
	}
	if err := p.Validate(); err != nil {
		r.close()
		return nil, nil, &InputError{err}
	}
	return p, r, nil
}

func (r *run) build(name string, img *topology.Image) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		// Settled once it has compiled, or found it need not.
		settled := sync.OnceFunc(r.compiling.done)
		defer settled()
		d, err := r.dockerClient(ctx)
		if err != nil {
			return err
		}
		b := &images.Builder{Docker: d, Root: r.cfg.Root, Timeout: r.cfg.BuildTimeout, Rebuild: r.cfg.Rebuild, Cover: r.cfg.Coverage, Compiled: settled}
		res, shared, err := r.memo.do(ctx, name, func() (images.Built, error) { return b.Build(ctx, name, img, w) })
		if err != nil {
			return err
		}
		if shared {
			fmt.Fprintf(w, "shared: %s was built earlier in this run\n", res.Ref)
		}
		r.setImage(name, res.Ref, res.ID)
		return nil
	}
}

// thirdParty lists the references of the images of imgs not built here.
func (r *run) thirdParty(imgs []string) []string {
	var refs []string
	for _, name := range imgs {
		if !r.topo.Images[name].Built() {
			refs = append(refs, r.refs[name])
		}
	}
	return refs
}

// bake derives the node image with the third-party images in it (built
// once per content, then reused): the cluster made from it needs no load
// of them, and their load steps find them on the node at once.
func (r *run) bake(refs []string) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		d, err := r.dockerClient(ctx)
		if err != nil {
			return err
		}
		base := r.baseNodeImage()
		baked, _, err := r.memo.do(ctx, "bake\x00"+base+"\x00"+strings.Join(refs, "\x00"), func() (images.Built, error) {
			b, err := r.scope.BakeNodeImage(ctx, d, base, refs, w)
			return images.Built{Ref: b.Ref}, err
		})
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.node = baked.Ref
		r.mu.Unlock()
		return nil
	}
}

// baseNodeImage is E2E_NODE_IMAGE, or kind's default.
func (r *run) baseNodeImage() string {
	if r.cfg.NodeImage != "" {
		return r.cfg.NodeImage
	}
	return defaults.Image
}

// nodeImage is the node image the run's cluster is made from: the baked
// one, or the base.
func (r *run) nodeImage() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.node != "" {
		return r.node
	}
	return r.baseNodeImage()
}

func (r *run) create(ctx context.Context, w io.Writer) error {
	if !r.warming && r.cfg.Warm && !r.cfg.ReuseCluster && !r.cfg.KeepCluster {
		if ok, err := r.claimWarm(ctx, w); ok || err != nil {
			return err
		}
	}
	name := r.cluster.Name
	if r.warming {
		name = r.scope.WarmName(r.name)
	}
	c, err := r.scope.Open(name, w)
	if err != nil {
		return err
	}
	got, err := c.Create(ctx, cluster.CreateOptions{NodeImage: r.nodeImage(), Ports: r.svc.Ports, Service: r.name, Reuse: r.cfg.ReuseCluster, AnyHostPorts: r.warming, Shape: r.topo.ClusterOf(r.svc), Registry: r.cfg.LocalRegistry || r.cfg.Registry == registry.Host}, w)
	if r.warming {
		r.mu.Lock()
		r.cluster = c
		r.mu.Unlock()
	}
	if got == cluster.Made {
		r.made.Store(true)
	}
	if err != nil {
		return r.tb.hint(err, r.name)
	}
	if got == cluster.Made {
		fmt.Fprintf(w, "created cluster %s; kubeconfig %s\n", c.Name, c.Kubeconfig)
	}
	if r.warming {
		return r.readHostPorts(ctx, c)
	}
	return nil
}

func (r *run) readHostPorts(ctx context.Context, c *cluster.Cluster) error {
	ports, err := c.HostPorts(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.ports = ports
	r.mu.Unlock()
	return nil
}

// shape hashes what a warm cluster must have been made from to serve this
// run: the node image (by ID: a rebuilt or re-baked one differs), the kind
// config, the namespace, how its nodes were paused. What the run can bring
// up to date (images, manifests) is not in it.
func (r *run) shape(ctx context.Context) (string, error) {
	d, err := r.dockerClient(ctx)
	if err != nil {
		return "", err
	}
	node := r.nodeImage()
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	img, err := d.ImageInspect(ictx, node)
	if err != nil {
		return "", fmt.Errorf("node image %s: %w", node, err)
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{img.ID, cluster.ConfigHash(r.svc.Ports, true, r.topo.ClusterOf(r.svc), r.cfg.LocalRegistry || r.cfg.Registry == registry.Host), r.topo.Namespace, r.name, cluster.PauseProtocol}, "\x00")))
	return hex.EncodeToString(sum[:12]), nil
}

// claimWarm claims the oldest warm cluster of the run's shape, unpauses it
// and makes it the run's cluster (deleted at the end, as one it made).
// Warm clusters of another shape or older than E2E_WARM_MAX_AGE are
// discarded. ok is false when there is none: the run creates one.
func (r *run) claimWarm(ctx context.Context, w io.Writer) (ok bool, err error) {
	warm, err := r.scope.ListWarm(r.name)
	if err != nil || len(warm) == 0 {
		return false, err
	}
	shape, err := r.shape(ctx)
	if err != nil {
		return false, err
	}
	// Stale ones go first; only a usable one is worth waiting for.
	var usable []cluster.Warm
	for _, wc := range warm {
		if wc.Claimed {
			continue
		}
		age := time.Since(wc.Made)
		if wc.Shape == shape && age <= r.cfg.WarmMaxAge {
			usable = append(usable, wc)
			continue
		}
		c, err := r.scope.Claim(wc.Name)
		if errors.Is(err, cluster.ErrClaimed) {
			continue // another run took it
		}
		if err != nil {
			return false, err
		}
		why := "its node image or kind config differ from this run's"
		if wc.Shape == shape {
			why = fmt.Sprintf("warmed %s ago, more than E2E_WARM_MAX_AGE=%s", age.Round(time.Second), r.cfg.WarmMaxAge)
		}
		fmt.Fprintf(w, "discarding warm cluster %s: %s\n", wc.Name, why)
		if err := c.Delete(context.WithoutCancel(ctx), w); err != nil {
			fmt.Fprintf(w, "deleting %s: %v\n", wc.Name, err)
		}
	}
	if len(usable) == 0 {
		return false, nil // the run creates one, beside its builds
	}
	// Measured here (2 cores): a one-line change's compile took 4.8 s
	// beside a paused cluster, 7.2 s beside an idle awake one and 10.3 s
	// beside one waking up. The claim comes after, so a compile error
	// leaves the warm cluster as it was.
	if t0 := time.Now(); r.compiling.pending() {
		if err := r.compiling.wait(ctx); err != nil {
			return false, err
		}
		fmt.Fprintf(w, "waited %s for the builds to compile or find their images cached\n", time.Since(t0).Round(10*time.Millisecond))
	}
	for _, wc := range usable {
		c, err := r.scope.Claim(wc.Name)
		if errors.Is(err, cluster.ErrClaimed) {
			continue // another run took it
		}
		if err != nil {
			return false, err
		}
		r.mu.Lock()
		r.cluster = c
		r.held = wc.Images // what a load would ask the waking nodes
		r.mu.Unlock()
		r.made.Store(true) // the run deletes it: a warm cluster serves one run
		t0 := time.Now()
		if err := c.Unpause(ctx); err != nil {
			return true, err
		}
		if err := r.readHostPorts(ctx, c); err != nil {
			return true, err
		}
		k, err := r.kubeClient()
		if err != nil {
			return true, err
		}
		if err := k.WaitAPI(ctx, 30*time.Second); err != nil {
			return true, fmt.Errorf("warm cluster %s after the unpause: %w", c.Name, err)
		}
		r.countProbes(k, c.Name)
		fmt.Fprintf(w, "claimed warm cluster %s (warmed %s ago); API answered %s after the unpause\n",
			c.Name, time.Since(wc.Made).Round(time.Second), time.Since(t0).Round(100*time.Millisecond))
		return true, nil
	}
	return false, nil
}

// countProbes reads, in the background, the kubelets' readiness probe
// counts after a claimed cluster's unpause: what the ready steps require
// to have grown (the status from before the pause says nothing of the pods
// now). A kubelet just unpaused can take seconds to answer (up to 17 s
// with two runs at once here); the loads and applies need not wait for it.
// close stops and waits for it.
func (r *run) countProbes(k *kube.Client, cluster string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	done := make(chan struct{})
	r.mu.Lock()
	r.probes = &probeCount{done: done, stop: cancel}
	pc := r.probes
	r.mu.Unlock()
	go func() {
		defer close(done)
		defer cancel()
		pc.since, pc.err = k.ReadinessProbesWithin(ctx, 30*time.Second)
		if pc.err != nil {
			pc.err = fmt.Errorf("warm cluster %s after the unpause: the kubelet's probe counters (docker exec %s-control-plane systemctl status kubelet): %w", cluster, cluster, pc.err)
		}
	}()
}

// countdown counts what is still to happen; wait returns when none is.
// Its zero value counts nothing.
type countdown struct {
	mu   sync.Mutex
	n    int
	none chan struct{} // closed when n falls to 0
}

func (c *countdown) add() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		c.none = make(chan struct{})
	}
	c.n++
}

func (c *countdown) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 {
		close(c.none)
	}
}

func (c *countdown) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n > 0
}

func (c *countdown) wait(ctx context.Context) error {
	c.mu.Lock()
	none := c.none
	n := c.n
	c.mu.Unlock()
	if n == 0 {
		return nil
	}
	select {
	case <-none:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// probeCount is countProbes's result, ready when done is closed.
type probeCount struct {
	done  chan struct{}
	stop  context.CancelFunc
	since map[string]kube.ProbeCount
	err   error
}

// pauseWarm records the run's cluster as warm and pauses its nodes.
func (r *run) pauseWarm(ctx context.Context, w io.Writer) error {
	shape, err := r.shape(ctx)
	if err != nil {
		return err
	}
	if err := r.cluster.MarkWarm(ctx, r.name, shape); err != nil {
		return err
	}
	fmt.Fprintf(w, "warm cluster %s paused (shape %s)\n", r.cluster.Name, shape)
	return nil
}

// deleteIfMade deletes the cluster at the end of a run only if this run
// made it: a cluster that existed before (cluster:create, a kept or reused
// one, one a refused run found) is not the run's to delete.
func (r *run) deleteIfMade(ctx context.Context, w io.Writer) error {
	if !r.made.Load() {
		fmt.Fprintf(w, "cluster %s was not made by this run: left as it was\n", r.cluster.Name)
		return nil
	}
	return r.cluster.Delete(ctx, w)
}

func (r *run) connect(ctx context.Context, w io.Writer) error {
	if err := r.cluster.EnsureKubeconfig(ctx); err != nil {
		return r.tb.hint(err, r.name)
	}
	fmt.Fprintf(w, "using cluster %s; kubeconfig %s\n", r.cluster.Name, r.cluster.Kubeconfig)
	return nil
}

// hostImage is an image of the run as the host's engine has it: a built
// image's reference and ID, or a third-party image's reference and, when
// the host holds a copy, its ID ("" when it does not).
func (r *run) hostImage(ctx context.Context, name string) (d *client.Client, ref, id string, err error) {
	if d, err = r.dockerClient(ctx); err != nil {
		return nil, "", "", err
	}
	ref, id = r.image(name)
	if id != "" {
		return d, ref, id, nil
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := d.ImageInspect(ictx, ref)
	if errdefs.IsNotFound(err) {
		return d, ref, "", nil
	}
	if err != nil {
		return nil, ref, "", fmt.Errorf("inspecting %s: %w", ref, err)
	}
	return d, ref, got.ID, nil
}

func (r *run) load(name string) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		d, ref, id, err := r.hostImage(ctx, name)
		if err != nil || id == "" {
			if id == "" && err == nil {
				fmt.Fprintf(w, "%s is not on this host: the node will pull it\n", ref)
			}
			return err
		}
		c, err := r.scope.Open(r.cluster.Name, w)
		if err != nil {
			return err
		}
		held, err := r.heldImages(ctx, c)
		if err == nil && held[cluster.NormalizeRef(ref)] == id {
			fmt.Fprintf(w, "%s: already holds %s (%s)\n", c.Name, ref, images.ShortID(id))
			return nil
		}
		return c.LoadImage(ctx, d, ref, id, held, w)
	}
}

// startRegistry starts testbed's local registry, or finds it running.
func (r *run) startRegistry(ctx context.Context, w io.Writer) error {
	d, err := r.dockerClient(ctx)
	if err != nil {
		return err
	}
	return registry.Ensure(ctx, d, r.cfg.Root, w)
}

// configureRegistry joins the registry to kind's network, points every
// node's containerd at it and publishes kind's local-registry-hosting
// ConfigMap.
func (r *run) configureRegistry(ctx context.Context, w io.Writer) error {
	d, err := r.dockerClient(ctx)
	if err != nil {
		return err
	}
	if err := registry.Connect(ctx, d); err != nil {
		return err
	}
	r.mu.Lock()
	c := r.cluster
	r.mu.Unlock()
	if err := c.ConfigureRegistry(ctx); err != nil {
		return err
	}
	k, err := r.kubeClient()
	if err != nil {
		return err
	}
	cm := kube.Object{Unstructured: &unstructured.Unstructured{Object: registry.HostingConfigMap()}, Source: "testbed"}
	if err := k.Apply(ctx, "kube-public", []kube.Object{cm}, w); err != nil {
		return err
	}
	fmt.Fprintf(w, "nodes of %s pull %s/* from %s\n", c.Name, registry.Host, registry.Container)
	return nil
}

// checkImages makes sure the registry holds the service's images at
// IMAGE_TAG (IMAGE_REGISTRY mode).
func (r *run) checkImages(imgs []string) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		var refs []string
		for _, name := range imgs {
			if r.topo.Images[name].Built() {
				ref, _ := r.image(name)
				refs = append(refs, ref)
			}
		}
		t0 := time.Now()
		if err := registry.Check(ctx, refs); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s holds %s (checked in %s)\n", r.cfg.Registry, strings.Join(refs, ", "), time.Since(t0).Round(time.Millisecond))
		return nil
	}
}

// push puts an image into the local registry (once per content) and makes
// the registry's reference the one the manifests run.
func (r *run) push(name string) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		d, ref, id, err := r.hostImage(ctx, name)
		if err != nil || id == "" {
			if id == "" && err == nil {
				fmt.Fprintf(w, "%s is not on this host: the nodes will pull it from its own registry\n", ref)
			}
			return err
		}
		remote := registry.Ref(name, id)
		if err := registry.Push(ctx, d, ref, remote, w); err != nil {
			return err
		}
		r.setImage(name, remote, id)
		return nil
	}
}

// heldImages lists, once per run, the images the cluster's nodes hold:
// on a warm or baked cluster most loads then find their image there
// without asking the node each time.
func (r *run) heldImages(ctx context.Context, c *cluster.Cluster) (map[string]string, error) {
	r.mu.Lock()
	held := r.held
	r.mu.Unlock()
	if held != nil {
		return held, nil
	}
	held, err := c.ImageIDs(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.held = held
	r.mu.Unlock()
	return held, nil
}

func (r *run) prepareNamespace(ctx context.Context, w io.Writer) error {
	k, err := r.kubeClient()
	if err != nil {
		return err
	}
	if r.shared != nil {
		// The run's own: created, never taken over.
		err = k.CreateNamespace(ctx, r.ns, map[string]string{"app.kubernetes.io/managed-by": kube.FieldManager, kube.RunLabel: r.ns})
		if err == nil {
			r.shared.mu.Lock()
			r.shared.made = true
			r.shared.mu.Unlock()
		}
	} else {
		err = k.EnsureNamespace(ctx, r.ns)
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", r.ns, err)
	}
	fmt.Fprintf(w, "namespace %s\n", r.ns)
	for _, name := range slices.Sorted(maps.Keys(r.topo.Secrets)) {
		keys := r.topo.Secrets[name].Generate
		created, err := k.EnsureSecret(ctx, r.ns, name, keys)
		if err != nil {
			return fmt.Errorf("secret %s: %w", name, err)
		}
		fmt.Fprintf(w, "secret %s %s\n", name, map[bool]string{true: "created with random " + strings.Join(keys, ", "), false: "kept"}[created])
	}
	return nil
}

// clusterDNS waits until the cluster's DNS answers: a fresh cluster
// answers the API before its DNS, and a pod that looks up a Service then
// fails. One ready kube-dns endpoint is what a lookup needs; waiting for the
// whole CoreDNS Deployment (two replicas, probed every 10 s) waited for
// the second replica too.
func (r *run) clusterDNS(ctx context.Context, w io.Writer) error {
	k, err := r.kubeClient()
	if err != nil {
		return err
	}
	t0 := time.Now()
	n, err := k.WaitServiceEndpoint(ctx, "kube-system", "kube-dns", clusterReadyTimeout)
	if err != nil && ctx.Err() == nil {
		if short := cluster.InotifyShort(0); short != "" {
			return fmt.Errorf("%w\n  likely why: %s", err, short)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "kube-dns has %d ready endpoint(s) after %s\n", n, time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// clusterReadyTimeout bounds the wait for the cluster's own parts (CoreDNS),
// as kind bounds its wait for the control plane: E2E_TIMEOUT is the
// platform's components' deadline, and a short one (a user hunting a stuck
// component) must not fail on CoreDNS, which took up to 27 s here on a
// loaded 2-core machine.
const clusterReadyTimeout = 3 * time.Minute

// reachPorts waits until every mapped port answers HTTP from the host: a
// Service can be Ready before kube-proxy has programmed its NodePort, and
// the suite comes in through the NodePort (seen: connection reset by peer
// on a cluster a few seconds old).
func (r *run) reachPorts(ctx context.Context, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	t0 := time.Now()
	for _, p := range r.svc.Ports {
		hp := r.hostPort(p)
		url := fmt.Sprintf("http://127.0.0.1:%d%s", hp, p.ProbePath())
		var last error
		told := false
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				fmt.Fprintf(w, "127.0.0.1:%d (%s) answered %d after %s\n", hp, p.Name, resp.StatusCode, time.Since(t0).Round(100*time.Millisecond))
				break
			}
			last = err
			// A port that does not answer for a while is usually a
			// Service without a ready pod: say which, and why, once while
			// waiting and again in the error.
			if !told && time.Since(t0) > 15*time.Second {
				told = true
				if why := r.whyNotServing(ctx, p); why != "" {
					fmt.Fprintf(w, "127.0.0.1:%d (%s) does not answer yet (%v):\n%s\n", hp, p.Name, err, why)
				}
			}
			select {
			case <-ctx.Done():
				via := fmt.Sprintf("NodePort %d", p.NodePort)
				if r.shared != nil {
					via = "a port-forward to the Service that had NodePort " + strconv.Itoa(p.NodePort)
				}
				err := fmt.Errorf("127.0.0.1:%d (%s, %s) does not answer: %v", hp, p.Name, via, last)
				if why := r.whyNotServing(context.WithoutCancel(ctx), p); why != "" {
					err = fmt.Errorf("%w\n%s", err, why)
				}
				return err
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// whyNotServing names the pods that keep a port's Service from answering
// ("" when it finds none).
func (r *run) whyNotServing(ctx context.Context, p topology.Port) string {
	k, err := r.kubeClient()
	if err != nil {
		return ""
	}
	service := ""
	if r.shared != nil {
		r.shared.mu.Lock()
		service = r.shared.nodePorts[int32(p.NodePort)].Service
		r.shared.mu.Unlock()
		if service == "" {
			return ""
		}
	}
	return k.WhyNotServing(ctx, r.ns, service, int32(p.NodePort))
}

// manifests is a component's rendered objects, namespaced for the cluster:
// its apply and its readiness wait use the same objects.
func (r *run) manifests(name string, c *topology.Component) ([]kube.Object, error) {
	objs, err := r.render(name, c)
	if err != nil {
		return nil, err
	}
	k, err := r.kubeClient()
	if err != nil {
		return nil, err
	}
	// Idempotent: it only sets or clears each object's namespace.
	if err := k.SetNamespace(objs, r.ns); err != nil {
		return nil, err
	}
	return objs, nil
}

// render renders a component's kustomize base with the run's image
// references, once per run. The cache is keyed by component, not by base:
// two components may share a base and differ in their images.
func (r *run) render(name string, c *topology.Component) ([]kube.Object, error) {
	r.mu.Lock()
	objs, ok := r.objs[name]
	r.mu.Unlock()
	if ok {
		return objs, nil
	}
	refs := map[string]string{}
	for _, img := range c.Images {
		ref, _ := r.image(img)
		if ref == "" {
			return nil, fmt.Errorf("image %s has no reference: it was not built in this run", img)
		}
		refs[img] = ref
	}
	objs, err := kube.Render(r.topo.Path(c.Manifests), r.ns, refs)
	if err != nil {
		return nil, err
	}
	var own []kube.Object
	var ports map[int32]kube.ServicePort
	if r.shared != nil {
		k, err := r.kubeClient()
		if err != nil {
			return nil, err
		}
		if own, ports, err = r.isolate(k, objs); err != nil {
			return nil, err
		}
	}
	if r.cfg.Coverage {
		kube.AddCoverDir(objs, r.builtRefs(c), cluster.CoverDir, coverMount)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cached, ok := r.objs[name]; ok { // rendered meanwhile by another step
		return cached, nil
	}
	r.objs[name] = objs
	if r.shared != nil {
		r.shared.keep(own, ports)
	}
	return objs, nil
}

func (r *run) apply(name string, c *topology.Component) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		objs, err := r.manifests(name, c)
		if err != nil {
			return err
		}
		k, err := r.kubeClient()
		if err != nil {
			return err
		}
		return k.Apply(ctx, r.ns, objs, w)
	}
}

func (r *run) ready(name string, c *topology.Component) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		objs, err := r.manifests(name, c)
		if err != nil {
			return err
		}
		k, err := r.kubeClient()
		if err != nil {
			return err
		}
		// In phased mode a component may start before what it needs: a
		// crash loop there is the design's cost, not a failure.
		strict := r.cfg.Mode != engine.Phased
		t0 := time.Now()
		if err := k.Wait(ctx, objs, kube.WaitOptions{Timeout: r.cfg.Timeout, FailOnCrashLoop: strict}, w); err != nil {
			return err
		}
		r.mu.Lock()
		pc := r.probes
		r.mu.Unlock()
		if pc == nil {
			return nil
		}
		// A claimed warm cluster: kstatus read the status from before the
		// pause; the pods must pass their readiness probes again.
		select {
		case <-pc.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if pc.err != nil {
			return pc.err
		}
		return k.WaitFreshReadiness(ctx, objs, pc.since, max(r.cfg.Timeout-time.Since(t0), 10*time.Second), w)
	}
}

// SuiteEnv is what a suite is told about its environment.
func (r *run) SuiteEnv() []string {
	env := []string{
		suiteenv.KubeconfigVar + "=" + r.kubeconfig(),
		suiteenv.NamespaceVar + "=" + r.ns,
	}
	for _, p := range r.svc.Ports {
		env = append(env, fmt.Sprintf("%s=http://127.0.0.1:%d", suiteenv.URLVar(p.Name), r.hostPort(p)))
	}
	return env
}

// suite runs the service's Ginkgo suite with go test: the go tool is a
// command, run with an argument list and no shell.
func (r *run) suite(ctx context.Context, w io.Writer) error {
	// go test's work directory (the test binary) lives in a directory
	// removed at the end, whatever happens to go test.
	tmp, err := os.MkdirTemp("", "testbed-suite-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// A command layer that exits at once (a second Ctrl-C) skips the
	// defers: it runs these first.
	var pgid atomic.Int64
	defer atexit.Register(func() {
		if p := pgid.Load(); p > 0 {
			_ = syscall.Kill(-int(p), syscall.SIGKILL)
		}
		os.RemoveAll(tmp)
	})()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "-timeout", r.cfg.SuiteTimeout.String(), r.svc.Suite)
	cmd.Dir = r.cfg.Root
	cmd.Env = append(append(os.Environ(), r.SuiteEnv()...), "GINKGO_NO_COLOR=TRUE", "GOTMPDIR="+tmp)
	count := newRanCounter()
	out := io.MultiWriter(w, count)
	cmd.Stdout, cmd.Stderr = out, out
	// The suite runs in its own process group. On Ctrl-C the whole group
	// gets SIGINT, as from a terminal: go test does not pass a signal on to
	// the test binary (seen: the binary outlived the run). 10 s later, and
	// in any case once go test has returned, what is left is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	pgid.Store(int64(cmd.Process.Pid))
	err = cmd.Wait()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // ESRCH when the group is gone
	}
	if err != nil {
		return fmt.Errorf("suite %s failed (%w): its output is above", r.svc.Suite, err)
	}
	if why := count.empty(); why != "" {
		return fmt.Errorf("suite %s ran nothing (%s): a suite that runs no test checks nothing; did a port or variable it needs change name?", r.svc.Suite, why)
	}
	return nil
}

// ranCounter reads a suite's output as it passes for what tells how much
// ran: Ginkgo's "Ran N of M Specs", go test's "no tests to run" and
// "[no test files]", and of plain tests, whether any ran rather than
// skipped.
type ranCounter struct {
	lineWriter
	mu      sync.Mutex
	specs   []int // N of each "Ran N of M Specs"
	noTests string
	// ran and skipped count go test's "--- PASS/FAIL" and "--- SKIP"
	// lines (a suite of plain tests).
	ran, skipped int
}

var ranSpecs = regexp.MustCompile(`^Ran (\d+) of \d+ Specs?\b`)

func newRanCounter() *ranCounter {
	c := &ranCounter{}
	c.lineWriter.line = c.see
	return c
}

// see reads one line of the suite's output.
func (c *ranCounter) see(line string) {
	line = strings.TrimSpace(line)
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := ranSpecs.FindStringSubmatch(line); m != nil {
		n, _ := strconv.Atoi(m[1])
		c.specs = append(c.specs, n)
	}
	if strings.Contains(line, "no tests to run") || strings.HasSuffix(line, "[no test files]") {
		c.noTests = line
	}
	switch {
	case strings.HasPrefix(line, "--- PASS:"), strings.HasPrefix(line, "--- FAIL:"):
		c.ran++
	case strings.HasPrefix(line, "--- SKIP:"):
		c.skipped++
	}
}

// empty says why the suite ran nothing, or "" when it ran something.
func (c *ranCounter) empty() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.noTests != "" {
		return c.noTests
	}
	if len(c.specs) > 0 && slices.Max(c.specs) == 0 {
		return "Ginkgo ran 0 specs"
	}
	if len(c.specs) == 0 && c.ran == 0 && c.skipped > 0 {
		return fmt.Sprintf("all %d test(s) skipped", c.skipped)
	}
	return ""
}

// artifacts is where a service's timelines, diagnostics and coverage go.
func artifacts(cfg Options, service string) string { return filepath.Join(cfg.Artifacts, service) }

func (r *run) diagnose(ctx context.Context, w io.Writer) error {
	if r.cluster != nil {
		ok, err := r.cluster.Exists(ctx)
		if err != nil || !ok {
			fmt.Fprintln(w, "no cluster to diagnose")
			return err
		}
	}
	dir := filepath.Join(artifacts(r.cfg, r.name), "diagnostics")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	var errs []error
	if k, err := r.kubeClient(); err == nil {
		errs = append(errs, k.Diagnose(ctx, r.ns, dir))
	} else {
		errs = append(errs, err)
	}
	if r.cluster != nil {
		errs = append(errs, r.cluster.CollectLogs(ctx, filepath.Join(dir, "kind")))
	}
	fmt.Fprintf(w, "diagnostics written to %s\n", dir)
	return errors.Join(errs...)
}
