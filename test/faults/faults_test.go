// Package faults provokes failures on purpose and checks how testbed ends:
// the exit code, the message (what failed, why, what to do), the time to
// fail, and that nothing is left behind: no kind node container, no
// cluster state directory, no temporary file, no process of the run.
//
// Each fault runs the real target binary (compiled from magefile.go once)
// against the services of test/faults/topology.yaml, on the real Docker
// engine and real kind clusters. It prints the table of faults at the end.
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
	// interruptWhen sends SIGINT once the output matches it ("" never);
	// interruptAfter waits that much longer first.
	interruptWhen  string
	interruptAfter time.Duration
	// terminal sends the SIGINT to the run's whole process group, as a
	// terminal's Ctrl-C does; otherwise only the target gets it, as from a
	// CI runner cancelling the job.
	terminal bool
	// while runs, concurrently, while the target runs (security checks).
	while func(t *testing.T, out *syncBuffer)

	exit   int
	says   []string      // substrings of the output
	within time.Duration // time to fail, from the start or from the SIGINT
	// clusters whose node containers and state must be gone at the end.
	clusters []string
}

// outcome is what a run showed.
type outcome struct {
	out       string
	artifacts string
	elapsed   time.Duration
}

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
	var sigAt time.Time
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var whileDone chan struct{}
	if f.while != nil {
		whileDone = make(chan struct{})
		go func() { defer close(whileDone); f.while(t, out) }()
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tick.C:
			if f.interruptWhen != "" && sigAt.IsZero() && strings.Contains(out.String(), f.interruptWhen) {
				time.Sleep(f.interruptAfter)
				sigAt = time.Now()
				pid := cmd.Process.Pid
				if f.terminal {
					pid = -pid
				}
				if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
					t.Errorf("SIGINT: %v", err)
				}
			}
		}
	}
	end := time.Now()
	if whileDone != nil {
		<-whileDone
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %v: %v", f.args, err)
	}
	o := outcome{out: out.String(), artifacts: artifacts, elapsed: end.Sub(start)}
	from := "from the start"
	if !sigAt.IsZero() {
		o.elapsed, from = end.Sub(sigAt), "from the SIGINT"
	} else if f.interruptWhen != "" {
		t.Errorf("the output never showed %q, so no SIGINT was sent", f.interruptWhen)
	}
	if code != f.exit {
		t.Errorf("exit code %d, want %d", code, f.exit)
	}
	for _, s := range f.says {
		if !strings.Contains(o.out, s) {
			t.Errorf("the output does not say %q", s)
		}
	}
	if o.elapsed > f.within {
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
	docker := testenv.RequireDocker(t)
	for _, c := range clusters {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "io.x-k8s.kind.cluster="+c))})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) > 0 {
			t.Errorf("cluster %s left %d node containers", c, len(cs))
		}
		dir, err := cluster.StateDir(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); err == nil {
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

func cname(service string) string { return cluster.NameFor(service) }

// TestFaultsWithoutCluster: failures that come before any cluster exists.
func TestFaultsWithoutCluster(t *testing.T) {
	testenv.RequireDocker(t)
	if testing.Short() {
		t.Skip("runs the targets: skipped under -short")
	}
	t.Run("unknown service", func(t *testing.T) {
		run(t, "unknown service", fault{args: []string{"e2e:run", "nosuch"}, exit: 2, within: 10 * time.Second,
			says: []string{`unknown service "nosuch": valid services are`, "quick-a"}})
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
	for _, tc := range []struct {
		name string
		f    fault
	}{
		{"node image absent", fault{args: []string{"e2e:run", "quick-c"}, env: []string{"E2E_NODE_IMAGE=testbed/no-such-node:v0"},
			exit: 1, within: 90 * time.Second, says: []string{"testbed/no-such-node:v0 could not be used: set E2E_NODE_IMAGE"}, clusters: []string{cname("quick-c")}}},
		{"build failure", fault{args: []string{"e2e:run", "build-failure"}, exit: 1, within: 2 * time.Minute,
			says: []string{"✗ build broken", "undefined: undefinedFunction"}, clusters: []string{cname("build-failure")}}},
		{"crashing pod", fault{args: []string{"e2e:run", "crash"}, exit: 1, within: 3 * time.Minute,
			says: []string{"CrashLoopBackOff", "a dependency is not ready", "what to do: the container keeps exiting"}, clusters: []string{cname("crash")}}},
		{"image missing in the cluster", fault{args: []string{"e2e:run", "missing-image"}, exit: 1, within: 3 * time.Minute,
			says: []string{"ErrImageNeverPull", "testbed/not-built-anywhere:v0", "what to do: the image is not on the node"}, clusters: []string{cname("missing-image")}}},
		{"manifest rejected", fault{args: []string{"e2e:run", "rejected"}, exit: 1, within: 3 * time.Minute,
			says: []string{"rejected.yaml: Service/rejected", "99999"}, clusters: []string{cname("rejected")}}},
		{"readiness timeout", fault{args: []string{"e2e:run", "never-ready"}, env: []string{"E2E_TIMEOUT=15s"}, exit: 1, within: 3 * time.Minute,
			says: []string{"not ready after 15s", "Deployment/never-ready: InProgress", "raise E2E_TIMEOUT"}, clusters: []string{cname("never-ready")}}},
		{"SIGINT (to the target only) during build", fault{args: []string{"e2e:run", "quick-d"}, env: []string{"GOCACHE=" + t.TempDir()}, exit: 130, within: 60 * time.Second,
			interruptWhen: "▶ build synthetic", interruptAfter: 2 * time.Second,
			says: []string{"interrupt: stopping and cleaning up", "deleted cluster testbed-quick-d"}, clusters: []string{cname("quick-d")}}},
		{"Ctrl-C (SIGINT to the process group) during deploy", fault{args: []string{"e2e:run", "never-ready-2"}, exit: 130, within: 90 * time.Second,
			interruptWhen: "▶ ready never-ready", interruptAfter: 8 * time.Second, terminal: true, while: checkSecurity("never-ready-2", nil),
			says: []string{"interrupt: stopping and cleaning up", "deleted cluster testbed-never-ready-2"}, clusters: []string{cname("never-ready-2")}}},
		{"Ctrl-C (SIGINT to the process group) during the suite", fault{args: []string{"e2e:run", "sleepy-suite"}, exit: 130, within: 90 * time.Second,
			interruptWhen: "▶ suite sleepy-suite", interruptAfter: 5 * time.Second, terminal: true, while: checkSecurity("sleepy-suite", []int{30990}),
			says: []string{"interrupt: stopping and cleaning up", "deleted cluster testbed-sleepy-suite"}, clusters: []string{cname("sleepy-suite")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := run(t, tc.name, tc.f)
			noSecretIn(t, o)
		})
	}
	t.Run("failure with E2E_KEEP_CLUSTER=1", func(t *testing.T) {
		t.Parallel()
		// Asked to keep it, the run leaves the cluster and says how to
		// delete it; that command then leaves nothing.
		run(t, "crashing pod, E2E_KEEP_CLUSTER=1", fault{args: []string{"e2e:run", "crash-kept"}, env: []string{"E2E_KEEP_CLUSTER=1"}, exit: 1, within: 3 * time.Minute,
			says: []string{"CrashLoopBackOff", "cluster testbed-crash-kept is left running", "delete it with: go run magefile.go cluster:delete crash-kept"}})
		run(t, "cluster:delete of the kept cluster", fault{args: []string{"cluster:delete", "crash-kept"}, exit: 0, within: time.Minute,
			says: []string{"deleted cluster testbed-crash-kept"}, clusters: []string{cname("crash-kept")}})
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
					run(t, "two runs at once: "+s, fault{args: []string{"e2e:run", s}, exit: 0, within: 4 * time.Minute,
						says: []string{"testbed: " + s + " passed"}, clusters: []string{cname(s)}})
				})
			}()
		}
		wg.Wait()
	})
}

