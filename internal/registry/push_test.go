package registry

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/docker/docker/client"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/testbed-dev/testbed/internal/images"
)

// savingEngine is an engine that holds one image and saves it as
// `docker save` does; nothing else of images.Docker is used by Push.
type savingEngine struct {
	images.Docker
	saved []byte
}

func (e savingEngine) ImageSave(context.Context, []string, ...client.ImageSaveOption) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(e.saved)), nil
}

func engineWith(t *testing.T, local string, img v1.Image) savingEngine {
	t.Helper()
	tag, err := name.NewTag(local)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	return savingEngine{saved: buf.Bytes()}
}

func configOf(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.String()
}

func plant(t *testing.T, ref string) v1.Hash {
	t.Helper()
	other, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, other); err != nil {
		t.Fatal(err)
	}
	cfg, _ := other.ConfigName()
	return cfg
}

// TestPushPinsTheImageItBuilt: the registry takes writes from anything on
// the kind network, so an image planted under the content tag, before the
// push or after it, must never be what the nodes are told to pull.
func TestPushPinsTheImageItBuilt(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	ours, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ours.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	id := cfg.String()
	engine := engineWith(t, "testbed/web:abc", ours)
	remoteTag := host + "/web:" + strings.TrimPrefix(id, "sha256:")[:12]

	// Planted before the push, under the very tag testbed would use.
	planted := plant(t, remoteTag)
	var out strings.Builder
	pinned, err := Push(context.Background(), engine, "testbed/web:abc", id, remoteTag, &out)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, out.String())
	}
	if !strings.HasPrefix(pinned, host+"/web@sha256:") {
		t.Fatalf("push returned %q, want %s/web@sha256:…, a reference by digest", pinned, host)
	}
	if got := configOf(t, pinned); got != id {
		t.Fatalf("%s is the image of config %s (planted: %s), want this image's %s", pinned, got, planted, id)
	}
	if !strings.Contains(out.String(), "not this image") {
		t.Errorf("the push did not say the tag held another image: %q", out.String())
	}

	// The tag now holds this image: found, not pushed again, same digest.
	var again strings.Builder
	pinned2, err := Push(context.Background(), engine, "testbed/web:abc", id, remoteTag, &again)
	if err != nil || pinned2 != pinned || !strings.Contains(again.String(), "in the registry already") {
		t.Errorf("second push: %q, %v, %q; want %q found in the registry", pinned2, err, again.String(), pinned)
	}

	// Planted after the push: the tag moves, the pinned reference does not.
	plant(t, remoteTag)
	if got := configOf(t, pinned); got != id {
		t.Errorf("after a later write to the tag, %s is config %s, want %s", pinned, got, id)
	}
}
