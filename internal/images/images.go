// Package images builds the platform's images through the Docker API and
// resolves the references of third-party ones.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/testbed-dev/testbed/topology"
)

// InputsLabel holds the hash of everything that went into an image; an
// image whose label matches its inputs is not rebuilt.
const InputsLabel = "dev.testbed.inputs"

// Docker is the part of the Docker API the images package uses.
type Docker interface {
	ImageBuild(ctx context.Context, buildContext io.Reader, options build.ImageBuildOptions) (build.ImageBuildResponse, error)
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	ImageSave(ctx context.Context, refs []string, opts ...client.ImageSaveOption) (io.ReadCloser, error)
	ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (image.LoadResponse, error)
}

var _ Docker = (*client.Client)(nil)

// NewDocker connects to the Docker (or Podman) engine named by DOCKER_HOST,
// negotiating the API version, and checks that it answers.
func NewDocker(ctx context.Context) (*client.Client, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Ping(pctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("the Docker engine at %s does not answer (%v): start Docker, or set DOCKER_HOST to a running engine (Podman: unix:///run/podman/podman.sock)", c.DaemonHost(), err)
	}
	return c, nil
}

// Built is the result of a build.
type Built struct {
	Name   string
	Ref    string // repository:tag, the tag derived from the inputs
	ID     string
	Cached bool
}

// Builder builds images from the topology.
type Builder struct {
	Docker Docker
	// Root is the repository, the directory go build runs in.
	Root string
	// Timeout bounds one image build, compile included.
	Timeout time.Duration
	// Rebuild forces a build even when an image with the same inputs
	// exists, without Docker's layer cache.
	Rebuild bool
	// Cover builds the Go binaries with -cover (E2E_COVERAGE).
	Cover bool
	// NoInline compiles the packages under Root without inlining
	// (-gcflags=./...=-l), for an inner loop: a one-line change in
	// gateway recompiles in 0.6× the time, since the compiler no longer
	// reads and compiles the inline bodies of what the package imports.
	// The dependencies are compiled as always (their cache is shared).
	NoInline bool
	// Compiled, when set, is called once the image's binaries are
	// compiled, before the docker build: the CPU-heavy part is over.
	// A build that does not compile (cached, or no binaries) does not
	// call it.
	Compiled func()
}

// Build hashes the image's inputs; unless an image with that hash exists,
// it compiles the Go binaries on the host and builds the image.
func (b *Builder) Build(ctx context.Context, name string, img *topology.Image, w io.Writer) (Built, error) {
	if b.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.Timeout)
		defer cancel()
	}
	dir, err := os.MkdirTemp("", "testbed-build-"+name+"-")
	if err != nil {
		return Built{}, err
	}
	defer os.RemoveAll(dir)

	entries, hash, err := b.inputs(ctx, name, img)
	if err != nil {
		return Built{}, err
	}
	res := Built{Name: name, Ref: ref(name, hash)}

	if !b.Rebuild {
		id, err := b.cached(ctx, name, res.Ref, hash)
		if err != nil {
			return Built{}, err
		}
		if id != "" {
			res.ID, res.Cached = id, true
			fmt.Fprintf(w, "cached: %s (%s) has the same inputs\n", res.Ref, ShortID(id))
			return res, nil
		}
	}
	// Only now, on a miss, are the binaries compiled; they replace context
	// files of the same name.
	if entries, err = b.compileAll(ctx, name, img, dir, entries, w); err != nil {
		return Built{}, err
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	if id, ok, err := b.assembleAndLoad(ctx, name, entries, dir, res.Ref, hash, w); err != nil || ok {
		if err != nil {
			return Built{}, err
		}
		res.ID = id
		fmt.Fprintf(w, "built: %s (%s)\n", res.Ref, ShortID(res.ID))
		return res, nil
	}
	tarPath := filepath.Join(dir, "context.tar")
	size, err := writeTar(tarPath, entries)
	if err != nil {
		return Built{}, fmt.Errorf("image %s: build context: %w", name, err)
	}
	fmt.Fprintf(w, "context: %d files, %s\n", len(entries), byteSize(size))
	if res.ID, err = b.dockerBuild(ctx, name, img, tarPath, res.Ref, hash, w); err != nil {
		return Built{}, err
	}
	fmt.Fprintf(w, "built: %s (%s)\n", res.Ref, ShortID(res.ID))
	return res, nil
}

// cached returns the ID of the image ref when it exists with the inputs
// hash, "" when it does not.
func (b *Builder) cached(ctx context.Context, name, ref, hash string) (string, error) {
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := b.Docker.ImageInspect(ictx, ref)
	if err == nil && got.Config != nil && got.Config.Labels[InputsLabel] == hash {
		return got.ID, nil
	}
	if err != nil && !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("image %s: inspecting %s: %w", name, ref, err)
	}
	return "", nil
}

