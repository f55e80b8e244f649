package testbed

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kind/pkg/apis/config/defaults"

	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/images"
	"github.com/testbed-dev/testbed/internal/kube"
	"github.com/testbed-dev/testbed/internal/registry"
	"github.com/testbed-dev/testbed/topology"
)

// The steps that make images and bring them to the nodes: build, bake,
// side-load, the local registry, registry mode's push and check.

func (r *run) build(name string, img *topology.Image) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		// Settled once it has compiled, or found it need not.
		settled := sync.OnceFunc(r.compiling.done)
		defer settled()
		d, err := r.dockerClient(ctx)
		if err != nil {
			return err
		}
		b := &images.Builder{Docker: d, Root: r.cfg.Root, Timeout: r.cfg.BuildTimeout, Rebuild: r.cfg.Rebuild, Cover: r.cfg.Coverage, NoInline: r.env.noInline, Compiled: settled}
		res, reused, err := r.once.images.do(ctx, name, func() (images.Built, error) { return b.Build(ctx, name, img, w) })
		if err != nil {
			return err
		}
		if reused {
			fmt.Fprintf(w, "%s was built earlier in this process (another service's run)\n", res.Ref)
		}
		r.setImage(name, res.Ref, res.ID)
		return nil
	}
}

// thirdParty lists the references of the images of imgs not built here.
func (r *run) thirdParty(imgs []string) []string {
	var refs []string
	for _, name := range imgs {
		if !r.topo.Images[name].Built() {
			refs = append(refs, r.refs[name])
		}
	}
	return refs
}

// bake derives the node image with the third-party images in it (built
// once per content, then reused): the cluster made from it needs no load
// of them, and their load steps find them on the node at once.
func (r *run) bake(refs []string) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		d, err := r.dockerClient(ctx)
		if err != nil {
			return err
		}
		base := r.baseNodeImage()
		baked, _, err := r.once.images.do(ctx, "bake\x00"+base+"\x00"+strings.Join(refs, "\x00"), func() (images.Built, error) {
			b, err := r.scope.BakeNodeImage(ctx, d, base, refs, w)
			return images.Built{Ref: b.Ref}, err
		})
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.node = baked.Ref
		r.mu.Unlock()
		return nil
	}
}

// findBaked uses a node image baked before with refs, or the base when
// there is none (unbaked): the run does not wait for a bake.
func (r *run) findBaked(refs []string) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		d, err := r.dockerClient(ctx)
		if err != nil {
			return err
		}
		found, err := r.scope.FindBakedNodeImage(ctx, d, r.baseNodeImage(), refs, w)
		if err != nil {
			return err
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.node, r.unbaked = found.Ref, found.Missing
		if found.Missing {
			fmt.Fprintf(w, "the cluster is made from the base node image now, and after a pass the bake is made for the next run\n")
		}
		return nil
	}
}

// bakeForNextRun runs bake (r.bake of the refs findBaked looked for) when
// findBaked found no bake, except on a GitHub Actions runner.
func (r *run) bakeForNextRun(bake stepFunc) stepFunc {
	return func(ctx context.Context, w io.Writer) error {
		r.mu.Lock()
		unbaked := r.unbaked
		r.mu.Unlock()
		switch {
		case !unbaked:
			fmt.Fprintln(w, "nothing to bake: the node image was baked before")
			return nil
		case inGitHubActions():
			// The workflow's node job hands the e2e jobs their node image
			// (docs/design/ci.md), and a job's next run is on another runner.
			fmt.Fprintln(w, "not baking in GitHub Actions: the node job bakes the node image, and this runner has no next run")
			return nil
		}
		return bake(ctx, w)
	}
}

// baseNodeImage is E2E_NODE_IMAGE, or kind's default.
func (r *run) baseNodeImage() string {
	if r.cfg.NodeImage != "" {
		return r.cfg.NodeImage
	}
	return defaults.Image
}

// nodeImage is the node image the run's cluster is made from: the baked
// one, or the base.
func (r *run) nodeImage() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.node != "" {
		return r.node
	}
	return r.baseNodeImage()
}

