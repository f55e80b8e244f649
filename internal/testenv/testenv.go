// Package testenv gates tests on the real Docker engine and kind: they skip
// with a reason where Docker is not reachable, except under CI=true, where
// they must run.
package testenv

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// InCI reports CI=true: there nothing that needs Docker or kind may skip,
// not even under -short.
func InCI() bool { return os.Getenv("CI") == "true" }

// Short reports whether a test that needs Docker or kind should skip for
// -short: never under CI=true.
func Short() bool { return testing.Short() && !InCI() }

// RequireDocker returns a client of the real engine, or skips (fails under CI).
func RequireDocker(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = c.Ping(ctx)
	}
	if err != nil {
		if InCI() {
			t.Fatalf("CI=true and Docker is not reachable: %v", err)
		}
		t.Skipf("Docker is not reachable (%v): start it (../shared/tools/docker-up.sh) to run this test", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// RequireKind is RequireDocker plus a kind node image: E2E_NODE_IMAGE must
// name one present on the engine (no registry can be reached here). Such
// tests also skip under -short.
func RequireKind(t testing.TB) (docker *client.Client, nodeImage string) {
	t.Helper()
	if Short() {
		t.Skip("creates a kind cluster: skipped under -short (never under CI=true)")
	}
	docker = RequireDocker(t)
	nodeImage = os.Getenv("E2E_NODE_IMAGE")
	if nodeImage == "" {
		if InCI() {
			t.Fatal("CI=true and E2E_NODE_IMAGE is not set: .ci/run sets it from ../shared/tools/offline-kind")
		}
		t.Skip("E2E_NODE_IMAGE is not set: eval \"$(../shared/tools/offline-kind/build.sh env)\" to run this test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := docker.ImageInspect(ctx, nodeImage); err != nil {
		t.Fatalf("E2E_NODE_IMAGE=%s is not on the Docker engine: %v", nodeImage, err)
	}
	return docker, nodeImage
}
