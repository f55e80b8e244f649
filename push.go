package testbed

import (
	"context"
	"fmt"
	"time"

	"github.com/testbed-dev/testbed/internal/images"
	"github.com/testbed-dev/testbed/internal/registry"
)

// Push builds a service's images (cached as always) and pushes each to
// the registry of Options.Registry as <registry>/<image>:<Options.Tag>:
// the CI job that builds, for jobs that only pull (IMAGE_REGISTRY and
// IMAGE_TAG set, nothing built or loaded there). Credentials are the
// Docker config's, as docker push uses them.
func (t *Testbed) Push(ctx context.Context, service string) error {
	if t.Opts.Registry == "" || t.Opts.Tag == "" {
		return &InputError{fmt.Errorf("pushing needs IMAGE_REGISTRY and IMAGE_TAG: where to, and under which tag")}
	}
	svc, err := t.Topo.Service(service)
	if err != nil {
		return &InputError{err}
	}
	d, err := images.NewDocker(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	t0 := time.Now()
	var n int
	for _, name := range t.Topo.ImagesOf(svc) {
		img := t.Topo.Images[name]
		if !img.Built() {
			continue // third-party: the nodes get it as without a registry
		}
		b := &images.Builder{Docker: d, Root: t.Opts.Root, Timeout: t.Opts.BuildTimeout, Rebuild: t.Opts.Rebuild}
		built, err := b.Build(ctx, name, img, t.Out)
		if err != nil {
			return err
		}
		if _, err := registry.Publish(ctx, d, built.Ref, t.Opts.Registry+"/"+name+":"+t.Opts.Tag, t.Out); err != nil {
			return err
		}
		n++
	}
	fmt.Fprintf(t.Out, "testbed: pushed %d image(s) of %s to %s with tag %s in %s\n", n, service, t.Opts.Registry, t.Opts.Tag, time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// StartRegistry starts testbed's local registry, or finds it running.
func (t *Testbed) StartRegistry(ctx context.Context) error {
	d, err := images.NewDocker(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	return registry.Ensure(ctx, d, t.Opts.Root, t.Out)
}

// RemoveRegistry removes testbed's local registry and its volume.
func (t *Testbed) RemoveRegistry(ctx context.Context) error {
	d, err := images.NewDocker(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	return registry.Remove(ctx, d, t.Out)
}
