package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/topology"
)

func testbedForTest(t *testing.T, cfg Options) *Testbed {
	t.Helper()
	root := "."
	topo, err := topology.Load(filepath.Join(root, TopologyFile), root)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BuildConcurrency == 0 {
		cfg.BuildConcurrency = 1
	}
	return &Testbed{Opts: cfg, Topo: topo}
}

// fixture is a Testbed over the topology of testdata/<name>.
func fixture(t *testing.T, name string) *Testbed {
	t.Helper()
	dir := filepath.Join("testdata", name)
	topo, err := topology.Load(filepath.Join(dir, "topology.yaml"), dir)
	if err != nil {
		t.Fatal(err)
	}
	return &Testbed{Opts: Options{BuildConcurrency: 1}, Topo: topo}
}

func needsOf(p *engine.Plan, name string) []string {
	for _, s := range p.Steps {
		if s.Name == name {
			return s.Needs
		}
	}
	return nil
}

func TestE2EPlanAppliesEachComponentWhenItsNeedsAreReady(t *testing.T) {
	tb := testbedForTest(t, Options{})
	p, err := tb.Plan("datastorage", PartsE2E)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"apply postgresql":  {"prepare namespace", "load postgresql"},
		"apply migrations":  {"prepare namespace", "load datastorage", "ready postgresql", "ready cluster DNS"},
		"apply datastorage": {"prepare namespace", "load datastorage", "ready migrations", "ready redis", "ready cluster DNS"},
		"load datastorage":  {"create cluster", "build datastorage"},
		"reach host ports":  {"ready postgresql", "ready redis", "ready migrations", "ready datastorage"},
		"suite datastorage": {"ready postgresql", "ready redis", "ready migrations", "ready datastorage", "reach host ports", "compile suite"},
		"compile suite":     nil,
	}
	for step, needs := range want {
		if got := needsOf(p, step); !slices.Equal(got, needs) {
			t.Errorf("%s needs %v, want %v", step, got, needs)
		}
	}
	var finally []string
	for _, s := range p.Finally {
		finally = append(finally, s.Name)
	}
	if !slices.Equal(finally, []string{"collect diagnostics", "delete cluster"}) {
		t.Errorf("finally steps %v: diagnostics must come before teardown", finally)
	}
}

func TestKeepClusterDropsTeardown(t *testing.T) {
	tb := testbedForTest(t, Options{KeepCluster: true})
	p, err := tb.Plan("datastorage", PartsE2E)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Finally {
		if s.Name == "delete cluster" {
			t.Error("E2E_KEEP_CLUSTER=1 still deletes the cluster")
		}
	}
}

func TestDeployPlanUsesTheExistingCluster(t *testing.T) {
	tb := testbedForTest(t, Options{})
	p, err := tb.Plan("datastorage", PartsDeploy)
	if err != nil {
		t.Fatal(err)
	}
	steps, _ := stepNames(p)
	if slices.Contains(steps, "create cluster") || !slices.Contains(steps, "connect cluster") {
		t.Errorf("deploy plan should connect to the existing cluster, not create one: steps %v", steps)
	}
	if !slices.Contains(needsOf(p, "prepare namespace"), "connect cluster") {
		t.Errorf("prepare namespace needs %v, want connect cluster among them", needsOf(p, "prepare namespace"))
	}
	if len(p.Finally) != 1 || p.Finally[0].Name != "collect diagnostics" {
		t.Errorf("deploy plan must not delete the cluster: %v", p.Finally)
	}
}

func TestUnknownService(t *testing.T) {
	tb := testbedForTest(t, Options{})
	if _, err := tb.Plan("nope", PartsE2E); err == nil {
		t.Fatal("an unknown service made a plan")
	}
}

func TestANinthServiceGetsAPlanFromItsTopologyAlone(t *testing.T) {
	tb := fixture(t, "ninth")
	p, err := tb.Plan("ninth", PartsE2E)
	if err != nil {
		t.Fatal(err)
	}
	for step, needs := range map[string][]string{
		"apply ninth": {"prepare namespace", "load ninth", "ready cache", "ready cluster DNS"},
		"suite ninth": {"ready cache", "ready ninth", "reach host ports", "compile suite"},
	} {
		if got := needsOf(p, step); !slices.Equal(got, needs) {
			t.Errorf("%s needs %v, want %v", step, got, needs)
		}
	}
}

