// Package registry runs testbed's local registry (E2E_REGISTRY=local): one
// OCI distribution registry container per machine on kind's network,
// which every cluster's nodes pull from, so that an image is pushed once
// and served to every cluster instead of being side-loaded into each.
//
// It follows kind's local-registry recipe: containerd's config_path (a
// containerdConfigPatches entry, see ContainerdPatch), a hosts.toml per
// node mapping localhost:<HostPort> to the registry container, and the
// local-registry-hosting ConfigMap.
package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/testbed-dev/testbed/internal/images"
	"github.com/testbed-dev/testbed/topology"
)

const (
	// Container is the registry's container name; a container of that
	// name testbed did not make (no Label) is never touched.
	Container = "testbed-registry"
	// Label marks the registry container and its volume as testbed's.
	Label = "dev.testbed.registry"
	// HostPort is the registry's port on the host's 127.0.0.1: images are
	// pushed to, and named in manifests as, localhost:HostPort/<name>:<tag>.
	HostPort = 5001
	// Network is kind's Docker network, which the registry joins so that
	// nodes reach it by its container name.
	Network = "kind"
	volume  = "testbed-registry-data"
)

// Host is the registry's name in image references.
var Host = fmt.Sprintf("localhost:%d", HostPort)

// ContainerdPatch makes containerd read per-registry hosts.toml files
// (kind's recipe): a cluster needs it at creation to pull from here.
const ContainerdPatch = `[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"`

// hostsTOML maps Host to the registry container on kind's network.
var hostsTOML = fmt.Sprintf("[host.\"http://%s:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n", Container)

// Ensure starts the registry, or finds it running: its image is built from
// testbed's own module (go list -m finds it from root, the repository of
// the topology), cached by its inputs like any image. It joins kind's
// network when that exists (Connect joins it later otherwise).
func Ensure(ctx context.Context, d *client.Client, root string, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	c, err := d.ContainerInspect(ctx, Container)
	switch {
	case err == nil && c.Config.Labels[Label] == "":
		return fmt.Errorf("a container named %s exists that testbed did not make: rename or remove it to use E2E_REGISTRY=local", Container)
	case err == nil && c.State.Running:
		fmt.Fprintf(w, "registry %s is running (127.0.0.1:%d)\n", Container, HostPort)
		return Connect(ctx, d)
	case err == nil:
		if err := d.ContainerStart(ctx, Container, container.StartOptions{}); err != nil {
			return fmt.Errorf("starting %s: %w", Container, err)
		}
		fmt.Fprintf(w, "registry %s started again\n", Container)
		return errors.Join(waitUp(ctx), Connect(ctx, d))
	case !errdefs.IsNotFound(err):
		return err
	}
	mod, err := moduleDir(ctx, root)
	if err != nil {
		return err
	}
	b := &images.Builder{Docker: d, Root: mod, Timeout: 5 * time.Minute}
	img, err := b.Build(ctx, "registry", &topology.Image{
		Dockerfile: "internal/registry/Dockerfile",
		Binaries:   []topology.Binary{{Name: "registry", Package: "./internal/registry/cmd/registry"}},
	}, w)
	if err != nil {
		return fmt.Errorf("building the registry image: %w", err)
	}
	port := nat.Port("5000/tcp")
	_, err = d.ContainerCreate(ctx, &container.Config{
		Image:        img.Ref,
		Labels:       map[string]string{Label: "1"},
		ExposedPorts: nat.PortSet{port: {}},
	}, &container.HostConfig{
		PortBindings:  nat.PortMap{port: {{HostIP: "127.0.0.1", HostPort: fmt.Sprint(HostPort)}}},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		Binds:         []string{volume + ":/var/lib/registry"},
	}, nil, nil, Container)
	if errdefs.IsConflict(err) {
		// Another run made it at the same moment: use that one.
		fmt.Fprintf(w, "registry %s was made by another run at the same time\n", Container)
		return errors.Join(waitUp(ctx), Connect(ctx, d))
	}
	if err != nil {
		return fmt.Errorf("creating %s (is 127.0.0.1:%d free?): %w", Container, HostPort, err)
	}
	if err := d.ContainerStart(ctx, Container, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting %s (is 127.0.0.1:%d free?): %w", Container, HostPort, err)
	}
	fmt.Fprintf(w, "registry %s started from %s on 127.0.0.1:%d\n", Container, img.Ref, HostPort)
	return errors.Join(waitUp(ctx), Connect(ctx, d))
}

