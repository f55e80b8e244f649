// Package affected maps the files a change touches to the services whose
// E2E environment or suite those files can change, so that CI runs only
// those services. What each service is made from comes from the topology
// (images, their Go packages and the packages these import, components'
// manifests, suites); the caller adds what affects every service.
package affected

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// A Path is a file, or a directory: every file under it (Recursive), or
// only the files directly in it (a Go package's directory: the packages
// below it are packages of their own), with or without its _test.go files.
type Path struct {
	Name      string // slash-separated, relative to the repository root
	Dir       bool
	Recursive bool
	Tests     bool // a package directory's _test.go files match too
}

// File is the path of one file.
func File(name string) Path { return Path{Name: clean(name)} }

// Tree is a directory and everything under it.
func Tree(name string) Path { return Path{Name: clean(name), Dir: true, Recursive: true} }

// PackageDir is a Go package's source files in its directory, without its
// subdirectories and, unless tests, without its _test.go files (a package's tests are not built
// into what imports it).
func PackageDir(name string, tests bool) Path {
	return Path{Name: clean(name), Dir: true, Tests: tests}
}

func clean(name string) string { return path.Clean(filepath.ToSlash(name)) }

// Match reports whether file (slash-separated, relative to the root) is
// this path or inside it.
func (p Path) Match(file string) bool {
	file = clean(file)
	if !p.Dir {
		return file == p.Name
	}
	rest := file
	if p.Name != "." {
		var ok bool
		if rest, ok = strings.CutPrefix(file, p.Name+"/"); !ok {
			return false
		}
	}
	if p.Recursive {
		return true
	}
	return !strings.Contains(rest, "/") && goSource(rest) && (p.Tests || !strings.HasSuffix(rest, "_test.go"))
}

// goSource reports whether a file in a package's directory is built into
// the package (a README or a Dockerfile beside it is not; embedded files
// are paths of their own).
func goSource(name string) bool {
	switch path.Ext(name) {
	case ".go", ".s", ".c", ".h", ".cc", ".cpp", ".syso":
		return true
	}
	return false
}

// Input is something services are made from: an image, a component, a
// suite, or what every service depends on.
type Input struct {
	What     string // for people: "image gateway", "manifests of postgresql"
	Paths    []Path
	Services []string // nil: every service
	Image    string   // the image these are the inputs of ("" for anything else)
	Suite    bool     // these are a suite's inputs
}

// Reason says why a service is affected: the first changed file that
// belongs to one of its inputs.
type Reason struct {
	File, What string
}

// Services returns each service the changed files affect, with the first
// reason found (files in the order given, inputs in order). It fails
// closed: a file that belongs to no input affects every service, unless
// it is known to change none: a test file of a package built into an
// image (tests are not linked into a binary), or a file the ignore
// patterns name (see Ignored).
func Services(inputs []Input, all, files, ignore []string) map[string]Reason {
	out := map[string]Reason{}
	add := func(svcs []string, r Reason) {
		if svcs == nil {
			svcs = all
		}
		for _, s := range svcs {
			if _, ok := out[s]; !ok {
				out[s] = r
			}
		}
	}
	for _, f := range files {
		claimed := false
		for _, in := range inputs {
			if slices.ContainsFunc(in.Paths, func(p Path) bool { return p.Match(f) }) {
				claimed = true
				add(in.Services, Reason{File: f, What: in.What})
			}
		}
		if claimed || Ignored(ignore, f) || slices.ContainsFunc(inputs, func(in Input) bool {
			return slices.ContainsFunc(in.Paths, func(p Path) bool { return p.testOf(f) })
		}) {
			continue
		}
		add(nil, Reason{File: f, What: "no service's inputs claim it, and no ignore pattern names it: every service (fail closed)"})
	}
	return out
}

// testOf reports whether file is a _test.go file directly in this package
// directory when the package is built without its tests.
func (p Path) testOf(file string) bool {
	file = clean(file)
	if !p.Dir || p.Recursive || p.Tests || !strings.HasSuffix(file, "_test.go") {
		return false
	}
	return path.Dir(file) == p.Name
}

// Ignored reports whether a pattern names file (slash-separated, relative
// to the root), a change to which CI need not test. A pattern ending in
// "/" names a directory and everything under it ("docs/"); a pattern
// without "/" names a file at any depth by its base name ("*.md",
// "LICENSE"); any other is matched against the whole path (path.Match:
// "deploy/*/README.md").
func Ignored(patterns []string, file string) bool {
	file = clean(file)
	for _, p := range patterns {
		switch {
		case strings.HasSuffix(p, "/"):
			if strings.HasPrefix(file, p) {
				return true
			}
		case !strings.Contains(p, "/"):
			if ok, _ := path.Match(p, path.Base(file)); ok {
				return true
			}
		default:
			if ok, _ := path.Match(p, file); ok {
				return true
			}
		}
	}
	return false
}