func stepNames(p *engine.Plan) (steps, finally []string) {
	for _, s := range p.Steps {
		steps = append(steps, s.Name)
	}
	for _, s := range p.Finally {
		finally = append(finally, s.Name)
	}
	return steps, finally
}

func TestRegistryModeBuildsAndLoadsNothingOfOurs(t *testing.T) {
	tb := testbedForTest(t, Options{Registry: "registry.example.com/team", Tag: "v1.2.3"})
	p, r, err := tb.plan("gateway", PartsE2E, runEnv{out: tb.Out})
	if err != nil {
		t.Fatal(err)
	}
	steps, _ := stepNames(p)
	for _, s := range steps {
		if strings.HasPrefix(s, "build ") || s == "load datastorage" || s == "load gateway" {
			t.Errorf("registry mode has the step %q", s)
		}
	}
	if !slices.Contains(steps, "load postgresql") {
		t.Error("third-party images are still side-loaded from the host in registry mode")
	}
	if got := needsOf(p, "apply gateway"); !slices.Equal(got, []string{"prepare namespace", "check registry images", "ready crds", "ready redis", "ready datastorage", "ready cluster DNS"}) {
		t.Errorf("apply gateway needs %v", got)
	}
	if got := needsOf(p, "check registry images"); len(got) != 0 {
		t.Errorf("check registry images needs %v: it must run at once", got)
	}
	if ref, _ := r.image("gateway"); ref != "registry.example.com/team/gateway:v1.2.3" {
		t.Errorf("gateway runs %q", ref)
	}
	// What the plan's apply and wait steps render, not a map built here.
	objs, err := r.render("gateway", tb.Topo.Components["gateway"])
	if err != nil {
		t.Fatal(err)
	}
	if got := containerImages(objs, "gateway"); !slices.Equal(got, []string{"registry.example.com/team/gateway:v1.2.3"}) {
		t.Errorf("the rendered gateway Deployment runs %v, want the registry's image", got)
	}
}

func TestLocalRegistryModePushesInsteadOfLoading(t *testing.T) {
	tb := testbedForTest(t, Options{LocalRegistry: true, Bake: true, BuildConcurrency: 1})
	p, err := tb.Plan("gateway", PartsE2E)
	if err != nil {
		t.Fatal(err)
	}
	steps, finally := stepNames(p)
	for _, s := range append(steps, finally...) {
		if strings.HasPrefix(s, "load ") || s == stepBake || s == stepFindBaked || s == stepBakeNext {
			t.Errorf("local registry mode has the step %q: nothing is side-loaded or baked", s)
		}
	}
	for _, img := range []string{"gateway", "datastorage", "postgresql", "redis"} {
		if !slices.Contains(steps, "push "+img) {
			t.Errorf("no push %s in %v", img, steps)
		}
	}
	if got := needsOf(p, "push gateway"); !slices.Equal(got, []string{"start registry", "build gateway"}) {
		t.Errorf("push gateway needs %v: the registry and the build, not the cluster", got)
	}
	if got := needsOf(p, "apply gateway"); !slices.Equal(got, []string{"prepare namespace", "point nodes at registry", "push gateway", "ready crds", "ready redis", "ready datastorage", "ready cluster DNS"}) {
		t.Errorf("apply gateway needs %v", got)
	}
	if got := needsOf(p, "point nodes at registry"); !slices.Equal(got, []string{"create cluster", "start registry"}) {
		t.Errorf("point nodes at registry needs %v", got)
	}
}

// containerImages lists the images of a Deployment's containers.
func containerImages(objs []kube.Object, deployment string) []string {
	var images []string
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetName() != deployment {
			continue
		}
		cs, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "template", "spec", "containers")
		list, _ := cs.([]any)
		for _, c := range list {
			images = append(images, c.(map[string]any)["image"].(string))
		}
	}
	return images
}