var (
	passwordsMu sync.Mutex
	passwords   = map[string]string{} // service → password seen in its Secret
)

// checkSecurity waits for the service's cluster to have the database
// password Secret, then checks: the kubeconfig is 0600, the API server and
// the host ports listen on 127.0.0.1 only, and the password is random.
func checkSecurity(service string, hostPorts []int) func(*testing.T, *syncBuffer) {
	return func(t *testing.T, out *syncBuffer) {
		c, err := cluster.Open(cname(service), nil)
		if err != nil {
			t.Error(err)
			return
		}
		ended := regexp.MustCompile(`testbed: ` + regexp.QuoteMeta(service) + ` (passed|FAILED) in`)
		for !strings.Contains(out.String(), "secret postgresql-credentials created") {
			if ended.MatchString(out.String()) {
				t.Error("the run never created the password Secret")
				return
			}
			time.Sleep(200 * time.Millisecond)
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
		for _, p := range append(ports, hostPorts...) {
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
			t.Error(err)
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
				t.Errorf("clusters of %s and %s have the same password", other, service)
			}
		}
		passwords[service] = pw
	}
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

// noSecretIn fails when a password seen in a cluster appears in the run's
// output or in any file of its artifacts.
func noSecretIn(t *testing.T, o outcome) {
	t.Helper()
	passwordsMu.Lock()
	pws := make([]string, 0, len(passwords))
	for _, p := range passwords {
		pws = append(pws, p)
	}
	passwordsMu.Unlock()
	for _, pw := range pws {
		if strings.Contains(o.out, pw) {
			t.Error("the database password appears in the run's output")
		}
		filepath.Walk(o.artifacts, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(pw)) {
					t.Errorf("the database password appears in %s", p)
				}
			}
			return nil
		})
	}
}

// TestNoShellStrings: no command line is handed to a shell; commands run
// with argument lists, so no input can be read as shell syntax.
func TestNoShellStrings(t *testing.T) {
	shell := regexp.MustCompile(`"(ba|z|da)?sh",\s*"-c"`)
	var hits []string
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() && (info.Name() == ".git" || info.Name() == "_artifacts" || info.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if shell.Match(b) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) > 0 {
		t.Errorf("shell command strings in %v", hits)
	}
	if !shell.MatchString(`exec.Command("sh", "-c", cmd)`) {
		t.Fatal("the pattern does not catch a shell string")
	}
}