// ChangedFiles lists the files changed on HEAD since it forked from base
// (git diff --name-only base...HEAD), in the repository at root.
func ChangedFiles(ctx context.Context, root, base string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "diff", "--name-only", "--no-renames", base+"...HEAD", "--")
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("git diff --name-only %s...HEAD: %w: %s (is %q a branch, tag or commit this clone has? In GitHub Actions, check out with fetch-depth: 0)",
			base, err, strings.TrimSpace(stderr.String()), base)
	}
	var files []string
	for _, l := range strings.Split(stdout.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			files = append(files, l)
		}
	}
	return files, nil
}

// GoPackage lists the directories of the Go packages in the repository at
// root that pkg is built from: pkg and every package of the repository it
// imports (go list -deps), with their embedded files. Packages outside the
// repository (the module cache) come in through go.mod and go.sum.
// With test, the test files' imports count too (a suite is _test.go files).
func GoPackage(ctx context.Context, root, pkg string, test bool, env []string, tags ...string) ([]Path, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	args := []string{"list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}\t{{.ForTest}}{{range .EmbedFiles}}\t{{.}}{{end}}{{end}}"}
	if test {
		args = append(args, "-test")
	}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(cmd.Args[1:], " "), err, strings.TrimSpace(stderr.String()))
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	var paths []Path
	seen := map[Path]bool{}
	add := func(p Path) {
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	for _, l := range strings.Split(stdout.String(), "\n") {
		f := strings.Split(l, "\t")
		if len(f) < 2 {
			continue // a standard package (nothing printed), or the end
		}
		rel, err := filepath.Rel(absRoot, f[0])
		if f[0] == "" || err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue // not the repository's
		}
		// A package built for a test (ForTest set) is the suite's own
		// package: its _test.go files are what the suite runs.
		if len(f) > 1 && f[1] != "" {
			add(PackageDir(rel, true))
		} else {
			add(PackageDir(rel, false))
		}
		for _, e := range f[2:] {
			add(File(filepath.Join(rel, e)))
		}
	}
	return paths, nil
}

// kustomization is what Kustomization reads of a kustomization.yaml: the
// fields that name other files and directories.
type kustomization struct {
	Resources  []string `yaml:"resources"`
	Components []string `yaml:"components"`
	Bases      []string `yaml:"bases"`
	Patches    []struct {
		Path string `yaml:"path"`
	} `yaml:"patches"`
	PatchesStrategicMerge []string `yaml:"patchesStrategicMerge"`
	Generators            []struct {
		Files []string `yaml:"files"`
		Envs  []string `yaml:"envs"`
	} `yaml:"configMapGenerator"`
	SecretGenerators []struct {
		Files []string `yaml:"files"`
		Envs  []string `yaml:"envs"`
	} `yaml:"secretGenerator"`
	CRDs           []string `yaml:"crds"`
	Configurations []string `yaml:"configurations"`
}

// Kustomization lists what a kustomize directory is made from: the
// directory itself, and the local directories and files outside it that
// its kustomization.yaml names (resources, components, bases, patches),
// followed recursively. Remote resources are not files of the change.
func Kustomization(root, dir string) ([]Path, error) {
	var paths []Path
	seen := map[string]bool{}
	var walk func(dir string) error
	walk = func(dir string) error {
		dir = clean(dir)
		if seen[dir] {
			return nil
		}
		seen[dir] = true
		paths = append(paths, Tree(dir))
		var k kustomization
		var b []byte
		for _, name := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
			var err error
			if b, err = os.ReadFile(filepath.Join(root, dir, name)); err == nil {
				break
			}
		}
		if b == nil {
			return nil // plain manifests
		}
		if err := yaml.Unmarshal(b, &k); err != nil {
			return fmt.Errorf("%s: %w", path.Join(dir, "kustomization.yaml"), err)
		}
		refs := slices.Concat(k.Resources, k.Components, k.Bases, k.PatchesStrategicMerge)
		for _, p := range k.Patches {
			refs = append(refs, p.Path)
		}
		refs = append(refs, k.CRDs...)
		refs = append(refs, k.Configurations...)
		// A generator's file may be "key=path".
		for _, g := range slices.Concat(k.Generators, k.SecretGenerators) {
			for _, f := range slices.Concat(g.Files, g.Envs) {
				if _, p, ok := strings.Cut(f, "="); ok {
					f = p
				}
				refs = append(refs, f)
			}
		}
		for _, r := range refs {
			if r == "" || strings.Contains(r, "://") || strings.HasPrefix(r, "github.com/") {
				continue
			}
			p := clean(path.Join(dir, r))
			if Tree(dir).Match(p) {
				continue // inside: already covered
			}
			fi, err := os.Stat(filepath.Join(root, p))
			switch {
			case err != nil:
				continue // kustomize reports it when it builds
			case fi.IsDir():
				if err := walk(p); err != nil {
					return err
				}
			default:
				paths = append(paths, File(p))
			}
		}
		return nil
	}
	return paths, walk(dir)
}
