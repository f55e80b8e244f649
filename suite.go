package testbed

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/testbed-dev/testbed/internal/atexit"
	"github.com/testbed-dev/testbed/suiteenv"
)

// The suite step: the environment a suite gets, running it, and reading its
// output to tell a suite that ran nothing.

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

// suite runs the service's suite: its binary compiled ahead, or go test
// (suiteCommand), with an argument list and no shell.
func (r *run) suite(ctx context.Context, w io.Writer) error {
	// go test's work directory (a pattern suite's test binaries) lives in
	// a directory removed at the end, whatever happens to go test.
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
	cmd, err := r.suiteCommand(ctx)
	if err != nil {
		return err
	}
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

// focusArgs are the test binary's flags that run only what the focus
// matches: Ginkgo's focus for a Ginkgo suite (-test.run would filter its
// one Test function), -test.run otherwise. Without a focus the suite's
// files are not read.
func focusArgs(focus, root, suite string) []string {
	switch {
	case focus == "":
		return nil
	case isGinkgo(root, suite):
		return []string{"-ginkgo.focus=" + focus}
	}
	return []string{"-test.run", focus}
}

// isGinkgo reports whether the suite's test files (a package directory,
// or a ./dir/... pattern) import Ginkgo.
func isGinkgo(root, suite string) bool {
	dir, all := strings.CutSuffix(suite, "/...")
	found := false
	_ = filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil || found:
			return fs.SkipAll
		case d.IsDir() && p != filepath.Join(root, dir) && !all:
			return fs.SkipDir
		case !strings.HasSuffix(p, "_test.go"):
			return nil
		}
		b, err := os.ReadFile(p)
		found = err == nil && strings.Contains(string(b), `"github.com/onsi/ginkgo/v2"`)
		return nil
	})
	return found
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
	// ./e2e/... may hold a package without tests beside one that ran:
	// only a suite in which nothing ran at all checked nothing.
	if c.ran > 0 || len(c.specs) > 0 && slices.Max(c.specs) > 0 {
		return ""
	}
	if c.noTests != "" {
		return c.noTests
	}
	if len(c.specs) > 0 {
		return "Ginkgo ran 0 specs"
	}
	if len(c.specs) == 0 && c.ran == 0 && c.skipped > 0 {
		return fmt.Sprintf("all %d test(s) skipped", c.skipped)
	}
	return ""
}
