//go:build faults

// Package faults provokes failures on purpose and checks how testbed ends:
// the exit code, the message (what failed, why, what to do), the time to
// fail, and that nothing is left behind: no kind node container, no
// cluster state directory, no temporary file, no process of the run.
//
// Each fault runs the real target binary (compiled from magefile.go once)
// against the services of test/faults/topology.yaml, on the real Docker
// engine and real kind clusters. It prints the table of faults at the end.
//
// It creates a dozen clusters and takes longer than go test's default
// 10 min on a 2-core machine, so it is not part of `go test ./...`: it runs
// behind the build tag `faults`, with its own timeout, as .ci/run does:
//
//	go test -race -tags faults -timeout 45m ./test/faults
//
// Times to fail are figures it prints, measured from the step that meets
// the fault, not assertions: they depend on the machine's speed.
package faults

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/internal/testenv"
)

const (
	root     = "../.."
	topology = "test/faults/topology.yaml"
)

var (
	binOnce sync.Once
	bin     string
	binErr  error

	tableMu sync.Mutex
	table   []row
)

type row struct {
	fault, exit, timeToFail, note string
}

func TestMain(m *testing.M) {
	// The targets this suite runs would append their gantt charts to a
	// GitHub Actions job's summary: these runs are testbed's tests, not E2E.
	os.Unsetenv("GITHUB_STEP_SUMMARY")
	code := m.Run()
	if len(table) > 0 {
		fmt.Println("\n| fault | exit | time to fail | seen |\n|---|---|---|---|")
		for _, r := range table {
			fmt.Printf("| %s | %s | %s | %s |\n", r.fault, r.exit, r.timeToFail, r.note)
		}
	}
	if bin != "" {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// target compiles the targets into one binary, as `go run magefile.go`
// would run them, but keeping their exit codes (go run turns each into 1).
func target(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "testbed-faults-")
		if err != nil {
			binErr = err
			return
		}
		bin = filepath.Join(dir, "testbed-mage")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "run", "magefile.go", "-compile", bin)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("compiling the targets: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bin
}

// fault is one provoked failure and what must be seen.
type fault struct {
	args []string
	env  []string
	// interruptWhen sends SIGINT once it holds (polled every 100 ms on the
	// run's output and processes; nil never).
	interruptWhen func(r *running) bool
	// sigtermAfter, if set, sends SIGTERM that long after the SIGINT, as
	// a CI runner cancelling a job does.
	sigtermAfter time.Duration
	// terminal sends the signals to the run's whole process group, as a
	// terminal's Ctrl-C does; otherwise only the target gets them, as from
	// a CI runner cancelling the job.
	terminal bool
	// deploys: the run must reach its namespace (and its password Secret),
	// which the security check then reads.
	deploys   bool
	hostPorts []int // host ports the security check finds on 127.0.0.1 only

	exit int
	says []string // substrings of the output
	// within bounds the time to fail of faults met before any cluster
	// exists (bad input, Docker unreachable): zero means no bound, and
	// faults with a cluster have none (their time is a printed figure).
	within time.Duration
	// failStep names the step that meets the fault: its own duration, from
	// its start to the run reporting it, is the time to fail printed.
	failStep string
	// clusters whose node containers and state must be gone at the end.
	clusters []string
}

// running is a run in progress, for interruptWhen.
type running struct {
	out    *syncBuffer
	marker string
	sec    <-chan struct{} // closed when the security check has finished
}

// outputHas is an interruptWhen: the output shows s.
func outputHas(s string) func(*running) bool {
	return func(r *running) bool { return strings.Contains(r.out.String(), s) }
}

// processRuns is an interruptWhen: a process of the run whose command line
// contains s is alive (a compiler, a suite's test binary).
func processRuns(s string) func(*running) bool {
	return func(r *running) bool {
		for _, p := range processesWith(r.marker) {
			if strings.Contains(p, s) {
				return true
			}
		}
		return false
	}
}

// securityChecked is an interruptWhen: the security check has read the
// cluster (it needs the cluster alive).
func securityChecked(r *running) bool {
	select {
	case <-r.sec:
		return true
	default:
		return false
	}
}

func all(conds ...func(*running) bool) func(*running) bool {
	return func(r *running) bool {
		for _, c := range conds {
			if !c(r) {
				return false
			}
		}
		return true
	}
}

// outcome is what a run showed.
type outcome struct {
	out       string
	artifacts string
	elapsed   time.Duration
}

var (
	outcomesMu sync.Mutex
	outcomes   []outcome // every run's, for the final secret check
)

func run(t *testing.T, name string, f fault) outcome {
	t.Helper()
	tmp := t.TempDir() // the run's TMPDIR: must be empty at the end
	artifacts := t.TempDir()
	marker := fmt.Sprintf("TESTBED_FAULT_RUN=%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, target(t), f.args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "E2E_TOPOLOGY="+topology, "TMPDIR="+tmp, "E2E_ARTIFACTS="+artifacts, marker, "GITHUB_ACTIONS=")
	cmd.Env = append(cmd.Env, f.env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() { done <- cmd.Wait(); close(exited) }()
	sec := make(chan struct{})
	go func() { defer close(sec); checkSecurity(t, serviceOf(f.args), f, out, exited) }()
	r := &running{out: out, marker: marker, sec: sec}
	signal := func(s syscall.Signal) {
		pid := cmd.Process.Pid
		if f.terminal {
			pid = -pid
		}
		if err := syscall.Kill(pid, s); err != nil && err != syscall.ESRCH {
			t.Errorf("%s: %v", s, err)
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var sigAt time.Time
	var sigterm <-chan time.Time
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-sigterm:
			signal(syscall.SIGTERM)
			sigterm = nil
		case <-tick.C:
			if f.interruptWhen != nil && sigAt.IsZero() && f.interruptWhen(r) {
				sigAt = time.Now()
				signal(syscall.SIGINT)
				if f.sigtermAfter > 0 {
					sigterm = time.After(f.sigtermAfter)
				}
			}
		}
	}
	end := time.Now()
	<-sec
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %v: %v", f.args, err)
	}
	o := outcome{out: out.String(), artifacts: artifacts, elapsed: end.Sub(start)}
	outcomesMu.Lock()
	outcomes = append(outcomes, o)
	outcomesMu.Unlock()
	from := "from the start"
	switch {
	case !sigAt.IsZero():
		o.elapsed, from = end.Sub(sigAt), "from the SIGINT to the exit"
	case f.interruptWhen != nil:
		t.Errorf("the run never reached the moment to interrupt it, so no SIGINT was sent")
	case f.failStep != "":
		if d, ok := stepTime(o.out, f.failStep); ok {
			o.elapsed, from = d, "in step "+f.failStep+", from its start to the report"
		} else {
			t.Errorf("the output has no failed step %q", f.failStep)
		}
	}
	if code != f.exit {
		t.Errorf("exit code %d, want %d", code, f.exit)
	}
	for _, s := range f.says {
		if !strings.Contains(o.out, s) {
			t.Errorf("the output does not say %q", s)
		}
	}
	if f.within > 0 && o.elapsed > f.within {
		t.Errorf("took %s %s, want under %s", o.elapsed.Round(100*time.Millisecond), from, f.within)
	}
	leftovers(t, tmp, marker, f.clusters)
	if t.Failed() {
		t.Logf("output of %v:\n%s", f.args, o.out)
	}
	tableMu.Lock()
	table = append(table, row{name, strconv.Itoa(code), fmt.Sprintf("%.1f s %s", o.elapsed.Seconds(), from), firstMatch(o.out, f.says)})
	tableMu.Unlock()
	return o
}

// stepTime reads a failed step's duration from its line "✗ <step> (<d>)".
func stepTime(out, step string) (time.Duration, bool) {
	m := regexp.MustCompile(`✗ ` + regexp.QuoteMeta(step) + ` \(([^)]+)\)`).FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	d, err := time.ParseDuration(m[1])
	return d, err == nil
}

// serviceOf is the service a target's arguments name ("" for none).
func serviceOf(args []string) string {
	if len(args) >= 2 && (args[0] == "e2e:run" || strings.HasPrefix(args[0], "cluster:") || strings.HasPrefix(args[0], "bench:")) {
		return args[1]
	}
	return ""
}

// tail is the end of a run's output, for a report.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// leftovers fails the test for anything the run left behind.
func leftovers(t *testing.T, tmp, marker string, clusters []string) {
	t.Helper()
	if es, _ := os.ReadDir(tmp); len(es) > 0 {
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		t.Errorf("temporary files left in TMPDIR: %v", names)
	}
	if procs := processesWith(marker); len(procs) > 0 {
		t.Errorf("processes of the run still alive: %v", procs)
	}
	if len(clusters) == 0 {
		return
	}
	for _, c := range clusters {
		if cs := nodeContainers(t, c); len(cs) > 0 {
			t.Errorf("cluster %s left %d node containers", c, len(cs))
		}
		if dir := stateDir(t, c); dir != "" {
			t.Errorf("cluster state %s left behind", dir)
		}
	}
}

// processesWith lists the processes whose environment holds the marker:
// every process a run starts inherits it.
func processesWith(marker string) []string {
	var found []string
	ps, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range ps {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(marker)) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
		found = append(found, filepath.Base(filepath.Dir(p))+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return found
}

func firstMatch(out string, says []string) string {
	for _, l := range strings.Split(out, "\n") {
		for _, s := range says {
			if strings.Contains(l, s) {
				l = strings.TrimSpace(strings.TrimLeft(l, "│└┌✗ "))
				if len(l) > 110 {
					l = l[:110] + "…"
				}
				return "`" + strings.ReplaceAll(l, "|", "\\|") + "`"
			}
		}
	}
	return ""
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// scope is the reference platform's (deploy/topology.yaml names it testbed).
const scope = cluster.Scope("testbed")

func cname(service string) string { return scope.NameFor(service) }

// stateDir is the cluster's state directory if it exists, else "".
func stateDir(t *testing.T, name string) string {
	t.Helper()
	dir, err := scope.StateDir(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

// TestFaultsWithoutCluster: failures that come before any cluster exists.
func TestFaultsWithoutCluster(t *testing.T) {
	testenv.RequireDocker(t)
	t.Run("unknown service", func(t *testing.T) {
		run(t, "unknown service", fault{args: []string{"e2e:run", "nosuch"}, exit: 2, within: 10 * time.Second,
			says: []string{`unknown service "nosuch": valid services are`, "quick-a"}})
	})
	t.Run("unknown service in bench:setup", func(t *testing.T) {
		run(t, "unknown service in bench:setup", fault{args: []string{"bench:setup", "nosuch", "1"}, exit: 2, within: 10 * time.Second,
			says: []string{`unknown service "nosuch"`}})
	})
	t.Run("unknown service in bench:deploy", func(t *testing.T) {
		run(t, "unknown service in bench:deploy", fault{args: []string{"bench:deploy", "nosuch", "1"}, exit: 2, within: 10 * time.Second,
			says: []string{`unknown service "nosuch"`}})
	})
	t.Run("missing topology file", func(t *testing.T) {
		run(t, "missing topology file", fault{args: []string{"e2e:run", "quick-a"}, env: []string{"E2E_TOPOLOGY=test/faults/no-such-topology.yaml"}, exit: 2, within: 10 * time.Second,
			says: []string{"reading the topology", "no-such-topology.yaml"}})
	})
	t.Run("topology with a cycle", func(t *testing.T) {
		run(t, "topology with a cycle", fault{args: []string{"e2e:run", "a"}, env: []string{"E2E_TOPOLOGY=test/faults/cycle/topology.yaml"},
			exit: 2, within: 10 * time.Second, says: []string{"components form a cycle of needs: a → b → a"}})
	})
	t.Run("bad knob", func(t *testing.T) {
		run(t, "bad knob (E2E_TIMEOUT=5)", fault{args: []string{"e2e:run", "quick-a"}, env: []string{"E2E_TIMEOUT=5"},
			exit: 2, within: 10 * time.Second, says: []string{`E2E_TIMEOUT="5": use a positive duration such as 90s or 5m`}})
	})
	t.Run("docker unreachable", func(t *testing.T) {
		run(t, "Docker unreachable", fault{args: []string{"e2e:run", "quick-a"}, env: []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"},
			exit: 1, within: 30 * time.Second, says: []string{"does not answer", "start Docker, or set DOCKER_HOST"}})
	})
	t.Run("port in use", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:30990")
		if err != nil {
			t.Fatalf("taking the port first: %v", err)
		}
		defer l.Close()
		run(t, "host port in use", fault{args: []string{"e2e:run", "sleepy-suite"}, exit: 1, within: 30 * time.Second,
			says: []string{"host port 127.0.0.1:30990", "is in use: stop what listens there"}, clusters: []string{cname("sleepy-suite")}})
	})
}

// TestFaultsWithCluster: failures in a real kind cluster, two at a time.
func TestFaultsWithCluster(t *testing.T) {
	testenv.RequireKind(t)
	// After every subtest: no password of any run in any run's output.
	t.Cleanup(func() { noSecretInAnyRun(t) })
	for _, tc := range []struct {
		name string
		f    fault
	}{
		{"node image absent", fault{args: []string{"e2e:run", "quick-c"}, env: []string{"E2E_NODE_IMAGE=testbed/no-such-node:v0"},
			exit: 1, failStep: "create cluster", says: []string{"testbed/no-such-node:v0 could not be used: set E2E_NODE_IMAGE"}, clusters: []string{cname("quick-c")}}},
		{"build failure", fault{args: []string{"e2e:run", "build-failure"}, exit: 1, failStep: "build broken",
			says: []string{"✗ build broken", "undefined: undefinedFunction"}, clusters: []string{cname("build-failure")}}},
		{"crashing pod", fault{args: []string{"e2e:run", "crash"}, exit: 1, failStep: "ready crash", deploys: true,
			says: []string{"CrashLoopBackOff", "a dependency is not ready", "what to do: the container keeps exiting"}, clusters: []string{cname("crash")}}},
		{"image missing in the cluster", fault{args: []string{"e2e:run", "missing-image"}, exit: 1, failStep: "ready missing-image", deploys: true,
			says: []string{"ErrImageNeverPull", "testbed/not-built-anywhere:v0", "what to do: the image is not on the node"}, clusters: []string{cname("missing-image")}}},
		{"manifest rejected", fault{args: []string{"e2e:run", "rejected"}, exit: 1, failStep: "apply rejected", deploys: true,
			says: []string{"rejected.yaml: Service/rejected", "99999"}, clusters: []string{cname("rejected")}}},
		{"readiness timeout", fault{args: []string{"e2e:run", "never-ready"}, env: []string{"E2E_TIMEOUT=15s"}, exit: 1, failStep: "ready never-ready", deploys: true,
			says: []string{"not ready after 15s", "Deployment/never-ready: InProgress", "raise E2E_TIMEOUT"}, clusters: []string{cname("never-ready")}}},
		{"SIGINT (to the target only) during build", fault{args: []string{"e2e:run", "quick-d"}, env: []string{"GOCACHE=" + t.TempDir(), "E2E_REBUILD=1"}, exit: 130,
			interruptWhen: all(outputHas("▶ build synthetic"), processRuns("compile")),
			says:          []string{"interrupt: stopping and cleaning up", "deleted cluster testbed-quick-d"}, clusters: []string{cname("quick-d")}}},
		{"Ctrl-C (SIGINT to the process group) during deploy", fault{args: []string{"e2e:run", "never-ready-2"}, exit: 130, deploys: true,
			interruptWhen: all(outputHas("▶ ready never-ready"), securityChecked), terminal: true,
			says: []string{"interrupt: stopping and cleaning up", "deleted cluster testbed-never-ready-2"}, clusters: []string{cname("never-ready-2")}}},
		{"CI cancel: SIGINT, then SIGTERM 7.5 s later, during deploy", fault{args: []string{"e2e:run", "never-ready-3"}, exit: 130, deploys: true,
			interruptWhen: all(outputHas("▶ ready never-ready"), securityChecked), sigtermAfter: 7500 * time.Millisecond,
			says: []string{"interrupt: stopping and cleaning up", "deleted cluster testbed-never-ready-3"}, clusters: []string{cname("never-ready-3")}}},
		{"Ctrl-C (SIGINT to the process group) during the suite", fault{args: []string{"e2e:run", "sleepy-suite"}, exit: 130, deploys: true, hostPorts: []int{30990},
			interruptWhen: all(outputHas("▶ suite sleepy-suite"), processRuns("sleepsuite.test"), securityChecked), terminal: true,
			says: []string{"interrupt: stopping and cleaning up", "deleted cluster testbed-sleepy-suite"}, clusters: []string{cname("sleepy-suite")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run(t, tc.name, tc.f)
		})
	}
	t.Run("a refused run leaves a kept cluster as it was", func(t *testing.T) {
		t.Parallel()
		// Asked to keep it, the run leaves the cluster and says how to
		// delete it; a run that then refuses the cluster leaves it as it
		// was; cluster:delete then leaves nothing.
		run(t, "crashing pod, E2E_KEEP_CLUSTER=1", fault{args: []string{"e2e:run", "crash-kept"}, env: []string{"E2E_KEEP_CLUSTER=1"}, exit: 1, deploys: true,
			failStep: "ready crash", says: []string{"CrashLoopBackOff", "cluster testbed-crash-kept is left running", "delete it with: go run magefile.go cluster:delete crash-kept"}})
		survivesRefusals(t, "crash-kept")
		run(t, "cluster:delete of the kept cluster", fault{args: []string{"cluster:delete", "crash-kept"}, exit: 0,
			says: []string{"deleted cluster testbed-crash-kept"}, clusters: []string{cname("crash-kept")}})
	})
	t.Run("a refused run leaves a cluster made by cluster:create as it was", func(t *testing.T) {
		t.Parallel()
		run(t, "cluster:create", fault{args: []string{"cluster:create", "refuse-made"}, exit: 0, says: []string{"created cluster testbed-refuse-made"}})
		survivesRefusals(t, "refuse-made")
		run(t, "cluster:delete of the made cluster", fault{args: []string{"cluster:delete", "refuse-made"}, exit: 0,
			says: []string{"deleted cluster testbed-refuse-made"}, clusters: []string{cname("refuse-made")}})
	})
	t.Run("two runs at once", func(t *testing.T) {
		t.Parallel()
		var wg sync.WaitGroup
		for _, s := range []string{"quick-a", "quick-b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Subtests, so that each run reports its own failures.
				t.Run(s, func(t *testing.T) {
					run(t, "two runs at once: "+s, fault{args: []string{"e2e:run", s}, exit: 0, deploys: true,
						says: []string{"testbed: " + s + " passed"}, clusters: []string{cname(s)}})
				})
			}()
		}
		wg.Wait()
	})
}

// survivesRefusals runs every target that deletes a cluster it made
// against an existing cluster it did not make: each refuses (or leaves it),
// and the cluster's node container is the same one, still running.
func survivesRefusals(t *testing.T, service string) {
	t.Helper()
	before := nodeContainers(t, cname(service))
	if len(before) == 0 {
		t.Fatalf("no node container of %s to protect", cname(service))
	}
	for _, args := range [][]string{{"e2e:run", service}, {"bench:soak", service, "1"}, {"bench:setup", service, "1"}} {
		says := []string{"cluster testbed-" + service + " already exists"}
		if args[0] == "e2e:run" {
			says = append(says, "cluster testbed-"+service+" was not made by this run: left as it was")
		}
		run(t, fmt.Sprintf("%v against a cluster it did not make", args), fault{args: args, exit: 1, says: says})
		if after := nodeContainers(t, cname(service)); !slices.Equal(after, before) {
			t.Fatalf("%v changed the cluster it refused: node containers %v, then %v", args, before, after)
		}
	}
}

// nodeContainers lists a cluster's node containers as "ID state" lines.
func nodeContainers(t *testing.T, clusterName string) []string {
	t.Helper()
	docker := testenv.RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "io.x-k8s.kind.cluster="+clusterName))})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.ID+" "+c.State)
	}
	slices.Sort(out)
	return out
}

