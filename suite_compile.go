package testbed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/testbed-dev/testbed/internal/images"
)

// The suite's test binary, compiled while the environment comes up (go
// test -c) unless the store holds one of the same inputs: the suite step
// then only runs it, and go test's compile and link (about 3.5–5 s for
// gateway's suite here) leave the critical path.

const stepCompileSuite = "compile suite"

// suiteCache holds the suites compiled or found in the store in this
// process: a run's own, or e2e:watch's, kept between its runs until the
// suite's inputs change. Its dir is the go tool's work space, removed when
// the run ends; the binaries are in the store.
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

// compileTest runs go test -c for pkg, or finds its binary compiled
// earlier from the same inputs in the suite store (suiteStore). The go
// tool's work directory goes under dir.
func compileTest(ctx context.Context, root, pkg, dir string, w io.Writer) (compiledSuite, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	hash, pkgDir, err := images.GoInputs(ctx, root, os.Environ(), nil, pkg, true)
	if err != nil {
		return compiledSuite{}, err
	}
	store, err := suiteStore(root, pkg)
	if err != nil {
		return compiledSuite{}, err
	}
	// Named as go test names it (<package>.test), so that ps shows whose it is.
	name := path.Base(filepath.ToSlash(pkg)) + ".test"
	entry := filepath.Join(store, hash[:16])
	if s, ok := storedSuite(entry, name, pkgDir); ok {
		fmt.Fprintf(w, "cached: %s was compiled earlier from the same inputs (%s)\n", pkg, hash[:12])
		return s, nil
	}
	if err := os.MkdirAll(store, 0o755); err != nil {
		return compiledSuite{}, err
	}
	fresh, err := os.MkdirTemp(store, "new-")
	if err != nil {
		return compiledSuite{}, err
	}
	defer os.RemoveAll(fresh) // gone once renamed
	work, err := os.MkdirTemp(dir, "suite-")
	if err != nil {
		return compiledSuite{}, err
	}
	if err := goCommand(ctx, root, work, w, "test", "-c", "-o", filepath.Join(fresh, name), pkg); err != nil {
		return compiledSuite{}, err
	}
	if _, err := os.Stat(filepath.Join(fresh, name)); errors.Is(err, fs.ErrNotExist) {
		// go test said [no test files]: remembered as such.
		if err := os.WriteFile(filepath.Join(fresh, noTestFiles), nil, 0o644); err != nil {
			return compiledSuite{}, err
		}
	}
	// Another process may have stored the same inputs meanwhile: either
	// entry is the same suite.
	if err := os.Rename(fresh, entry); err != nil {
		if _, serr := os.Stat(entry); serr != nil {
			return compiledSuite{}, err
		}
	}
	pruneSuites(store, entry)
	s, ok := storedSuite(entry, name, pkgDir)
	if !ok {
		return compiledSuite{}, fmt.Errorf("suite store: %s holds no %s after the compile", entry, name)
	}
	fmt.Fprintf(w, "compiled %s in %s\n", pkg, time.Since(t0).Round(time.Millisecond))
	return s, nil
}

// noTestFiles marks a stored suite whose package has no test files.
const noTestFiles = "no-test-files"

// keptSuites is how many compiled versions of a suite the store keeps, the
// most recently used (a gateway suite binary is about 60 MB).
const keptSuites = 3

// suiteStore is the directory of a suite's compiled binaries, one entry
// per inputs hash, under the user's cache directory: kept between
// processes, so that a run whose suite has not changed (a warm cluster's,
// where the compile was the critical path: 4.7–5.9 s here) does not
// compile it again. One per checkout too: the binary holds its source
// paths, which a failure's report shows. "_suites" is no topology's name
// (a cluster name has no "_").
func suiteStore(root, pkg string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for compiled suites: %w", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs + "\x00" + pkg))
	return filepath.Join(base, "testbed", "_suites", path.Base(filepath.ToSlash(pkg))+"-"+hex.EncodeToString(sum[:8])), nil
}

// storedSuite is the suite stored in entry, to be run in pkgDir; ok is
// false when entry holds none. A hit marks the entry used.
func storedSuite(entry, name, pkgDir string) (compiledSuite, bool) {
	now := time.Now()
	if _, err := os.Stat(filepath.Join(entry, name)); err == nil {
		os.Chtimes(entry, now, now)
		return compiledSuite{bin: filepath.Join(entry, name), dir: pkgDir}, true
	}
	if _, err := os.Stat(filepath.Join(entry, noTestFiles)); err == nil {
		os.Chtimes(entry, now, now)
		return compiledSuite{dir: pkgDir}, true
	}
	return compiledSuite{}, false
}

// pruneSuites removes from store all but the keptSuites entries used
// last (keep among them), and what a killed compile left over an hour ago.
func pruneSuites(store, keep string) {
	des, err := os.ReadDir(store)
	if err != nil {
		return
	}
	type used struct {
		path string
		at   time.Time
	}
	var entries []used
	for _, de := range des {
		info, err := de.Info()
		if err != nil || !de.IsDir() {
			continue
		}
		p := filepath.Join(store, de.Name())
		if strings.HasPrefix(de.Name(), "new-") {
			if time.Since(info.ModTime()) > time.Hour {
				os.RemoveAll(p)
			}
			continue
		}
		if p != keep {
			entries = append(entries, used{p, info.ModTime()})
		}
	}
	slices.SortFunc(entries, func(a, b used) int { return b.at.Compare(a.at) })
	for i, e := range entries {
		if i >= keptSuites-1 {
			os.RemoveAll(e.path)
		}
	}
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
