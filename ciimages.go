package testbed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"sigs.k8s.io/kind/pkg/apis/config/defaults"

	"github.com/testbed-dev/testbed/internal/cluster"
	"github.com/testbed-dev/testbed/internal/images"
)

// CI builds every image once and hands the images to the jobs that run
// the services (the workflow's images job): ImageKeys names them before
// anything is built, SaveImages builds, bakes and saves them.
//
// Two archives, two keys, because they change at different rates:
//   - platform.tar: the images built here (their tags are their inputs'
//     hashes), keyed by those tags: any change to a binary's Go code,
//     a Dockerfile or a context changes the key.
//   - node.tar: the node images the services' clusters are made from
//     (baked with the third-party images), the base node image and the
//     third-party images (a run bakes by their IDs, so it needs them
//     to find the baked image), keyed by the bake recipe and the refs.
//     Refs by digest make the key exact; a tag that moves gives a stale
//     key, which costs a bake in each job, never a wrong image: a run
//     derives the baked tag from the IDs it finds.

// ImageKeys are the cache keys of the two archives SaveImages writes.
type ImageKeys struct {
	Platform string // the built images
	Node     string // the (baked) node images and the third-party images
}

// ciImages is what a run of every service needs, named before building.
type ciImages struct {
	built map[string]string // image name → the ref Build will give it
	base  string            // the node image clusters start from
	third []string          // third-party refs, sorted, deduplicated
	bakes [][]string        // each service's third-party refs, as its bake step gets them
}

func (t *Testbed) ciImages(ctx context.Context) (ciImages, error) {
	c := ciImages{built: map[string]string{}, base: t.Opts.NodeImage}
	if c.base == "" {
		c.base = defaults.Image
	}
	b := &images.Builder{Root: t.Opts.Root}
	for _, name := range slices.Sorted(maps.Keys(t.Topo.Images)) {
		img := t.Topo.Images[name]
		if !img.Built() {
			continue
		}
		ref, err := b.Ref(ctx, name, img)
		if err != nil {
			return c, err
		}
		c.built[name] = ref
	}
	seen := map[string]bool{}
	for _, s := range t.Topo.ServiceNames() {
		var refs []string
		for _, name := range t.Topo.ImagesOf(t.Topo.Services[s]) {
			if img := t.Topo.Images[name]; !img.Built() {
				refs = append(refs, images.ThirdParty(img))
			}
		}
		for _, r := range refs {
			if !slices.Contains(c.third, r) {
				c.third = append(c.third, r)
			}
		}
		key := strings.Join(slices.Sorted(slices.Values(refs)), "\x00")
		if len(refs) > 0 && t.Opts.Bake && !t.Opts.LocalRegistry && !seen[key] {
			seen[key] = true
			c.bakes = append(c.bakes, refs)
		}
	}
	slices.Sort(c.third)
	return c, nil
}

// ImageKeys hashes what SaveImages would save, without building: one go
// list per binary, no compile, no Docker.
func (t *Testbed) ImageKeys(ctx context.Context) (ImageKeys, error) {
	c, err := t.ciImages(ctx)
	if err != nil {
		return ImageKeys{}, err
	}
	p := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(c.built)) {
		fmt.Fprintf(p, "%s\x00%s\x00", name, c.built[name])
	}
	n := sha256.New()
	fmt.Fprintf(n, "%s\x00%s\x00", cluster.BakeRecipe, c.base)
	for _, r := range c.third {
		fmt.Fprintf(n, "third\x00%s\x00", r)
	}
	for _, refs := range c.bakes {
		fmt.Fprintf(n, "bake\x00%s\x00", strings.Join(slices.Sorted(slices.Values(refs)), "\x00"))
	}
	return ImageKeys{Platform: hex.EncodeToString(p.Sum(nil))[:16], Node: hex.EncodeToString(n.Sum(nil))[:16]}, nil
}

