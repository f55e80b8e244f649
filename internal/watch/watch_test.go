package watch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/testbed-dev/testbed/internal/affected"
)

func write(t *testing.T, root, name, body string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func fixture(t *testing.T) (*Poller, string) {
	root := t.TempDir()
	for _, f := range []string{"cmd/gw/main.go", "cmd/gw/main_test.go", "cmd/gw/README.md", "cmd/gw/sub/x.go", "deploy/gw/kustomization.yaml", "deploy/gw/deploy.yaml", "Dockerfile", "other.go"} {
		write(t, root, f, "package x\n")
	}
	p := &Poller{Root: root, Interval: 10 * time.Millisecond, Quiet: 80 * time.Millisecond}
	if err := p.Start([]affected.Path{
		affected.PackageDir("cmd/gw", false), affected.Tree("deploy/gw"), affected.File("Dockerfile"), affected.File("missing/yet"),
	}); err != nil {
		t.Fatal(err)
	}
	return p, root
}

func TestScanListsWhatThePathsName(t *testing.T) {
	p, _ := fixture(t)
	var got []string
	for f := range p.last {
		got = append(got, f)
	}
	slices.Sort(got)
	want := []string{"Dockerfile", "cmd/gw/main.go", "deploy/gw/deploy.yaml", "deploy/gw/kustomization.yaml"}
	if !slices.Equal(got, want) {
		t.Errorf("scanned %v, want %v (no test file, README, subpackage or other file)", got, want)
	}
}

// next waits up to d for a change.
func next(p *Poller, d time.Duration) (Change, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return p.Next(ctx)
}

func TestNextReportsAChangeWithTheTimeOfTheSave(t *testing.T) {
	p, root := fixture(t)
	// Files no path names: no change.
	write(t, root, "cmd/gw/main_test.go", "package x // edited\n")
	write(t, root, "cmd/gw/sub/x.go", "package sub // edited\n")
	write(t, root, "other.go", "package x // edited\n")
	if c, err := next(p, 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a change to files no path names was reported: %v, %v", c, err)
	}
	// A save of two files, 30 ms apart, is one change.
	go func() {
		write(t, root, "cmd/gw/main.go", "package x // edited\n")
		time.Sleep(30 * time.Millisecond)
		write(t, root, "deploy/gw/deploy.yaml", "kind: Deployment\n")
	}()
	c, err := next(p, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cmd/gw/main.go", "deploy/gw/deploy.yaml"}; !slices.Equal(c.Files, want) {
		t.Errorf("changed %v, want %v", c.Files, want)
	}
	fi, err := os.Stat(filepath.Join(root, "deploy/gw/deploy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Saved.Equal(fi.ModTime()) || c.Seen.Before(c.Saved) {
		t.Errorf("saved %v, seen %v: want the newest file's time %v, seen after it", c.Saved, c.Seen, fi.ModTime())
	}
	// Reported once: nothing more until the next save.
	if c, err := next(p, 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the same change was reported again: %v, %v", c, err)
	}
}

func TestNextReportsAddedAndRemovedFiles(t *testing.T) {
	p, root := fixture(t)
	write(t, root, "missing/yet", "now\n")
	write(t, root, "deploy/gw/patch/extra.yaml", "a: b\n")
	if err := os.Remove(filepath.Join(root, "Dockerfile")); err != nil {
		t.Fatal(err)
	}
	c, err := next(p, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Dockerfile", "deploy/gw/patch/extra.yaml", "missing/yet"}; !slices.Equal(c.Files, want) {
		t.Errorf("changed %v, want %v", c.Files, want)
	}
}

func TestNextEndsWithItsContext(t *testing.T) {
	p, _ := fixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// TestStartWhileNextWaitsWatchesTheNewPaths: a topology change gives the
// watch other paths while its poller waits; the files the new paths add
// are not a change, a save to one of them is.
func TestStartWhileNextWaitsWatchesTheNewPaths(t *testing.T) {
	p, root := fixture(t)
	got := make(chan Change, 1)
	go func() {
		c, err := next(p, 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	time.Sleep(50 * time.Millisecond)
	if err := p.Start([]affected.Path{affected.File("other.go")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	write(t, root, "cmd/gw/main.go", "package x // no longer watched\n")
	write(t, root, "other.go", "package x // watched now\n")
	if c := <-got; !slices.Equal(c.Files, []string{"other.go"}) {
		t.Errorf("changed %v, want [other.go] alone", c.Files)
	}
}
