package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/testbed-dev/testbed/engine"
)

// Knob is one environment variable testbed reads.
type Knob struct {
	Name, Default, Help string
}

// Knobs lists every environment variable, with its default; the README
// and `mage -l` help are checked against it.
var Knobs = []Knob{
	{"E2E_MODE", "dataflow", "scheduling: dataflow (each step when its needs are done), phased (barrier between phases) or sequential"},
	{"E2E_BUILD_CONCURRENCY", "1", "image builds at once (parallel builds ran out of memory in the project this replaces)"},
	{"E2E_REBUILD", "0", "1 rebuilds images even when one with the same inputs exists, without Docker's layer cache"},
	{"E2E_BUILD_TIMEOUT", "15m", "deadline of one image build, compile included"},
	{"E2E_KEEP_CLUSTER", "0", "1 keeps the cluster after e2e:<service> (then deploy:parallel re-applies to it); on an existing cluster, the run's namespace"},
	{"E2E_REUSE_CLUSTER", "0", "1 uses an existing cluster of the service instead of failing"},
	{"E2E_NODE_IMAGE", "kind's default", "kind node image"},
	{"E2E_BAKE", "1", "1 bakes a service's third-party images (PostgreSQL, Redis) into a node image derived from E2E_NODE_IMAGE (built once per content, tagged testbed/<name>-node:<hash>), so its clusters start with them; a run finding no bake of them yet does not wait for one: it loads them and bakes after a pass, for the next run; 0 loads them into each cluster"},
	{"E2E_WARM", "1", "1 lets e2e:<service> claim a warm cluster made by cluster:warm (when one of the same node image and kind config exists); 0 always creates a fresh cluster"},
	{"E2E_WARM_MAX_AGE", "24h", "a warm cluster older than this is discarded, not used"},
	{"E2E_TIMEOUT", "5m", "deadline of each component's readiness wait"},
	{"E2E_SUITE_TIMEOUT", "10m", "deadline of a service's E2E suite"},
	{"E2E_FOCUS", "(none)", "a regular expression: the suite runs only the specs (Ginkgo's -ginkgo.focus) or tests (go test -run) it matches; e2e:watch's way to rerun one spec"},
	{"E2E_ARTIFACTS", "_artifacts", "where timelines and diagnostics are written, per service"},
	{"E2E_PARALLEL", "from cores and memory", "services e2e:all runs at once (with E2E_ONE_CLUSTER=0: clusters; one per core and per 3 GiB available, at least 1)"},
	{"E2E_ONE_CLUSTER", "1", "1 makes e2e:all run its services on one kind cluster (one per cluster shape), each in a namespace of its own as on an existing cluster, reached through port-forwards; 0 gives each service a cluster of its own"},
	{"E2E_FAIL_FAST", "0", "1 makes e2e:all stop at the first failing service"},
	{"E2E_COVERAGE", "0", "1 builds the Go binaries with -cover and writes each service's coverage under E2E_ARTIFACTS/<service>/coverage"},
	{"KIND_EXPERIMENTAL_PROVIDER", "docker, else nerdctl, else podman", "the container runtime of kind's nodes, as for the kind CLI (docker, podman, nerdctl, finch, nerdctl.lima); node commands testbed runs (pause, port) use it too; image builds follow DOCKER_HOST"},
	{"E2E_TOPOLOGY", "deploy/topology.yaml", "the topology file, relative to the repository"},
	{"E2E_REGISTRY", "(none)", "local: nodes pull every image (built or third-party) from testbed's local registry (the container testbed-registry on 127.0.0.1:5001, started or reused), each pushed once, instead of side-loading it into each cluster"},
	{"E2E_EXISTING_KUBECONFIG", "(none)", "a kubeconfig file: run against that existing cluster (one testbed did not make) instead of a kind cluster: nothing is created, loaded or deleted there; each run gets its own namespace <namespace>-<random>, deleted at the end with the run's own copies of cluster-scoped objects (CRDs are applied and stay); the suite reaches its ports through port-forwards on 127.0.0.1; images come from IMAGE_REGISTRY"},
	{"E2E_EXISTING_CONTEXT", "the file's current context", "the context of E2E_EXISTING_KUBECONFIG to use"},
	{"IMAGE_REGISTRY", "(none)", "with IMAGE_TAG: run the images <registry>/<image>:<tag> from a registry; nothing is built or loaded"},
	{"IMAGE_TAG", "(none)", "the tag of the registry's images (IMAGE_REGISTRY)"},
}