// Connect joins the registry to kind's network; already joined, or no
// network yet (no cluster made), is fine.
func Connect(ctx context.Context, d *client.Client) error {
	err := d.NetworkConnect(ctx, Network, Container, nil)
	if err == nil || errdefs.IsNotFound(err) || strings.Contains(err.Error(), "already exists") {
		return nil
	}
	return fmt.Errorf("connecting %s to the %s network: %w", Container, Network, err)
}

// waitUp waits until the registry answers /v2/.
func waitUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, done := newClient()
	defer done()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+fmt.Sprint(HostPort)+"/v2/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("the registry on 127.0.0.1:%d does not answer: %v", HostPort, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// moduleDir is the directory of testbed's module as root's build sees it:
// the repository itself, a replace directory, or the module cache.
func moduleDir(ctx context.Context, root string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/testbed-dev/testbed")
	cmd.Dir = root
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("finding testbed's module from %s: %w: %s", root, err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// Ref is the registry reference of an image: its name and, as the tag,
// the first 12 hex digits of its ID, so that the same content is pushed
// once and changed content (a third-party tag that moved) gets a new tag.
func Ref(name, id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return Host + "/" + name + ":" + id
}

// Push writes the engine's image local, whose image ID is id, to remote
// (a tag in testbed's registry, see Ref) unless that tag holds this very
// image already, and returns the reference by digest the nodes are to
// pull. The registry takes writes from anything on the kind network
// without credentials: a tag found there is used only when its image's
// config is id (for an image of the engine, its ID is its config's
// digest), and what the nodes pull is pinned by the manifest's digest, so
// an image planted under the tag, before or after the push, is never run.
func Push(ctx context.Context, d images.Docker, local, id, remote string, w io.Writer) (string, error) {
	ref, err := name.NewTag(remote)
	if err != nil {
		return "", fmt.Errorf("%s: %w", remote, err)
	}
	pinned := func(digest string) string { return ref.Context().Name() + "@" + digest }
	switch digest, found, err := holds(ctx, ref, id); {
	case err != nil:
		fmt.Fprintf(w, "%s: %v: pushing it\n", remote, err)
	case digest != "":
		fmt.Fprintf(w, "%s is in the registry already\n", remote)
		return pinned(digest), nil
	case found != "":
		fmt.Fprintf(w, "%s in the registry is not this image (config %s, this image %s): pushing over it\n", remote, found, id)
	}
	digest, err := Publish(ctx, d, local, remote, w)
	if err != nil {
		return "", err
	}
	return pinned(digest), nil
}

// holds asks the registry for the image under ref: its manifest's digest
// when its config is id, else the config it holds ("" when the tag is
// absent).
func holds(ctx context.Context, ref name.Reference, id string) (digest, config string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tr := transportOwn()
	defer tr.CloseIdleConnections()
	desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithTransport(tr))
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	img, err := desc.Image()
	if err != nil {
		return "", "", err
	}
	cfg, err := img.ConfigName()
	if err != nil {
		return "", "", err
	}
	if cfg.String() != id {
		return "", cfg.String(), nil
	}
	return desc.Digest.String(), "", nil
}

// ConfigureNode writes the node's hosts.toml for Host: containerd reads
// it at the next pull, no restart.
func ConfigureNode(ctx context.Context, n nodes.Node) error {
	dir := filepath.Join("/etc/containerd/certs.d", Host)
	if err := n.CommandContext(ctx, "mkdir", "-p", dir).Run(); err != nil {
		return fmt.Errorf("%s: mkdir %s: %w", n, dir, err)
	}
	if err := n.CommandContext(ctx, "cp", "/dev/stdin", filepath.Join(dir, "hosts.toml")).SetStdin(strings.NewReader(hostsTOML)).Run(); err != nil {
		return fmt.Errorf("%s: writing hosts.toml: %w", n, err)
	}
	return nil
}

// HostingConfigMap is kind's local-registry-hosting ConfigMap (KEP-1755),
// as an unstructured object: tools in the cluster learn where to push.
func HostingConfigMap() map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "local-registry-hosting", "namespace": "kube-public"},
		"data": map[string]any{
			"localRegistryHosting.v1": fmt.Sprintf("host: %q\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n", Host),
		},
	}
}

