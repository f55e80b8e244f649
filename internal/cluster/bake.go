package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/errdefs"
	kindexec "sigs.k8s.io/kind/pkg/exec"

	"github.com/testbed-dev/testbed/internal/atexit"
	"github.com/testbed-dev/testbed/internal/images"
)

// BakedRepo is the repository of the scope's node images with images
// baked in: testbed/<scope>-node.
func (s Scope) BakedRepo() string { return "testbed/" + string(s) + "-node" }

// Labels of a baked node image: what it was made from.
const (
	LabelBakedFrom   = "dev.testbed.baked-from"   // the base node image's ID
	LabelBakedImages = "dev.testbed.baked-images" // the baked refs, comma-separated
)

// BakeRecipe names how a node image is baked: a change to the bake
// changes it, and with it every baked image's tag.
const BakeRecipe = "bake v3"

// Baked is a node image derived from a base node image with images already
// in its containerd, so a cluster made from it needs no load of them.
type Baked struct {
	Ref    string   // the node image to create clusters from
	Images []string // the refs it holds beyond the base's
	Cached bool     // it existed: nothing was built
	// Missing is set by FindBakedNodeImage when the bake of Images has
	// not been made yet: Ref is then the base.
	Missing bool
}

// BakeNodeImage returns a node image derived from base with refs imported
// into its containerd, as `kind build node-image` imports its own images:
// kind starts nodes with an anonymous volume at /var, which the engine
// fills from the image's /var. The tag is derived from the base's ID and
// the refs' IDs, so an image baked earlier from the same inputs is used as
// it is (one inspect), and a changed base or image gets a new one. refs
// absent from the engine are left out (the node pulls them, as before);
// with the base absent, nothing is baked (kind pulls the base).
func (s Scope) BakeNodeImage(ctx context.Context, docker images.Docker, base string, refs []string, w io.Writer) (Baked, error) {
	return s.bakeNodeImage(ctx, docker, base, refs, true, w)
}

// FindBakedNodeImage is BakeNodeImage without the bake: a run that must
// not wait for one (about 1.5 min here) creates its cluster from base and
// loads the images, and bakes for the next run.
func (s Scope) FindBakedNodeImage(ctx context.Context, docker images.Docker, base string, refs []string, w io.Writer) (Baked, error) {
	return s.bakeNodeImage(ctx, docker, base, refs, false, w)
}

