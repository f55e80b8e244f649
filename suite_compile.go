package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// The suite's test binary, compiled while the environment comes up (go
// test -c): the suite step then only runs it, and go test's compile and
// link (about 3.5 s for gateway's suite here) leave the critical path.

const stepCompileSuite = "compile suite"

// suiteCache holds compiled suites: a run's own, removed when it ends, or
// e2e:watch's, kept between its runs until the suite's inputs change.
type suiteCache struct {
	dir  string
	bins onceMap[compiledSuite]
}

// compiledSuite is a suite's test binary and the directory go test would
// run it in (the package's); bin is "" for a package with no test files.
type compiledSuite struct {
	bin, dir string
}

func newSuiteCache() (*suiteCache, error) {
	dir, err := os.MkdirTemp("", "testbed-suites-")
	return &suiteCache{dir: dir}, err
}

func (c *suiteCache) remove() { os.RemoveAll(c.dir) }

// precompiled reports whether a suite is compiled ahead: one package. A
// pattern (./e2e/...) is several test binaries, which go test builds and
// runs itself.
func precompiled(suite string) bool { return !strings.Contains(suite, "...") }

// compileSuite compiles the service's suite into the run's suite cache.
func (r *run) compileSuite(ctx context.Context, w io.Writer) error {
	r.mu.Lock()
	if r.suites == nil {
		c, err := newSuiteCache()
		if err != nil {
			r.mu.Unlock()
			return err
		}
		r.suites, r.ownSuites = c, true
	}
	cache := r.suites
	r.mu.Unlock()
	s, reused, err := cache.bins.do(ctx, r.svc.Suite, func() (compiledSuite, error) {
		return compileTest(ctx, r.cfg.Root, r.svc.Suite, cache.dir, w)
	})
	if err != nil {
		return err
	}
	if reused {
		fmt.Fprintf(w, "%s is compiled already: its inputs have not changed\n", r.svc.Suite)
	}
	r.mu.Lock()
	r.suiteBin = s
	r.mu.Unlock()
	return nil
}

// compileTest runs go test -c for pkg, writing its binary under dir.
func compileTest(ctx context.Context, root, pkg, dir string, w io.Writer) (compiledSuite, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	out, err := os.MkdirTemp(dir, "suite-")
	if err != nil {
		return compiledSuite{}, err
	}
	t0 := time.Now()
	// Named as go test names it (<package>.test), so that ps shows whose it is.
	bin := filepath.Join(out, path.Base(filepath.ToSlash(pkg))+".test")
	if err := goCommand(ctx, root, out, w, "test", "-c", "-o", bin, pkg); err != nil {
		return compiledSuite{}, err
	}
	var d bytes.Buffer
	if err := goCommand(ctx, root, out, &d, "list", "-f", "{{.Dir}}", pkg); err != nil {
		return compiledSuite{}, err
	}
	s := compiledSuite{bin: bin, dir: strings.TrimSpace(d.String())}
	if _, err := os.Stat(bin); errors.Is(err, fs.ErrNotExist) {
		s.bin = "" // go test said [no test files]
	}
	fmt.Fprintf(w, "compiled %s in %s\n", pkg, time.Since(t0).Round(time.Millisecond))
	return s, nil
}

// goCommand runs the go tool in root, its output to w. Its work
// directory goes in tmp, which the caller removes: interrupted, go build
// leaves its work directory behind (as images' compile says).
func goCommand(ctx context.Context, root, tmp string, w io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOTMPDIR="+tmp)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// suiteCommand is the command that runs the suite: its compiled binary
// (in the package's directory, as go test runs it) when there is one,
// else go test.
func (r *run) suiteCommand(ctx context.Context) (*exec.Cmd, error) {
	focus := focusArgs(r.cfg.Focus, r.cfg.Root, r.svc.Suite)
	if !precompiled(r.svc.Suite) {
		args := []string{"test", "-count=1", "-v", "-timeout", r.cfg.SuiteTimeout.String(), r.svc.Suite}
		if len(focus) > 0 {
			args = append(append(args, "-args"), focus...)
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = r.cfg.Root
		return cmd, nil
	}
	r.mu.Lock()
	s := r.suiteBin
	r.mu.Unlock()
	if s.bin == "" {
		return nil, fmt.Errorf("suite %s ran nothing ([no test files]): a suite that runs no test checks nothing", r.svc.Suite)
	}
	args := append([]string{"-test.v", "-test.timeout", r.cfg.SuiteTimeout.String()}, focus...)
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Dir = s.dir
	return cmd, nil
}