// Check makes sure each reference is in its registry (a HEAD of its
// manifest, with the credentials of the Docker config as docker uses
// them), so that a wrong tag or an unreachable registry fails the run at
// once, naming the image, the tag and the registry, instead of as a pod
// that cannot pull minutes later.
func Check(ctx context.Context, refs []string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tr := transportOwn()
	defer tr.CloseIdleConnections()
	var errs []error
	for _, s := range refs {
		ref, err := name.ParseReference(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
			continue
		}
		_, err = remote.Head(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithTransport(tr))
		var terr *transport.Error
		switch {
		case err == nil:
		case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
			errs = append(errs, fmt.Errorf("%s: the registry %s has no %s:%s (IMAGE_TAG=%s): push it first (build:push), or fix IMAGE_TAG", s, ref.Context().RegistryStr(), ref.Context().RepositoryStr(), ref.Identifier(), ref.Identifier()))
		case errors.As(err, &terr):
			errs = append(errs, fmt.Errorf("%s: the registry %s answered %d: %v", s, ref.Context().RegistryStr(), terr.StatusCode, err))
		default:
			errs = append(errs, fmt.Errorf("%s: the registry %s cannot be reached: %v", s, ref.Context().RegistryStr(), err))
		}
	}
	return errors.Join(errs...)
}

// Publish writes the engine's image local to the reference target on any
// registry (build:push), with the Docker config's credentials: the image
// is saved from the engine and written by go-containerregistry, which
// sends only the blobs the registry lacks.
func Publish(ctx context.Context, d images.Docker, local, target string, w io.Writer) (digest string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	ref, err := name.ParseReference(target)
	if err != nil {
		return "", fmt.Errorf("%s: %w", target, err)
	}
	f, err := os.CreateTemp("", "testbed-push-*.tar")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	rc, err := d.ImageSave(ctx, []string{local})
	if err == nil {
		_, err = io.Copy(f, rc)
		rc.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("saving %s: %w", local, err)
	}
	tag, err := name.NewTag(local)
	if err != nil {
		return "", fmt.Errorf("%s: %w", local, err)
	}
	img, err := tarball.ImageFromPath(f.Name(), &tag)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", local, err)
	}
	t0 := time.Now()
	tr := transportOwn()
	defer tr.CloseIdleConnections()
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithTransport(tr)); err != nil {
		return "", fmt.Errorf("pushing %s to %s: %w", local, ref.Context().RegistryStr(), err)
	}
	dg, err := img.Digest()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(w, "pushed %s as %s (%s) in %s\n", local, target, dg, time.Since(t0).Round(time.Millisecond))
	return dg.String(), nil
}

// transportOwn is a transport of the call's own: its idle connections
// are closed when the call returns, so no goroutine outlives it.
func transportOwn() *http.Transport { return http.DefaultTransport.(*http.Transport).Clone() }

// newClient is an HTTP client on a transport of its own, and what closes
// its connections.
func newClient() (*http.Client, func()) {
	tr := transportOwn()
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, tr.CloseIdleConnections
}

// Remove removes the registry container and its volume; a container of
// that name testbed did not make is left, with an error saying so.
func Remove(ctx context.Context, d *client.Client, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := d.ContainerInspect(ctx, Container)
	if errdefs.IsNotFound(err) {
		fmt.Fprintf(w, "no registry %s\n", Container)
		return nil
	}
	if err != nil {
		return err
	}
	if c.Config.Labels[Label] == "" {
		return fmt.Errorf("the container %s was not made by testbed: left as it is", Container)
	}
	if err := d.ContainerRemove(ctx, Container, container.RemoveOptions{Force: true}); err != nil {
		return err
	}
	if err := d.VolumeRemove(ctx, volume, true); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	fmt.Fprintf(w, "removed registry %s and its volume %s\n", Container, volume)
	return nil
}