func (s Scope) bakeNodeImage(ctx context.Context, docker images.Docker, base string, refs []string, build bool, w io.Writer) (Baked, error) {
	if rt, err := runtime(); err != nil || rt != "docker" {
		// The baked image is made in Docker's store; another runtime's
		// nodes would not find it.
		fmt.Fprintf(w, "nodes run in %s, not Docker: not baking (the images are loaded)\n", rt)
		return Baked{Ref: base}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	baseImg, err := docker.ImageInspect(ctx, base)
	if errdefs.IsNotFound(err) {
		fmt.Fprintf(w, "node image %s is not on this host: not baking (kind pulls it; the images are loaded)\n", base)
		return Baked{Ref: base}, nil
	}
	if err != nil {
		return Baked{}, fmt.Errorf("node image %s: %w", base, err)
	}
	ids := map[string]string{}
	var have []string
	for _, ref := range slices.Sorted(slices.Values(refs)) {
		img, err := docker.ImageInspect(ctx, ref)
		if errdefs.IsNotFound(err) {
			fmt.Fprintf(w, "%s is not on this host: not baked, the node will pull it\n", ref)
			continue
		}
		if err != nil {
			return Baked{}, fmt.Errorf("inspecting %s: %w", ref, err)
		}
		ids[ref] = img.ID
		have = append(have, ref)
	}
	if len(have) == 0 {
		return Baked{Ref: base}, nil
	}
	tag := bakedTag(s, baseImg.ID, ids)
	if _, err := docker.ImageInspect(ctx, tag); err == nil {
		fmt.Fprintf(w, "cached: %s (%s with %s)\n", tag, base, strings.Join(have, ", "))
		return Baked{Ref: tag, Images: have, Cached: true}, nil
	} else if !errdefs.IsNotFound(err) {
		return Baked{}, fmt.Errorf("inspecting %s: %w", tag, err)
	}
	if !build {
		fmt.Fprintf(w, "not baked yet: %s with %s (the images are loaded)\n", base, strings.Join(have, ", "))
		return Baked{Ref: base, Images: have, Missing: true}, nil
	}
	t0 := time.Now()
	if err := bake(ctx, docker, base, baseImg.Config.Entrypoint, baseImg.ID, have, tag); err != nil {
		return Baked{}, fmt.Errorf("baking %s into %s: %w", strings.Join(have, ", "), base, err)
	}
	fmt.Fprintf(w, "baked: %s (%s with %s) in %s\n", tag, base, strings.Join(have, ", "), time.Since(t0).Round(100*time.Millisecond))
	return Baked{Ref: tag, Images: have}, nil
}

// bakedTag names the bake of the images ids holds (ref → ID) into the
// base image baseID: the same inputs, the same tag.
func bakedTag(s Scope, baseID string, ids map[string]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", BakeRecipe, baseID)
	for _, ref := range slices.Sorted(maps.Keys(ids)) {
		fmt.Fprintf(h, "%s\x00%s\x00", ref, ids[ref])
	}
	return s.BakedRepo() + ":" + hex.EncodeToString(h.Sum(nil))[:12]
}

// bake runs a container of the base image with containerd, imports the
// images, unpacks every image the node holds (see unpackAll), stops
// containerd and commits the container.
func bake(ctx context.Context, docker images.Docker, base string, entrypoint []string, baseID string, refs []string, tag string) error {
	name := fmt.Sprintf("testbed-bake-%d", time.Now().UnixNano())
	run := func(stdin io.Reader, args ...string) error {
		_, err := engineOutput(ctx, "docker", stdin, args...)
		return err
	}
	// Privileged: unpacking mounts overlay file systems, as in a node.
	if err := run(nil, "run", "-d", "--name", name, "--entrypoint", "sleep", "--privileged", base, "infinity"); err != nil {
		return err
	}
	remove := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		kindexec.CommandContext(rctx, "docker", "rm", "-f", "-v", name).Run()
	}
	// A process that exits at once (a second Ctrl-C) skips the defers.
	defer atexit.Register(remove)()
	defer remove()
	if err := run(nil, "exec", "-d", name, "containerd"); err != nil {
		return err
	}
	if err := poll(ctx, 30*time.Second, "containerd to answer", func() bool { return run(nil, "exec", name, "ctr", "version") == nil }); err != nil {
		return err
	}
	rc, err := docker.ImageSave(ctx, refs)
	if err != nil {
		return fmt.Errorf("docker save: %w", err)
	}
	err = run(rc, "exec", "-i", name, "ctr", "--namespace=k8s.io", "images", "import",
		"--label=io.cri-containerd.pinned=pinned", "--all-platforms", "--no-unpack", "--digests", "-")
	rc.Close()
	if err != nil {
		return err
	}
	if err := unpackAll(ctx, name); err != nil {
		return err
	}
	if err := run(nil, "exec", name, "pkill", "-x", "containerd"); err != nil {
		return err
	}
	if err := poll(ctx, 30*time.Second, "containerd to stop", func() bool { return run(nil, "exec", name, "pgrep", "-x", "containerd") != nil }); err != nil {
		return err
	}
	if err := snapshotsOutOfVar(ctx, name); err != nil {
		return err
	}
	ep, err := json.Marshal(entrypoint)
	if err != nil {
		return err
	}
	return run(nil, "commit",
		"--change", "ENTRYPOINT "+string(ep),
		"--change", "CMD []",
		"--change", fmt.Sprintf("LABEL %s=%q %s=%q", LabelBakedFrom, baseID, LabelBakedImages, strings.Join(refs, ",")),
		name, tag)
}

// snapshotsOutOfVar moves the overlayfs snapshots (all committed: the
// unpacked layers) out of /var into the image's own file system, leaving
// a symbolic link in each one's place. kind starts a node with an
// anonymous volume at /var that the engine fills by copying the image's
// /var file by file; what lies elsewhere is read from the image's layers
// in place. Containerd joins a snapshot's path into the overlay's
// lowerdir, which the kernel resolves through the link; a container's
// upper layer is still made in /var, on the volume. With the engine's
// overlay2 the node's root is an overlay, so a container's overlay is the
// second of the two the kernel allows stacked. Measured here, fresh
// e2e:gateway vs 69ebb7d (no bake), 5 runs each, alternating: kind's
// create 13.8–15.1 s (24.1–28.0 s with the snapshots in /var), the suite
// started after 24.8–29.5 s (median 27.2 s) vs 32.4–49.1 s (median
// 42.2 s).
func snapshotsOutOfVar(ctx context.Context, name string) error {
	const root = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
	const dest = "/opt/testbed-snapshots"
	exec := func(args ...string) (string, error) { return execIn(ctx, name, args...) }
	if _, err := exec("test", "-d", root); err != nil {
		return nil // another snapshotter: its snapshots stay where they are
	}
	// Directories only: a link is a snapshot moved already (a base baked
	// before).
	out, err := exec("find", root, "-mindepth", "1", "-maxdepth", "1", "-type", "d", "-printf", "%f\n")
	if err != nil {
		return err
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return nil
	}
	var from, to []string
	for _, id := range ids {
		from = append(from, root+"/"+id)
		to = append(to, dest+"/"+id)
	}
	if _, err := exec("mkdir", "-p", dest); err != nil {
		return err
	}
	if _, err := exec(append(append([]string{"mv"}, from...), dest)...); err != nil {
		return err
	}
	_, err = exec(append(append([]string{"ln", "-s"}, to...), root)...)
	return err
}