// TestComponentsSharingABaseRenderTheirOwnImages: two components over one
// kustomize base, each with its own image, get their own render (the cache
// was keyed by the base: the second got the first one's images).
func TestComponentsSharingABaseRenderTheirOwnImages(t *testing.T) {
	tb := fixture(t, "sharedbase")
	topo := tb.Topo
	_, r, err := tb.plan("both", PartsE2E, runEnv{out: tb.Out})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ comp, want string }{
		{"blue", "example.com/blue:1"}, {"green", "example.com/green:2"}, {"blue", "example.com/blue:1"},
	} {
		objs, err := r.render(tc.comp, topo.Components[tc.comp])
		if err != nil {
			t.Fatal(err)
		}
		if got := containerImages(objs, "app"); !slices.Contains(got, tc.want) {
			t.Errorf("component %s renders images %v, want %s among them", tc.comp, got, tc.want)
		}
	}
}

// TestDockerClientIsMadeOutsideTheRunsLock: while one step waits for a
// Docker engine that does not answer (a 10 s ping), the others go on.
func TestDockerClientIsMadeOutsideTheRunsLock(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var connsMu sync.Mutex
	go func() { // accepts and never answers
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns = append(conns, c)
			connsMu.Unlock()
		}
	}()
	defer func() {
		connsMu.Lock()
		defer connsMu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	t.Setenv("DOCKER_HOST", "tcp://"+l.Addr().String())
	tb := testbedForTest(t, Options{})
	_, r, err := tb.plan("datastorage", PartsE2E, runEnv{out: tb.Out})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pinged := make(chan error, 1)
	go func() {
		_, err := r.dockerClient(ctx)
		pinged <- err
	}()
	time.Sleep(300 * time.Millisecond) // the ping is under way
	got := make(chan struct{})
	go func() {
		r.image("postgresql")
		close(got)
	}()
	select {
	case <-got:
	case <-time.After(3 * time.Second):
		t.Error("another step waited on the run's lock while the Docker client was pinged")
	}
	cancel()
	if err := <-pinged; err == nil {
		t.Error("a Docker engine that never answers was accepted")
	}
	<-got
}

func TestCoveragePlanPreparesTheNodeAndFlushesBeforeTeardown(t *testing.T) {
	tb := testbedForTest(t, Options{Coverage: true})
	p, err := tb.Plan("datastorage", PartsE2E)
	if err != nil {
		t.Fatal(err)
	}
	if got := needsOf(p, "apply datastorage"); !slices.Contains(got, "prepare coverage dir") {
		t.Errorf("apply datastorage needs %v: the coverage directory must exist first", got)
	}
	if got := needsOf(p, "apply postgresql"); slices.Contains(got, "prepare coverage dir") {
		t.Errorf("apply postgresql (not built here) waits for the coverage directory: %v", got)
	}
	_, finally := stepNames(p)
	if !slices.Equal(finally, []string{"collect diagnostics", "collect coverage", "delete cluster"}) {
		t.Errorf("finally steps %v", finally)
	}
}

// TestRanCounterSeesASuiteThatRanNothing: the suite step fails a suite whose
// output says it ran nothing, and passes one that ran something.
func TestRanCounterSeesASuiteThatRanNothing(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		empty     bool
	}{
		{"ginkgo ran specs", "Running Suite: x\nWill run 4 of 4 specs\n\nRan 4 of 4 Specs in 1.2 seconds\nSUCCESS! -- 4 Passed\n--- PASS: TestX (1.2s)\nok  \tx\t1.3s\n", false},
		{"ginkgo skipped everything", "Will run 4 of 4 specs\nS [SKIPPED] in [BeforeSuite]\nRan 0 of 4 Specs in 0.001 seconds\nSUCCESS! -- 0 Passed | 0 Failed | 0 Pending | 4 Skipped\nok  \tx\t0.1s\n", true},
		{"no tests", "testing: warning: no tests to run\nPASS\nok  \tx\t0.01s [no tests to run]\n", true},
		{"no test files", "?   \tgithub.com/x/y\t[no test files]\n", true},
		{"plain go test", "=== RUN   TestA\n--- PASS: TestA (0.00s)\nPASS\nok  \tx\t0.01s\n", false},
		{"plain tests, every one skipped", "=== RUN   TestA\n    a_test.go:9: E2E_KUBECONFIG is not set\n--- SKIP: TestA (0.00s)\n=== RUN   TestB\n--- SKIP: TestB (0.00s)\nPASS\nok  \tx\t0.01s\n", true},
		{"plain tests, one ran", "=== RUN   TestA\n--- SKIP: TestA (0.00s)\n=== RUN   TestB\n--- PASS: TestB (0.00s)\nPASS\nok  \tx\t0.01s\n", false},
		{"./e2e/...: one package without tests beside one that ran", "?   \tx/e2e/helpers\t[no test files]\n=== RUN   TestA\n--- PASS: TestA (0.00s)\nPASS\nok  \tx/e2e/web\t0.01s\n", false},
		{"./e2e/...: Ginkgo ran specs, another package has none", "?   \tx/e2e/helpers\t[no test files]\nRan 4 of 4 Specs in 1.2 seconds\nok  \tx/e2e/web\t1.3s\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRanCounter()
			// Written in odd pieces, as a pipe hands them over.
			for i := 0; i < len(tc.out); i += 7 {
				c.Write([]byte(tc.out[i:min(i+7, len(tc.out))]))
			}
			if got := c.empty() != ""; got != tc.empty {
				t.Errorf("empty = %v (%q), want %v", got, c.empty(), tc.empty)
			}
		})
	}
}

