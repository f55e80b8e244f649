package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CoverDir is the node directory pods write Go coverage data into.
const CoverDir = "/var/testbed/coverage"

// PrepareCoverDir makes CoverDir on every node, empty and writable by the
// pods' non-root users.
func (c *Cluster) PrepareCoverDir(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ns, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range ns {
		for _, args := range [][]string{
			{"mkdir", "-p", CoverDir},
			{"chmod", "0777", CoverDir},
			// Emptied, not removed: pods of a reused cluster may have it mounted.
			{"find", CoverDir, "-mindepth", "1", "-delete"},
		} {
			var out bytes.Buffer
			if err := n.CommandContext(ctx, args[0], args[1:]...).SetStdout(&out).SetStderr(&out).Run(); err != nil {
				return fmt.Errorf("%s: %s: %w: %s", n, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
			}
		}
	}
	return nil
}

// CopyCoverDir copies the coverage files of every node into dir and returns
// how many there were.
func (c *Cluster) CopyCoverDir(ctx context.Context, dir string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ns, err := c.Nodes(ctx)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	total := 0
	for _, n := range ns {
		pr, pw := io.Pipe()
		var stderr bytes.Buffer
		done := make(chan error, 1)
		go func() {
			err := n.CommandContext(ctx, "tar", "-C", CoverDir, "-cf", "-", ".").SetStdout(pw).SetStderr(&stderr).Run()
			pw.CloseWithError(err)
			done <- err
		}()
		count, xerr := extractFlat(pr, dir)
		if xerr == nil {
			_, xerr = io.Copy(io.Discard, pr) // tar pads its end beyond the end-of-archive marker
		}
		pr.CloseWithError(errors.New("extraction stopped")) // unblocks the writer if extraction failed
		if err := <-done; err != nil {
			return total, fmt.Errorf("%s: reading %s: %w: %s", n, CoverDir, err, strings.TrimSpace(stderr.String()))
		}
		if xerr != nil {
			return total, fmt.Errorf("%s: extracting coverage data: %w", n, xerr)
		}
		total += count
	}
	return total, nil
}

// extractFlat writes the regular files of a tar stream into dir. Coverage
// data files are flat; a name that is not local is refused.
func extractFlat(r io.Reader, dir string) (int, error) {
	tr := tar.NewReader(r)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := filepath.Clean(h.Name)
		if !filepath.IsLocal(name) || strings.Contains(name, string(filepath.Separator)) {
			return n, fmt.Errorf("unexpected entry %q", h.Name)
		}
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return n, err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return n, err
		}
		n++
	}
}
