package cluster

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/testbed-dev/testbed/internal/testenv"
)

// TestIntegrationInterruptedCreateLeavesNothing cancels the context while
// kind creates the cluster: Create must return the cancellation and no
// cluster may remain.
func TestIntegrationInterruptedCreateLeavesNothing(t *testing.T) {
	_, nodeImage := testenv.RequireKind(t)
	c := openTestCluster(t, "ctrlc")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(3*time.Second, cancel) // what Ctrl-C does to a target's context
	var out strings.Builder
	_, err := c.Create(ctx, CreateOptions{NodeImage: nodeImage, Service: "ctrlc"}, &out)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if ok, err := c.Exists(context.Background()); err != nil || ok {
		t.Fatalf("cluster left behind after the interrupt (exists=%v, %v)\n%s", ok, err, out.String())
	}
}

// TestIntegrationReuse creates a cluster (its keys ECDSA: kubeadm ignores
// a patch of the wrong config version without failing), then asks for it
// again with and without reuse.
func TestIntegrationReuse(t *testing.T) {
	_, nodeImage := testenv.RequireKind(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := openTestCluster(t, "reuse")
	if _, err := c.Create(ctx, CreateOptions{NodeImage: nodeImage, Service: "reuse"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	ns, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if key, err := nodeOutput(ctx, ns[0], "head", "-1", "/etc/kubernetes/pki/apiserver.key"); err != nil || key != "-----BEGIN EC PRIVATE KEY-----" {
		t.Errorf("the API server's key begins %q (%v); want an EC key (ecdsaKeysPatches)", key, err)
	}
	got, err := c.Create(ctx, CreateOptions{NodeImage: nodeImage, Service: "reuse"}, io.Discard)
	if got != NotMade || !errors.Is(err, ErrExists) {
		t.Fatalf("second create without reuse: outcome %v, %v; want NotMade, ErrExists", got, err)
	}
	if err == nil || !strings.Contains(err.Error(), "E2E_REUSE_CLUSTER=1") {
		t.Fatalf("second create without reuse: %v", err)
	}
	t0 := time.Now()
	got, err = c.Create(ctx, CreateOptions{NodeImage: nodeImage, Service: "reuse", Reuse: true}, io.Discard)
	if err != nil || got != Reused {
		t.Fatalf("reuse: outcome %v, %v", got, err)
	}
	t.Logf("reused in %s", time.Since(t0).Round(time.Millisecond))
	if err := c.Delete(ctx, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, io.Discard); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}
