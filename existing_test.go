package testbed

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/testbed-dev/testbed/internal/atexit"
)

// sharedKubeconfig writes a kubeconfig of one context whose server is
// never contacted by a plan.
func sharedKubeconfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config")
	cfg := `apiVersion: v1
kind: Config
current-context: team
clusters: [{name: team, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: team, context: {cluster: team, user: me}}]
users: [{name: me, user: {token: t}}]
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExistingClusterPlanCreatesLoadsAndDeletesNoCluster(t *testing.T) {
	tb := testbedForTest(t, Options{Existing: sharedKubeconfig(t), Registry: "registry.example.com/team", Tag: "v1"})
	p, r, err := tb.plan("gateway", PartsE2E, runEnv{out: tb.Out})
	if err != nil {
		t.Fatal(err)
	}
	dir := r.existing.dir
	r.close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the run's kubeconfig directory %s is left after close: %v", dir, err)
	}
	steps, finally := stepNames(p)
	for _, s := range steps {
		if strings.HasPrefix(s, "build ") || strings.HasPrefix(s, "load ") || s == stepCluster || s == stepBake || s == stepFindBaked || s == stepDNS || s == stepRegistryHosts {
			t.Errorf("a run on an existing cluster has the step %q", s)
		}
	}
	if !slices.Equal(finally, []string{stepDiagnose, stepRelease}) {
		t.Errorf("finally %v, want diagnostics, then the namespace released (and no cluster deleted)", finally)
	}
	if got := needsOf(p, "prepare namespace"); !slices.Equal(got, []string{stepExisting}) {
		t.Errorf("prepare namespace needs %v", got)
	}
	if got := needsOf(p, "apply gateway"); !slices.Equal(got, []string{"prepare namespace", "check registry images", "ready crds", "ready redis", "ready datastorage"}) {
		t.Errorf("apply gateway needs %v", got)
	}
	if got := needsOf(p, stepPorts); !slices.Contains(got, stepForward) {
		t.Errorf("reach host ports needs %v: it probes the port-forwards", got)
	}
	if !regexp.MustCompile(`^testbed-[a-z0-9]{5}$`).MatchString(r.ns) {
		t.Errorf("namespace %q, want testbed-<5 random>", r.ns)
	}
	_, r2, err := tb.plan("gateway", PartsE2E, runEnv{out: tb.Out})
	if err != nil {
		t.Fatal(err)
	}
	r2.close()
	if r2.ns == r.ns {
		t.Errorf("two runs got the namespace %s", r.ns)
	}
	// deploy:parallel keeps what it deployed.
	p, r, err = tb.plan("gateway", PartsDeploy, runEnv{out: tb.Out})
	if err != nil {
		t.Fatal(err)
	}
	r.close()
	if _, finally := stepNames(p); !slices.Equal(finally, []string{stepDiagnose, stepRelease}) {
		t.Errorf("deploy: finally %v", finally)
	}
}

func TestExistingClusterRefusesWhatItCannotDo(t *testing.T) {
	kc := sharedKubeconfig(t)
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no registry", Options{Existing: kc}, "set IMAGE_REGISTRY and IMAGE_TAG"},
		{"unknown context", Options{Existing: kc, Context: "prod", Registry: "r", Tag: "t"}, `no context "prod" (it has: team)`},
		{"no file", Options{Existing: kc + ".missing", Registry: "r", Tag: "t"}, "no such file"},
		{"reuse", Options{Existing: kc, Registry: "r", Tag: "t", ReuseCluster: true}, "unset E2E_REUSE_CLUSTER"},
		// Options a program sets itself get OptionsFromEnv's refusals.
		{"local registry", Options{Existing: kc, LocalRegistry: true}, "does not point the nodes"},
		{"context alone", Options{Context: "team"}, "which is not set"},
		{"two registries", Options{LocalRegistry: true, Registry: "r", Tag: "t"}, "choose one"},
	} {
		_, err := testbedForTest(t, tc.opts).Plan("gateway", PartsE2E)
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want bad input saying %q", tc.name, err, tc.want)
		}
	}
	tb := testbedForTest(t, Options{Existing: kc, Registry: "r", Tag: "t"})
	if _, _, err := tb.plan("gateway", partsWarm, runEnv{out: tb.Out, warming: true}); !errors.Is(err, ErrInput) {
		t.Errorf("warming on an existing cluster: %v, want bad input", err)
	}
}

// TestSharedKubeconfigCopyGoesOnASecondInterrupt: the one-context copy of
// the user's kubeconfig (their credentials) is removed by the exit
// cleanups a second Ctrl-C runs, and once close removed it, those no
// longer hold it.
func TestSharedKubeconfigCopyGoesOnASecondInterrupt(t *testing.T) {
	src := sharedKubeconfig(t)
	s, err := openExisting(Options{Existing: src, Registry: "registry.example", Tag: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if _, err := os.Stat(s.kubeconfig); err != nil {
		t.Fatalf("no copy: %v", err)
	}
	atexit.Run() // what a second Ctrl-C does before the process exits
	if _, err := os.Stat(s.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the copy of the user's kubeconfig outlives the exit cleanups: %s (%v)", s.dir, err)
	}
}
