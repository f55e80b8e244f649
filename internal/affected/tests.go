package affected

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Which packages' tests a change can change: a pull request runs those,
// a push to main and the merge queue run every package's.

// A Package is one package of the module as its tests see it.
type Package struct {
	ImportPath string
	Dir        string   // slash-separated, relative to the module's root
	Sources    []string // built into the package: Go, cgo and embedded files, relative to Dir
	Tests      []string // built into its tests only: _test.go and their embedded files
	// Uses: the directories of the module's packages linked into its test
	// binary, its own included. Empty: the package has no tests.
	Uses []string
	// BuildsModule: its tests build the module's own commands (go run,
	// go build): a change to any package's sources can change them.
	BuildsModule bool
}

// Tests returns the import paths of the packages whose tests the changed
// files (slash-separated, relative to the root) can change, each with the
// first file that makes it run. It fails closed: a file that is not a Go
// source, an embedded file or under the testdata of a package the list
// knows (go.mod, a workflow, a manifest, a README, a file a build
// constraint leaves out) means every package's tests, and all says which
// file that was.
func Tests(pkgs []Package, files []string) (run map[string]string, all string) {
	run = map[string]string{}
	add := func(p *Package, file string) {
		if len(p.Uses) > 0 {
			if _, ok := run[p.ImportPath]; !ok {
				run[p.ImportPath] = file
			}
		}
	}
	byDir := map[string]*Package{}
	for i := range pkgs {
		byDir[pkgs[i].Dir] = &pkgs[i]
	}
	for _, f := range files {
		f = clean(f)
		p, rel := owner(byDir, f)
		switch {
		case p == nil:
			return nil, f
		case slices.Contains(p.Tests, rel) || strings.HasPrefix(rel, "testdata/"):
			add(p, f)
		case slices.Contains(p.Sources, rel):
			for i := range pkgs {
				if q := &pkgs[i]; q.BuildsModule || slices.Contains(q.Uses, p.Dir) {
					add(q, f)
				}
			}
		default:
			return nil, f // beside a package but not built into it, or left out by a build constraint
		}
	}
	return run, ""
}

// owner is the package whose directory holds file (the nearest one above
// it: an embedded file or testdata may be deeper), and file relative to it.
func owner(byDir map[string]*Package, file string) (*Package, string) {
	for dir := path.Dir(file); ; dir = path.Dir(dir) {
		if p := byDir[dir]; p != nil {
			rel := strings.TrimPrefix(file, dir+"/")
			if dir == "." {
				rel = file
			}
			return p, rel
		}
		if dir == "." || dir == "/" {
			return nil, ""
		}
	}
}

// ListPackages describes the packages of the module at root (go list
// -test ./...). buildsModule names the directories of the packages whose
// tests build the module's commands themselves. A package go list cannot
// load (a missing import, a syntax error) is an error, not a package
// without tests: its tests would silently not run.
func ListPackages(ctx context.Context, root string, buildsModule ...string) ([]Package, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-test",
		"-json=ImportPath,Dir,ForTest,GoFiles,CgoFiles,EmbedFiles,TestGoFiles,XTestGoFiles,TestEmbedFiles,XTestEmbedFiles,Deps",
		"./...")
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list -test ./...: %w\n%s", err, strings.TrimSpace(stderr.String()))
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	return readPackages(&stdout, absRoot, buildsModule)
}

// listed is one entry of go list -json.
type listed struct {
	ImportPath, Dir, ForTest                                         string
	GoFiles, CgoFiles, EmbedFiles                                    []string
	TestGoFiles, XTestGoFiles, TestEmbedFiles, XTestEmbedFiles, Deps []string
}

func readPackages(r io.Reader, absRoot string, buildsModule []string) ([]Package, error) {
	var pkgs []Package
	index := map[string]int{} // import path → pkgs
	var mains []listed        // the test binaries ("x.test")
	dec := json.NewDecoder(r)
	for {
		var l listed
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list -json: %w", err)
		}
		switch {
		case l.ForTest != "": // a package built for a test: its plain entry says the same
		case strings.HasSuffix(l.ImportPath, ".test"):
			mains = append(mains, l)
		default:
			rel, err := filepath.Rel(absRoot, l.Dir)
			if err != nil {
				return nil, err
			}
			rel = filepath.ToSlash(rel)
			index[l.ImportPath] = len(pkgs)
			pkgs = append(pkgs, Package{
				ImportPath:   l.ImportPath,
				Dir:          rel,
				Sources:      slices.Concat(l.GoFiles, l.CgoFiles, l.EmbedFiles),
				Tests:        slices.Concat(l.TestGoFiles, l.XTestGoFiles, l.TestEmbedFiles, l.XTestEmbedFiles),
				BuildsModule: slices.Contains(buildsModule, rel),
			})
		}
	}
	for _, m := range mains {
		i, ok := index[strings.TrimSuffix(m.ImportPath, ".test")]
		if !ok {
			continue
		}
		uses := []string{pkgs[i].Dir}
		for _, d := range m.Deps {
			d, _, _ = strings.Cut(d, " [") // "x [y.test]": x, built for y's test
			if j, ok := index[d]; ok && !slices.Contains(uses, pkgs[j].Dir) {
				uses = append(uses, pkgs[j].Dir)
			}
		}
		pkgs[i].Uses = uses
	}
	return pkgs, nil
}