// Options configure a Testbed. OptionsFromEnv fills them from the
// environment variables of Knobs, for command layers; a program may set
// them itself.
type Options struct {
	Root             string
	Mode             engine.Mode
	BuildConcurrency int
	Rebuild          bool
	BuildTimeout     time.Duration
	KeepCluster      bool
	ReuseCluster     bool
	NodeImage        string
	Bake             bool
	Warm             bool
	WarmMaxAge       time.Duration
	Timeout          time.Duration
	SuiteTimeout     time.Duration
	Focus            string // E2E_FOCUS: run only the suite's specs or tests it matches
	Artifacts        string
	Parallel         int  // 0: DefaultParallel
	OneCluster       bool // E2E_ONE_CLUSTER: e2e:all's services share a cluster
	FailFast         bool
	Coverage         bool
	Topology         string // path of the topology file
	Registry         string // IMAGE_REGISTRY: built images come from here
	LocalRegistry    bool   // E2E_REGISTRY=local: images go through testbed's local registry
	Tag              string // IMAGE_TAG
	Existing         string // E2E_EXISTING_KUBECONFIG: run on this existing cluster
	Context          string // E2E_EXISTING_CONTEXT: its context ("" the current one)
}

// OptionsFromEnv reads the knobs; root is the repository.
func OptionsFromEnv(root string) (Options, error) {
	c := Options{Root: root, NodeImage: os.Getenv("E2E_NODE_IMAGE"), Bake: true, Warm: true, OneCluster: true}
	var err error
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"E2E_BAKE", &c.Bake}, {"E2E_WARM", &c.Warm}, {"E2E_ONE_CLUSTER", &c.OneCluster}} {
		if os.Getenv(b.name) != "" {
			if *b.dst, err = boolVar(b.name); err != nil {
				return c, err
			}
		}
	}
	if c.Mode, err = engine.ParseMode(os.Getenv("E2E_MODE")); err != nil {
		return c, fmt.Errorf("E2E_MODE: %w", err)
	}
	if c.BuildConcurrency, err = intVar("E2E_BUILD_CONCURRENCY", 1); err != nil {
		return c, err
	}
	if c.BuildConcurrency < 1 {
		return c, fmt.Errorf("E2E_BUILD_CONCURRENCY=%d: it must be at least 1", c.BuildConcurrency)
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"E2E_REBUILD", &c.Rebuild}, {"E2E_KEEP_CLUSTER", &c.KeepCluster}, {"E2E_REUSE_CLUSTER", &c.ReuseCluster}} {
		if *b.dst, err = boolVar(b.name); err != nil {
			return c, err
		}
	}
	for _, d := range []struct {
		name string
		def  time.Duration
		dst  *time.Duration
	}{{"E2E_BUILD_TIMEOUT", 15 * time.Minute, &c.BuildTimeout}, {"E2E_TIMEOUT", 5 * time.Minute, &c.Timeout}, {"E2E_SUITE_TIMEOUT", 10 * time.Minute, &c.SuiteTimeout}, {"E2E_WARM_MAX_AGE", 24 * time.Hour, &c.WarmMaxAge}} {
		if *d.dst, err = durationVar(d.name, d.def); err != nil {
			return c, err
		}
	}
	if c.Parallel, err = intVar("E2E_PARALLEL", 0); err != nil {
		return c, err
	}
	if c.Parallel < 0 {
		return c, fmt.Errorf("E2E_PARALLEL=%d: it must be at least 1", c.Parallel)
	}
	if c.FailFast, err = boolVar("E2E_FAIL_FAST"); err != nil {
		return c, err
	}
	if c.Coverage, err = boolVar("E2E_COVERAGE"); err != nil {
		return c, err
	}
	if c.Focus = os.Getenv("E2E_FOCUS"); c.Focus != "" {
		if _, err := regexp.Compile(c.Focus); err != nil {
			return c, fmt.Errorf("E2E_FOCUS=%q is not a regular expression: %w", c.Focus, err)
		}
	}
	c.Registry, c.Tag = strings.TrimSuffix(os.Getenv("IMAGE_REGISTRY"), "/"), os.Getenv("IMAGE_TAG")
	switch v := os.Getenv("E2E_REGISTRY"); v {
	case "":
	case "local":
		c.LocalRegistry = true
	default:
		return c, fmt.Errorf("E2E_REGISTRY=%q: use local, or leave it unset (images are side-loaded)", v)
	}
	c.Existing, c.Context = os.Getenv("E2E_EXISTING_KUBECONFIG"), os.Getenv("E2E_EXISTING_CONTEXT")
	if c.Existing != "" {
		if c.Existing, err = filepath.Abs(c.Existing); err != nil {
			return c, fmt.Errorf("E2E_EXISTING_KUBECONFIG: %w", err)
		}
	}
	c.Topology = underRoot(root, os.Getenv("E2E_TOPOLOGY"), TopologyFile)
	c.Artifacts = underRoot(root, os.Getenv("E2E_ARTIFACTS"), "_artifacts")
	return c, c.Check()
}

// underRoot is path (def when empty), relative to root unless absolute.
func underRoot(root, path, def string) string {
	if path == "" {
		path = def
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(root, path)
	}
	return path
}

func intVar(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a number", name, v)
	}
	return n, nil
}

func boolVar(name string) (bool, error) {
	v := os.Getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: use 1 or 0", name, v)
	}
	return b, nil
}

func durationVar(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: use a positive duration such as 90s or 5m", name, v)
	}
	return d, nil
}