var (
	passwordsMu sync.Mutex
	passwords   = map[string]string{} // run → password seen in its Secret
)

// secretLine is what the run prints once its namespace and the random
// password Secret its topology declares (secrets:) exist.
const secretLine = "secret postgresql-credentials created"

// checkSecurity watches a run: once it prints secretLine (every run that
// reaches its namespace does), it checks that the kubeconfig is 0600, that
// the API server and the host ports listen on 127.0.0.1 only, and reads the
// password from the Secret: random, and different in every run. It ends
// when the run ends; a run that must deploy and ended without the Secret
// fails the test with the run's tail.
func checkSecurity(t *testing.T, service string, f fault, out *syncBuffer, exited <-chan struct{}) {
	for !strings.Contains(out.String(), secretLine) {
		select {
		case <-exited:
			if f.deploys {
				t.Errorf("the run ended without creating its password Secret; its last lines:\n%s", tail(out.String()))
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	c, err := scope.Open(cname(service), nil)
	if err != nil {
		t.Error(err)
		return
	}
	fi, err := os.Stat(c.Kubeconfig)
	if err != nil {
		t.Error(err)
		return
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig %s has mode %o, want 600", c.Kubeconfig, fi.Mode().Perm())
	}
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Error(err)
		return
	}
	var ports []int
	for _, cl := range cfg.Clusters {
		u, err := url.Parse(cl.Server)
		if err != nil {
			t.Error(err)
			continue
		}
		if u.Hostname() != "127.0.0.1" {
			t.Errorf("API server at %s, want 127.0.0.1", cl.Server)
		}
		p, _ := strconv.Atoi(u.Port())
		ports = append(ports, p)
	}
	for _, p := range append(ports, f.hostPorts...) {
		addrs := listeners(p)
		if len(addrs) == 0 {
			t.Errorf("nothing listens on port %d", p)
		}
		for _, a := range addrs {
			if a != "127.0.0.1" {
				t.Errorf("port %d listens on %s: want 127.0.0.1 only", p, a)
			}
		}
	}
	k, err := kube.NewClient(c.Kubeconfig)
	if err != nil {
		t.Error(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sec, err := k.Core.CoreV1().Secrets("faults").Get(ctx, "postgresql-credentials", metav1.GetOptions{})
	if err != nil {
		t.Errorf("reading the password Secret of %s: %v", service, err)
		return
	}
	pw := string(sec.Data["password"])
	if len(pw) < 16 {
		t.Errorf("password of %d characters", len(pw))
	}
	passwordsMu.Lock()
	defer passwordsMu.Unlock()
	for other, p := range passwords {
		if p == pw {
			t.Errorf("the runs %s and %s have the same password", other, t.Name())
		}
	}
	passwords[t.Name()] = pw
}

// listeners returns the local addresses of the TCP sockets listening on
// port, from /proc/net/tcp and tcp6.
func listeners(port int) []string {
	var addrs []string
	hexPort := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(l)
			if len(fs) < 4 || fs[3] != "0A" || !strings.HasSuffix(fs[1], hexPort) { // 0A: LISTEN
				continue
			}
			addrs = append(addrs, procAddr(strings.TrimSuffix(fs[1], hexPort)))
		}
	}
	return addrs
}

// procAddr decodes /proc/net/tcp's little-endian hex address.
func procAddr(h string) string {
	b := make([]byte, len(h)/2)
	for i := range b {
		v, _ := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		b[i] = byte(v)
	}
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	ip := net.IP(b)
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.String()
}

// noSecretInAnyRun fails when a password seen in any run's cluster appears
// in any run's output or in any file of its artifacts.
func noSecretInAnyRun(t *testing.T) {
	t.Helper()
	passwordsMu.Lock()
	pws := make([]string, 0, len(passwords))
	for _, p := range passwords {
		pws = append(pws, p)
	}
	passwordsMu.Unlock()
	outcomesMu.Lock()
	defer outcomesMu.Unlock()
	if len(pws) == 0 {
		t.Error("no run's password Secret was read: the secret check checked nothing")
	}
	for _, o := range outcomes {
		for _, pw := range pws {
			if strings.Contains(o.out, pw) {
				t.Error("a database password appears in a run's output")
			}
			filepath.Walk(o.artifacts, func(p string, info os.FileInfo, err error) error {
				if err == nil && info.Mode().IsRegular() {
					if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(pw)) {
						t.Errorf("a database password appears in %s", p)
					}
				}
				return nil
			})
		}
	}
	t.Logf("no password of %d run(s) in the output or artifacts of %d run(s)", len(pws), len(outcomes))
}