// poll calls cond every 200 ms until it holds, or fails after d.
func poll(ctx context.Context, d time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s", d, what)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), fmt.Errorf("waiting for %s", what))
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// unpackAll unpacks every image of the containerd in container name (the
// node image's own and the baked ones) into its overlayfs snapshots, and
// drops their layer blobs, as containerd's CRI does after a pull
// (discard_unpacked_layers): a node then starts each container without
// unpacking its image first, and its /var stays about the size it was
// (the images arrive as uncompressed tars). Measured here, fresh
// e2e:gateway, 5 runs each, alternating: after kind returned, CoreDNS was
// ready in 4.3–7.5 s instead of 12.8–24.8 s (kube-proxy, through which it
// reaches the API, no longer unpacks 205 MB beside PostgreSQL and Redis)
// and PostgreSQL 4.7–5.9 s after its apply instead of 11.4–15.2 s; but
// kind's create took 24.1–28.0 s instead of 15.1–17.4 s, as the engine
// copied the image's /var into the node's volume file by file (22,000
// files instead of 1,000), until snapshotsOutOfVar moved them out.
func unpackAll(ctx context.Context, name string) error {
	ctr := func(args ...string) (string, error) {
		out, err := execIn(ctx, name, append([]string{"ctr", "--namespace=k8s.io"}, args...)...)
		if err != nil {
			return "", fmt.Errorf("ctr %s: %w", strings.Join(args, " "), err)
		}
		return out, nil
	}
	list, err := ctr("images", "ls")
	if err != nil {
		return err
	}
	targets := map[string]string{} // digest → a ref of it
	for _, line := range strings.Split(list, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 3 && strings.HasPrefix(f[2], "sha256:") {
			targets[f[2]] = f[0]
		}
	}
	const mnt = "/tmp/testbed-unpack"
	if _, err := execIn(ctx, name, "mkdir", "-p", mnt); err != nil {
		return err
	}
	// Every image first, then the blobs: images that share a layer need
	// its blob until each has unpacked it.
	blobs := map[string]bool{}
	for digest, ref := range targets {
		if _, err := ctr("images", "mount", ref, mnt); err != nil {
			return err
		}
		if _, err := ctr("images", "unmount", "--rm", mnt); err != nil {
			return err
		}
		layers, err := layerBlobs(ctr, digest)
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		for _, l := range layers {
			blobs[l] = true
		}
	}
	if len(blobs) == 0 {
		return nil
	}
	_, err = ctr(append([]string{"content", "rm"}, slices.Sorted(maps.Keys(blobs))...)...)
	return err
}

// engineOutput runs the CLI of the container engine runtime (docker,
// podman) and returns its standard output; the error carries its standard
// error.
func engineOutput(ctx context.Context, runtime string, stdin io.Reader, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := kindexec.CommandContext(ctx, runtime, args...)
	if stdin != nil {
		cmd.SetStdin(stdin)
	}
	if err := cmd.SetStdout(&out).SetStderr(&errOut).Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", runtime, strings.Join(args[:min(len(args), 3)], " "), err, strings.TrimSpace(errOut.String()+" "+out.String()))
	}
	return out.String(), nil
}

// execIn runs a command in container name and returns its standard output.
func execIn(ctx context.Context, name string, args ...string) (string, error) {
	return engineOutput(ctx, "docker", nil, append([]string{"exec", name}, args...)...)
}

// layerBlobs returns the layer digests of the linux/amd64 (or only)
// manifest under digest, read from the content store with get.
func layerBlobs(get func(...string) (string, error), digest string) ([]string, error) {
	raw, err := get("content", "get", digest)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", digest, err)
	}
	if len(doc.Manifests) > 0 {
		for _, m := range doc.Manifests {
			if (m.Platform.OS == "linux" && m.Platform.Architecture == goruntime.GOARCH) || len(doc.Manifests) == 1 {
				return layerBlobs(get, m.Digest)
			}
		}
		return nil, nil // no manifest of this platform: nothing unpacked to drop
	}
	var out []string
	for _, l := range doc.Layers {
		out = append(out, l.Digest)
	}
	return out, nil
}
