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
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/testbed-dev/testbed/internal/topology"
)

// InputsLabel holds the hash of everything that went into an image; an
// image whose label matches its inputs is not rebuilt.
const InputsLabel = "dev.testbed.inputs"

// Docker is the part of the Docker API the images package uses.
type Docker interface {
	ImageBuild(ctx context.Context, buildContext io.Reader, options build.ImageBuildOptions) (build.ImageBuildResponse, error)
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	ImageSave(ctx context.Context, refs []string, opts ...client.ImageSaveOption) (io.ReadCloser, error)
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
	// Rebuild forces a build even when an image with the same inputs exists.
	Rebuild bool
}

// Build compiles the image's Go binaries on the host, then builds the image
// unless one with the same inputs exists.
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

	files := map[string][]byte{}
	dfPath := img.Dockerfile
	if !filepath.IsAbs(dfPath) {
		dfPath = filepath.Join(b.Root, dfPath)
	}
	df, err := os.ReadFile(dfPath)
	if err != nil {
		return Built{}, fmt.Errorf("image %s: %w", name, err)
	}
	files["Dockerfile"] = df
	for _, bin := range img.Binaries {
		out := filepath.Join(dir, bin.Name)
		if err := b.compile(ctx, bin, out, w); err != nil {
			return Built{}, fmt.Errorf("image %s: %w", name, err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			return Built{}, err
		}
		files[bin.Name] = data
	}
	hash := inputsHash(files)
	res := Built{Name: name, Ref: fmt.Sprintf("testbed/%s:%s", name, hash[:12])}

	if !b.Rebuild {
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		got, err := b.Docker.ImageInspect(ictx, res.Ref)
		cancel()
		if err == nil && got.Config != nil && got.Config.Labels[InputsLabel] == hash {
			res.ID, res.Cached = got.ID, true
			fmt.Fprintf(w, "cached: %s (%s) has the same inputs\n", res.Ref, ShortID(got.ID))
			return res, nil
		}
		if err != nil && !errdefs.IsNotFound(err) {
			return Built{}, fmt.Errorf("image %s: inspecting %s: %w", name, res.Ref, err)
		}
	}

	tarball, err := tarFiles(files)
	if err != nil {
		return Built{}, err
	}
	resp, err := b.Docker.ImageBuild(ctx, tarball, build.ImageBuildOptions{
		Tags:        []string{res.Ref},
		Dockerfile:  "Dockerfile",
		Labels:      map[string]string{InputsLabel: hash},
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return Built{}, fmt.Errorf("image %s: docker build: %w", name, err)
	}
	defer resp.Body.Close()
	if err := readBuildStream(resp.Body, w); err != nil {
		return Built{}, fmt.Errorf("image %s: docker build: %w", name, err)
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := b.Docker.ImageInspect(ictx, res.Ref)
	if err != nil {
		return Built{}, fmt.Errorf("image %s: built but not found: %w", name, err)
	}
	res.ID = got.ID
	fmt.Fprintf(w, "built: %s (%s)\n", res.Ref, ShortID(got.ID))
	return res, nil
}

// compile runs go build for one binary. The go tool is a command, not a
// library: this is the one shell-out of the build, with arguments, never a
// shell string.
func (b *Builder) compile(ctx context.Context, bin topology.Binary, out string, w io.Writer) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, bin.Package)
	cmd.Dir = b.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", bin.Package, err, strings.TrimSpace(buf.String()))
	}
	fmt.Fprintf(w, "compiled %s from %s in %s\n", bin.Name, bin.Package, time.Since(t0).Round(time.Millisecond))
	return nil
}

// inputsHash hashes every file of the build context, names included.
func inputsHash(files map[string][]byte) string {
	h := sha256.New()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func tarFiles(files map[string][]byte) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		mode := int64(0o644)
		if n != "Dockerfile" {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: mode, Size: int64(len(files[n])), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, err
		}
	}
	return &buf, tw.Close()
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
