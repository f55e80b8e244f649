package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/testbed-dev/testbed/internal/images"
)

// LoadImage imports an image from the host's engine into every node that
// does not already hold the same image ID. The image streams from the
// engine into the node's containerd: no temporary file, so two runs cannot
// collide on a path. The caller keeps imports into one node one at a time.
func (c *Cluster) LoadImage(ctx context.Context, docker images.Docker, ref, id string, w io.Writer) error {
	ns, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, n := range ns {
		g.Go(func() error {
			if have, _ := nodeImageID(gctx, n, ref); have == id {
				fmt.Fprintf(w, "%s: already holds %s (%s)\n", n, ref, images.ShortID(id))
				return nil
			}
			t0 := time.Now()
			if err := importImage(gctx, docker, n, ref); err != nil {
				return fmt.Errorf("loading %s into %s: %w", ref, n, err)
			}
			fmt.Fprintf(w, "%s: loaded %s in %s\n", n, ref, time.Since(t0).Round(time.Millisecond))
			return nil
		})
	}
	return g.Wait()
}

func importImage(ctx context.Context, docker images.Docker, n nodes.Node, ref string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	snap, err := snapshotter(ctx, n)
	if err != nil {
		return err
	}
	rc, err := docker.ImageSave(ctx, []string{ref})
	if err != nil {
		return fmt.Errorf("docker save: %w", err)
	}
	defer rc.Close()
	var out bytes.Buffer
	cmd := n.CommandContext(ctx, "ctr", "--namespace=k8s.io", "images", "import", "--all-platforms", "--digests", "--snapshotter="+snap, "-").
		SetStdin(rc).SetStdout(&out).SetStderr(&out)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ctr import: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

var snapshotterLine = regexp.MustCompile(`(?m)^\s*snapshotter\s*=\s*"([^"]+)"`)

// snapshotter reads the CRI's snapshotter from containerd's configuration,
// as kind does, so the image is unpacked where the kubelet looks for it.
func snapshotter(ctx context.Context, n nodes.Node) (string, error) {
	var out bytes.Buffer
	if err := n.CommandContext(ctx, "containerd", "config", "dump").SetStdout(&out).Run(); err != nil {
		return "", fmt.Errorf("reading containerd's config: %w", err)
	}
	if m := snapshotterLine.FindStringSubmatch(out.String()); m != nil {
		return m[1], nil
	}
	return "overlayfs", nil
}

// nodeImageID is the ID of the image ref on the node, "" when absent.
func nodeImageID(ctx context.Context, n nodes.Node, ref string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := n.CommandContext(ctx, "crictl", "inspecti", "-o", "json", ref).SetStdout(&out).Run(); err != nil {
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
