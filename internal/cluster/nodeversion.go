package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// kindVersionRE is the start of a node image's /kind/version (v1.34.4).
var kindVersionRE = regexp.MustCompile(`^v1\.(\d+)\.`)

// nodeKubeMinor is the Kubernetes minor version of a kind node image (34
// for v1.34.4), read from its /kind/version (as kind reads it from a node)
// without running it: a container created and removed, never started,
// 0.16–0.28 s here. The answer is kept under testbed's cache by image ID.
func (c *Cluster) nodeKubeMinor(ctx context.Context, image string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id, err := engineOutput(ctx, c.runtime, nil, "image", "inspect", "-f", "{{.Id}}", "--", image)
	if err != nil {
		return 0, err
	}
	id = strings.TrimSpace(id)
	base, err := os.UserCacheDir()
	if err != nil {
		return 0, err
	}
	cached := filepath.Join(base, "testbed", "_node-versions", strings.TrimPrefix(id, "sha256:"))
	version, err := os.ReadFile(cached)
	if err != nil {
		if version, err = c.readKindVersion(ctx, image); err != nil {
			return 0, err
		}
		if err := os.MkdirAll(filepath.Dir(cached), 0o755); err == nil {
			_ = os.WriteFile(cached, version, 0o644) // a cache: lost, it is read again
		}
	}
	m := kindVersionRE.FindSubmatch(bytes.TrimSpace(version))
	if m == nil {
		return 0, fmt.Errorf("node image %s: /kind/version says %q, not v1.N.M", image, version)
	}
	return strconv.Atoi(string(m[1]))
}

// readKindVersion copies /kind/version out of a container of image that
// is created and removed without being started.
func (c *Cluster) readKindVersion(ctx context.Context, image string) ([]byte, error) {
	id, err := engineOutput(ctx, c.runtime, nil, "create", "--label", "dev.testbed.version-probe=1", "--", image)
	if err != nil {
		return nil, err
	}
	id = strings.TrimSpace(id)
	defer kindexec.CommandContext(context.WithoutCancel(ctx), c.runtime, "rm", "-f", "-v", id).Run()
	var archive bytes.Buffer
	if err := kindexec.CommandContext(ctx, c.runtime, "cp", id+":/kind/version", "-").SetStdout(&archive).Run(); err != nil {
		return nil, fmt.Errorf("reading /kind/version of node image %s: %w", image, err)
	}
	tr := tar.NewReader(&archive)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("reading /kind/version of node image %s: %w", image, err)
		}
		if h.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, 1<<10))
		}
	}
}