// hostImage is an image of the run as the host's engine has it: a built
// image's reference and ID, or a third-party image's reference and, when
// the host holds a copy, its ID ("" when it does not).
func (r *run) hostImage(ctx context.Context, name string) (d *client.Client, ref, id string, err error) {
	if d, err = r.dockerClient(ctx); err != nil {
		return nil, "", "", err
	}
	ref, id = r.image(name)
	if id != "" {
		return d, ref, id, nil
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := d.ImageInspect(ictx, ref)
	if errdefs.IsNotFound(err) {
		return d, ref, "", nil
	}
	if err != nil {
		return nil, ref, "", fmt.Errorf("inspecting %s: %w", ref, err)
	}
	return d, ref, got.ID, nil
}

func (r *run) load(name string) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		d, ref, id, err := r.hostImage(ctx, name)
		if err != nil || id == "" {
			if id == "" && err == nil {
				fmt.Fprintf(w, "%s is not on this host: the node will pull it\n", ref)
			}
			return err
		}
		c, err := r.scope.Open(r.cluster.Name, w)
		if err != nil {
			return err
		}
		held, err := r.heldImages(ctx, c)
		if err == nil && held[cluster.NormalizeRef(ref)] == id {
			fmt.Fprintf(w, "%s: already holds %s (%s)\n", c.Name, ref, images.ShortID(id))
			return nil
		}
		if err := c.LoadImage(ctx, d, ref, id, held, w); err != nil {
			return err
		}
		r.env.nodeImages.loaded(ref, id)
		return nil
	}
}

// startRegistry starts testbed's local registry, or finds it running.
func (r *run) startRegistry(ctx context.Context, w io.Writer) error {
	d, err := r.dockerClient(ctx)
	if err != nil {
		return err
	}
	return registry.Ensure(ctx, d, r.cfg.Root, w)
}

// configureRegistry joins the registry to kind's network, points every
// node's containerd at it and publishes kind's local-registry-hosting
// ConfigMap.
func (r *run) configureRegistry(ctx context.Context, w io.Writer) error {
	d, err := r.dockerClient(ctx)
	if err != nil {
		return err
	}
	if err := registry.Connect(ctx, d); err != nil {
		return err
	}
	r.mu.Lock()
	c := r.cluster
	r.mu.Unlock()
	if err := c.ConfigureRegistry(ctx); err != nil {
		return err
	}
	k, err := r.kubeClient()
	if err != nil {
		return err
	}
	cm := kube.Object{Unstructured: &unstructured.Unstructured{Object: registry.HostingConfigMap()}, Source: "testbed"}
	if err := k.Apply(ctx, "kube-public", []kube.Object{cm}, w); err != nil {
		return err
	}
	fmt.Fprintf(w, "nodes of %s pull %s/* from %s\n", c.Name, registry.Host, registry.Container)
	return nil
}

// checkImages makes sure the registry holds the service's images at
// IMAGE_TAG (IMAGE_REGISTRY mode).
func (r *run) checkImages(imgs []string) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		var refs []string
		for _, name := range imgs {
			if r.topo.Images[name].Built() {
				ref, _ := r.image(name)
				refs = append(refs, ref)
			}
		}
		t0 := time.Now()
		if err := registry.Check(ctx, refs); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s holds %s (checked in %s)\n", r.cfg.Registry, strings.Join(refs, ", "), time.Since(t0).Round(time.Millisecond))
		return nil
	}
}

// push puts an image into the local registry (once per content) and makes
// the registry's reference, by digest, the one the manifests run.
func (r *run) push(name string) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		d, ref, id, err := r.hostImage(ctx, name)
		if err != nil || id == "" {
			if id == "" && err == nil {
				fmt.Fprintf(w, "%s is not on this host: the nodes will pull it from its own registry\n", ref)
			}
			return err
		}
		pinned, err := registry.Push(ctx, d, ref, id, registry.Ref(name, id), w)
		if err != nil {
			return err
		}
		r.setImage(name, pinned, id)
		return nil
	}
}

// heldImages lists, once per run, the images the cluster's nodes hold:
// on a warm or baked cluster most loads then find their image there
// without asking the node each time.
func (r *run) heldImages(ctx context.Context, c *cluster.Cluster) (map[string]string, error) {
	return r.held.get(func() (map[string]string, error) {
		if ids, ok := r.env.nodeImages.list(); ok {
			return ids, nil
		}
		ids, err := c.ImageIDs(ctx)
		if err == nil {
			r.env.nodeImages.listed(ids)
		}
		return ids, err
	}, nil)
}

// nodeImages is the image ref → ID the nodes of a cluster held when first
// listed, with what was loaded since: e2e:watch's, kept between its runs.
// A nil *nodeImages keeps nothing.
type nodeImages struct {
	mu  sync.Mutex
	ids map[string]string // nil until listed
}

// list is a copy of the images, when they were listed.
func (n *nodeImages) list() (map[string]string, bool) {
	if n == nil {
		return nil, false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ids == nil {
		return nil, false
	}
	return maps.Clone(n.ids), true
}

func (n *nodeImages) listed(ids map[string]string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ids = maps.Clone(ids)
}

// loaded records an image loaded into every node.
func (n *nodeImages) loaded(ref, id string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ids != nil {
		n.ids[cluster.NormalizeRef(ref)] = id
	}
}