// SaveImages builds every image of the topology (one at a time, cached by
// content as a run builds them), pulls the base node image and the
// third-party images that are not on this host (three tries each), bakes
// the node images the services' runs will look for, and saves them to
// dir/platform.tar and dir/node.tar (docker save), for `docker load` in
// the jobs that run the services: their build and bake steps are then
// cache hits. what selects the archives: "platform", "node", or both.
func (t *Testbed) SaveImages(ctx context.Context, dir string, what []string, w io.Writer) error {
	for _, a := range what {
		if a != "platform" && a != "node" {
			return &InputError{Err: fmt.Errorf("archive %q: want platform and/or node", a)}
		}
	}
	if len(what) == 0 {
		what = []string{"platform", "node"}
	}
	c, err := t.ciImages(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d, err := images.NewDocker(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	if slices.Contains(what, "platform") {
		var refs []string
		b := &images.Builder{Docker: d, Root: t.Opts.Root, Timeout: t.Opts.BuildTimeout}
		for _, name := range slices.Sorted(maps.Keys(c.built)) {
			fmt.Fprintf(w, "build %s\n", name)
			res, err := b.Build(ctx, name, t.Topo.Images[name], w)
			if err != nil {
				return err
			}
			if res.Ref != c.built[name] {
				return fmt.Errorf("image %s: built as %s, named %s before the build: its inputs changed during the build", name, res.Ref, c.built[name])
			}
			refs = append(refs, res.Ref)
		}
		if err := saveImages(ctx, d, refs, filepath.Join(dir, "platform.tar"), w); err != nil {
			return err
		}
	}
	if !slices.Contains(what, "node") {
		return nil
	}
	refs := []string{}
	for _, r := range append([]string{c.base}, c.third...) {
		if err := ensureImage(ctx, d, r, w); err != nil {
			return err
		}
		refs = append(refs, r)
	}
	for _, third := range c.bakes {
		fmt.Fprintf(w, "bake %s into %s\n", strings.Join(third, ", "), c.base)
		baked, err := t.scope().BakeNodeImage(ctx, d, c.base, third, w)
		if err != nil {
			return err
		}
		if baked.Ref != c.base {
			refs = append(refs, baked.Ref)
		}
	}
	return saveImages(ctx, d, refs, filepath.Join(dir, "node.tar"), w)
}

// ensureImage pulls ref unless the engine has it: up to three tries, 10
// minutes each, 10 s apart (a registry's hiccup should not fail a run).
func ensureImage(ctx context.Context, d *client.Client, ref string, w io.Writer) error {
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err := d.ImageInspect(ictx, ref)
	cancel()
	if err == nil {
		fmt.Fprintf(w, "have %s\n", ref)
		return nil
	}
	if !errdefs.IsNotFound(err) {
		return fmt.Errorf("inspecting %s: %w", ref, err)
	}
	for try := 1; ; try++ {
		t0 := time.Now()
		err = pull(ctx, d, ref)
		if err == nil {
			fmt.Fprintf(w, "pulled %s in %s\n", ref, time.Since(t0).Round(100*time.Millisecond))
			return nil
		}
		if try == 3 || ctx.Err() != nil {
			return fmt.Errorf("pulling %s (%d tries): %w: pull it, or name a mirror's copy (the image's env variable, E2E_NODE_IMAGE)", ref, try, err)
		}
		fmt.Fprintf(w, "pulling %s failed (try %d of 3, again in 10 s): %v\n", ref, try, err)
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
	}
}

func pull(ctx context.Context, d *client.Client, ref string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	rc, err := d.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	// The stream ends when the pull does; its last message carries an error.
	return images.ReadStream(rc, io.Discard)
}

// saveImages writes refs to path as one docker save archive (layers shared
// between the images are stored once), through a temporary file: a cut
// save leaves no archive that looks whole.
func saveImages(ctx context.Context, d *client.Client, refs []string, path string, w io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	t0 := time.Now()
	rc, err := d.ImageSave(ctx, refs)
	if err != nil {
		return fmt.Errorf("docker save %s: %w", strings.Join(refs, " "), err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".save-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, rc)
	if err != nil {
		return fmt.Errorf("docker save %s: %w", strings.Join(refs, " "), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	fmt.Fprintf(w, "saved %s: %s (%d MB) in %s\n", filepath.Base(path), strings.Join(refs, " "), n>>20, time.Since(t0).Round(100*time.Millisecond))
	return nil
}
