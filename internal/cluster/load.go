package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/testbed-dev/testbed/internal/images"
)

// LoadImage imports an image from the host's engine into every node that
// does not already hold the same image ID. The image is exported once and
// streamed into each such node's containerd at the same time: no temporary
// file, so two runs cannot collide on a path. The caller keeps imports
// into one node one at a time. held, when not nil, is what ImageIDs found
// on the nodes: a single node missing from it is not asked again.
func (c *Cluster) LoadImage(ctx context.Context, docker images.Docker, ref, id string, held map[string]string, w io.Writer) error {
	ns, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	var need []nodes.Node
	for _, n := range ns {
		if held != nil && len(ns) == 1 && held[NormalizeRef(ref)] != id {
			need = append(need, n)
			continue
		}
		if have, _ := c.nodeImageID(ctx, n, ref); have == id {
			fmt.Fprintf(w, "%s: already holds %s (%s)\n", n, ref, images.ShortID(id))
			continue
		}
		need = append(need, n)
	}
	if len(need) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	rc, err := docker.ImageSave(ctx, []string{ref})
	if err != nil {
		return fmt.Errorf("docker save %s: %w", ref, err)
	}
	defer rc.Close()
	g, gctx := errgroup.WithContext(ctx)
	writers := make([]io.Writer, len(need))
	pipes := make([]*io.PipeWriter, len(need))
	for i, n := range need {
		pr, pw := io.Pipe()
		writers[i], pipes[i] = pw, pw
		g.Go(func() error {
			how, err := c.importImage(gctx, n, pr)
			pr.CloseWithError(fmt.Errorf("import into %s ended", n)) // stops the copy if it ended early
			if err != nil {
				return fmt.Errorf("loading %s into %s: %w", ref, n, err)
			}
			fmt.Fprintf(w, "%s: loaded %s in %s (%s)\n", n, ref, time.Since(t0).Round(time.Millisecond), how)
			return nil
		})
	}
	_, cerr := io.Copy(io.MultiWriter(writers...), rc)
	for _, pw := range pipes {
		pw.CloseWithError(cerr) // nil: the importers see the end of the image
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("docker save %s: %w", ref, cerr)
	}
	return nil
}

// importImage feeds an image archive to the node's containerd; how says
// how ctr was started in the node (nodeCommand).
func (c *Cluster) importImage(ctx context.Context, n nodes.Node, archive io.Reader) (how string, err error) {
	snap, err := c.snapshotter(ctx, n)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd, entered := c.nodeCommand(ctx, n, "ctr", "--namespace=k8s.io", "images", "import", "--all-platforms", "--digests", "--snapshotter="+snap, "-")
	how = c.runtime + " exec"
	if entered {
		how = "nsenter"
	}
	if err := cmd.SetStdin(archive).SetStdout(&out).SetStderr(&out).Run(); err != nil {
		return how, fmt.Errorf("ctr import (%s): %w: %s", how, err, strings.TrimSpace(out.String()))
	}
	return how, nil
}

var snapshotterLine = regexp.MustCompile(`(?m)^\s*snapshotter\s*=\s*"([^"]+)"`)

// snapshotters remembers each node's snapshotter: a node's containerd
// configuration does not change while it lives, and asking costs a
// docker exec per load.
var snapshotters sync.Map // node name → snapshotter

// snapshotter reads the CRI's snapshotter from containerd's configuration,
// as kind does, so the image is unpacked where the kubelet looks for it.
func (c *Cluster) snapshotter(ctx context.Context, n nodes.Node) (string, error) {
	if s, ok := snapshotters.Load(n.String()); ok {
		return s.(string), nil
	}
	s, err := c.readSnapshotter(ctx, n)
	if err == nil {
		snapshotters.Store(n.String(), s)
	}
	return s, err
}

func (c *Cluster) readSnapshotter(ctx context.Context, n nodes.Node) (string, error) {
	var out bytes.Buffer
	cmd, _ := c.nodeCommand(ctx, n, "containerd", "config", "dump")
	if err := cmd.SetStdout(&out).Run(); err != nil {
		return "", fmt.Errorf("reading containerd's config: %w", err)
	}
	if m := snapshotterLine.FindStringSubmatch(out.String()); m != nil {
		return m[1], nil
	}
	return "overlayfs", nil
}

// nodeImageID is the ID of the image ref on the node, "" when absent.
func (c *Cluster) nodeImageID(ctx context.Context, n nodes.Node, ref string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd, _ := c.nodeCommand(ctx, n, "crictl", "inspecti", "-o", "json", ref)
	if err := cmd.SetStdout(&out).Run(); err != nil {
		return "", err
	}
	var v struct {
		Status struct {
			ID string `json:"id"`
		} `json:"status"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		return "", err
	}
	return v.Status.ID, nil
}

// ImageIDs maps each image reference every node holds (normalized, as
// docker.io/library/redis:7-alpine) to its ID: one crictl call per node,
// so that a run's loads of what the nodes already hold (a warm or baked
// cluster) cost nothing more.
func (c *Cluster) ImageIDs(ctx context.Context) (map[string]string, error) {
	ns, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var common map[string]string
	for _, n := range ns {
		var out bytes.Buffer
		cmd, _ := c.nodeCommand(ctx, n, "crictl", "images", "-o", "json")
		if err := cmd.SetStdout(&out).Run(); err != nil {
			return nil, fmt.Errorf("crictl images on %s: %w", n, err)
		}
		var v struct {
			Images []struct {
				ID          string   `json:"id"`
				RepoTags    []string `json:"repoTags"`
				RepoDigests []string `json:"repoDigests"`
			} `json:"images"`
		}
		if err := json.Unmarshal(out.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("crictl images on %s: %w", n, err)
		}
		ids := map[string]string{}
		for _, img := range v.Images {
			// An image pulled by digest (what testbed's registry serves)
			// has a digest and no tag.
			for _, t := range append(img.RepoTags, img.RepoDigests...) {
				ids[t] = img.ID
			}
		}
		if common == nil {
			common = ids
			continue
		}
		for ref, id := range common {
			if ids[ref] != id {
				delete(common, ref)
			}
		}
	}
	return common, nil
}

// NormalizeRef is ref as containerd names it: docker.io/library/redis:7.
func NormalizeRef(ref string) string {
	if n, err := reference.ParseNormalizedNamed(ref); err == nil {
		return reference.TagNameOnly(n).String()
	}
	return ref
}