// FuzzRanCounter: no output makes the counter panic, and a suite whose
// output shows a test that passed never counts as one that ran nothing.
func FuzzRanCounter(f *testing.F) {
	for _, s := range []string{"Ran 4 of 4 Specs in 1.2 seconds\n", "?   \tx\t[no test files]\n", "--- SKIP: TestA (0.00s)\n", "Ran 99999999999999999999 of 1 Specs\n", "\x00\r\n--- PASS:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		c := newRanCounter()
		c.Write([]byte(out))
		c.Write([]byte("\n"))
		why := c.empty()
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "--- PASS:") && why != "" {
				t.Fatalf("a test passed, yet the suite ran nothing (%s):\n%q", why, out)
			}
		}
	})
}

// TestHintsNameTheCommandLayersCommands: the library's messages advise the
// commands the command layer gave it, and none when it gave none.
func TestHintsNameTheCommandLayersCommands(t *testing.T) {
	exists := fmt.Errorf("cluster testbed-x %w: delete it", cluster.ErrExists)
	tb := &Testbed{}
	if got := tb.hint(exists, "x"); got != exists {
		t.Errorf("no commands: %v", got)
	}
	tb.Commands = Commands{Delete: "mage cluster:delete %s", Create: "mage cluster:create %s"}
	if got := tb.hint(exists, "x"); !strings.Contains(got.Error(), "run: mage cluster:delete x") || !errors.Is(got, cluster.ErrExists) {
		t.Errorf("exists: %v", got)
	}
	missing := fmt.Errorf("cluster testbed-x %w", cluster.ErrMissing)
	if got := tb.hint(missing, "x"); !strings.Contains(got.Error(), "run: mage cluster:create x") {
		t.Errorf("missing: %v", got)
	}
	// A cluster a live run holds: deleting it would break that run.
	busy := fmt.Errorf("cluster testbed-x %w and is made by a run that is still running (%w)", cluster.ErrExists, cluster.ErrBusy)
	if got := tb.hint(busy, "x"); strings.Contains(got.Error(), "cluster:delete") {
		t.Errorf("busy: %v advises deleting the cluster of a run under way", got)
	}
}

// A warm cluster is paused only once every step before the pause is done:
// holmesgpt-api's component needs no Service name, so nothing waits for
// CoreDNS, and a pause while CoreDNS starts froze the DNS step until it
// timed out (cluster:warm all, 2026-11-29).
func TestWarmPauseWaitsForEveryStep(t *testing.T) {
	tb := testbedForTest(t, Options{})
	p, r, err := tb.plan("holmesgpt-api", partsWarm, runEnv{out: tb.Out, warming: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	needs := needsOf(p, stepPauseWarm)
	for _, s := range p.Steps {
		if s.Name != stepPauseWarm && !slices.Contains(needs, s.Name) {
			t.Errorf("%q does not wait for %q", stepPauseWarm, s.Name)
		}
	}
	if !slices.Contains(needs, stepDNS) {
		t.Errorf("%q needs %v: not %q", stepPauseWarm, needs, stepDNS)
	}
}