// compileAll compiles the image's binaries into dir, each replacing the
// context entry of its name, and calls Compiled after them.
func (b *Builder) compileAll(ctx context.Context, name string, img *topology.Image, dir string, entries []entry, w io.Writer) ([]entry, error) {
	for _, bin := range img.Binaries {
		if !filepath.IsLocal(bin.Name) || strings.ContainsAny(bin.Name, `/\`) || strings.HasPrefix(bin.Name, "-") {
			return nil, fmt.Errorf("image %s: binary %q: not one file name of the build context", name, bin.Name)
		}
		out := filepath.Join(dir, bin.Name)
		if err := b.compile(ctx, bin, out, w); err != nil {
			return nil, fmt.Errorf("image %s: %w", name, err)
		}
		entries = slices.DeleteFunc(entries, func(e entry) bool { return e.name == bin.Name })
		entries = append(entries, entry{name: bin.Name, path: out, mode: 0o755})
	}
	if len(img.Binaries) > 0 && b.Compiled != nil {
		b.Compiled()
	}
	return entries, nil
}

// dockerBuild sends the build context tarPath to the engine, which tags
// the image ref and labels it with the inputs hash; it returns its ID.
func (b *Builder) dockerBuild(ctx context.Context, name string, img *topology.Image, tarPath, ref, hash string, w io.Writer) (string, error) {
	tarball, err := os.Open(tarPath)
	if err != nil {
		return "", err
	}
	defer tarball.Close()
	args := map[string]*string{}
	for k, v := range img.Args {
		args[k] = &v
	}
	resp, err := b.Docker.ImageBuild(ctx, tarball, build.ImageBuildOptions{
		Tags:        []string{ref},
		Dockerfile:  "Dockerfile",
		BuildArgs:   args,
		Labels:      map[string]string{InputsLabel: hash},
		Remove:      true,
		ForceRemove: true,
		// A rebuild builds: Docker's layer cache would replay its RUN steps.
		NoCache: b.Rebuild,
	})
	if err != nil {
		return "", fmt.Errorf("image %s: docker build: %w", name, err)
	}
	defer resp.Body.Close()
	if err := readBuildStream(resp.Body, w); err != nil {
		return "", fmt.Errorf("image %s: docker build: %w", name, err)
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := b.Docker.ImageInspect(ictx, ref)
	if err != nil {
		return "", fmt.Errorf("image %s: built but not found: %w", name, err)
	}
	return got.ID, nil
}

// Ref is the reference Build gives the image: its inputs hashed without
// compiling anything (one go list per binary), so a CI job can name the
// images a run needs, as a cache key, before building them.
func (b *Builder) Ref(ctx context.Context, name string, img *topology.Image) (string, error) {
	_, hash, err := b.inputs(ctx, name, img)
	if err != nil {
		return "", err
	}
	return ref(name, hash), nil
}

func ref(name, hash string) string { return fmt.Sprintf("testbed/%s:%s", name, hash[:12]) }

// inputs lists the image's build context (binaries aside) and hashes it
// with its build arguments and its binaries' Go inputs.
func (b *Builder) inputs(ctx context.Context, name string, img *topology.Image) ([]entry, string, error) {
	entries, err := b.contextEntries(img)
	if err != nil {
		return nil, "", fmt.Errorf("image %s: %w", name, err)
	}
	bins := map[string]string{}
	for _, bin := range img.Binaries {
		if bins[bin.Name], err = b.goInputsHash(ctx, bin.Package); err != nil {
			return nil, "", fmt.Errorf("image %s: binary %s: %w", name, bin.Name, err)
		}
	}
	hash, err := inputsHash(entries, img.Args, bins)
	if err != nil {
		return nil, "", fmt.Errorf("image %s: %w", name, err)
	}
	return entries, hash, nil
}

// entry is one file of a build context: its name in the context and the
// host file it comes from.
type entry struct {
	name string
	path string
	mode os.FileMode // permission bits; os.ModeSymlink for a link
}

// contextEntries lists the build context apart from the binaries: the
// files of the image's context directory that .dockerignore does not
// exclude (never .git), and the Dockerfile as "Dockerfile".
func (b *Builder) contextEntries(img *topology.Image) ([]entry, error) {
	byName := map[string]entry{}
	if img.Context != "" {
		files, err := contextFiles(b.path(img.Context))
		if err != nil {
			return nil, err
		}
		for _, e := range files {
			byName[e.name] = e
		}
	}
	df := b.path(img.Dockerfile)
	if _, err := os.Stat(df); err != nil {
		return nil, err
	}
	byName["Dockerfile"] = entry{name: "Dockerfile", path: df, mode: 0o644}
	entries := make([]entry, 0, len(byName))
	for _, e := range byName {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return entries, nil
}

func (b *Builder) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(b.Root, p)
}

// contextFiles walks a context directory as docker build would send it:
// .git is left out, and so is what the directory's .dockerignore excludes
// (its own syntax, exceptions included).
func contextFiles(root string) ([]entry, error) {
	var patterns []string
	if f, err := os.Open(filepath.Join(root, ".dockerignore")); err == nil {
		patterns, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(root, ".dockerignore"), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(root, ".dockerignore"), err)
	}
	var out []entry
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == ".git" {
			return fs.SkipDir
		}
		excluded, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if d.IsDir() {
			// A directory can hold an exception (!pattern) even when it
			// matches itself; only without exceptions is it skipped whole.
			if excluded && !pm.Exclusions() {
				return fs.SkipDir
			}
			return nil
		}
		if excluded {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.Mode().IsRegular():
			out = append(out, entry{name: rel, path: p, mode: info.Mode().Perm()})
		case info.Mode()&os.ModeSymlink != 0:
			out = append(out, entry{name: rel, path: p, mode: os.ModeSymlink})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", root, err)
	}
	return out, nil
}

// compile runs go build for one binary. The go tool is a command, not a
// library: this is the one shell-out of the build, with arguments, never a
// shell string.
func (b *Builder) compile(ctx context.Context, bin topology.Binary, out string, w io.Writer) error {
	args := append(append([]string{"build"}, b.goBuildFlags()...), "-o", out, bin.Package)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.Root
	// go build's work directory goes inside the build's own temporary
	// directory, which Build removes: interrupted, go build leaves its
	// work directory behind (seen in the fault suite).
	cmd.Env = goEnv("GOTMPDIR=" + filepath.Dir(out))
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", bin.Package, err, strings.TrimSpace(buf.String()))
	}
	var how string
	if b.Cover {
		how += " (with -cover)"
	}
	if b.NoInline {
		how += " (inlining off: the inner loop's build)"
	}
	fmt.Fprintf(w, "compiled %s from %s in %s%s\n", bin.Name, bin.Package, time.Since(t0).Round(time.Millisecond), how)
	return nil
}

// inputsHash hashes every file of the build context (name, mode and
// content), the build arguments, and each binary's Go inputs hash.
func inputsHash(entries []entry, args map[string]string, bins map[string]string) (string, error) {
	h := sha256.New()
	for _, n := range slices.Sorted(maps.Keys(bins)) {
		fmt.Fprintf(h, "binary\x00%s\x00%s\x00", n, bins[n])
	}
	for _, e := range entries {
		fmt.Fprintf(h, "file\x00%s\x00%o\x00", e.name, e.mode)
		if e.mode&os.ModeSymlink != 0 {
			target, err := os.Readlink(e.path)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "%s\x00", target)
			continue
		}
		f, err := os.Open(e.path)
		if err != nil {
			return "", err
		}
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "\x00%d\x00", n)
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "arg\x00%s=%s\x00", k, args[k])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeTar writes the build context to a file, streaming each entry from
// disk: a large context is never held in memory.
func writeTar(path string, entries []entry) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, e := range entries {
		if err := copyInto(tw, e, e.name); err != nil {
			return 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	return off, f.Close()
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// buildMessage is one line of the build's JSON stream.
type buildMessage struct {
	Stream      string `json:"stream"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// readBuildStream copies the build's output to w and reads the stream to
// its end: a failed build says so inside the stream, not in the HTTP status.
// ReadStream reads the JSON messages of a Docker build or pull to their
// end, writing the build's output to w; the error is the engine's own.
func ReadStream(r io.Reader, w io.Writer) error { return readBuildStream(r, w) }

func readBuildStream(r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(r)
	var last []string
	for {
		var m buildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading the build output: %w", err)
		}
		if m.Stream != "" {
			io.WriteString(w, m.Stream)
			for _, l := range strings.Split(strings.TrimRight(m.Stream, "\n"), "\n") {
				last = append(last, l)
			}
			if len(last) > 10 {
				last = last[len(last)-10:]
			}
		}
		if m.Error != "" || m.ErrorDetail != nil {
			msg := m.Error
			if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
				msg = m.ErrorDetail.Message
			}
			return fmt.Errorf("%s\nlast lines of the build:\n%s", msg, strings.Join(last, "\n"))
		}
	}
}

// ShortID is the 12-character form of an image ID.
func ShortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ThirdParty resolves a third-party image: the variable named by Env when
// set, else Ref.
func ThirdParty(img *topology.Image) string {
	if img.Env != "" {
		if v := os.Getenv(img.Env); v != "" {
			return v
		}
	}
	return img.Ref
}
