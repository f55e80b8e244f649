package images

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/testbed-dev/testbed/internal/testenv"
	"github.com/testbed-dev/testbed/internal/topology"
)

func TestReadBuildStreamReportsErrorInsideStream(t *testing.T) {
	t.Parallel()
	stream := `{"stream":"Step 1/2 : FROM scratch\n"}
{"stream":"Step 2/2 : COPY missing /x\n"}
{"errorDetail":{"message":"COPY failed: file not found in build context"},"error":"COPY failed: file not found in build context"}
`
	var out bytes.Buffer
	err := readBuildStream(strings.NewReader(stream), &out)
	if err == nil || !strings.Contains(err.Error(), "COPY failed") || !strings.Contains(err.Error(), "Step 2/2 : COPY missing /x") {
		t.Fatalf("error %v: want the stream's error and the last lines", err)
	}
	if !strings.Contains(out.String(), "Step 1/2") {
		t.Errorf("the build output was not copied: %q", out.String())
	}
}

func TestInputsHashCoversNamesAndContent(t *testing.T) {
	t.Parallel()
	a := inputsHash(map[string][]byte{"Dockerfile": []byte("FROM scratch"), "bin": []byte("x")})
	if a != inputsHash(map[string][]byte{"bin": []byte("x"), "Dockerfile": []byte("FROM scratch")}) {
		t.Error("hash depends on map order")
	}
	for _, other := range []map[string][]byte{
		{"Dockerfile": []byte("FROM scratch"), "bin": []byte("y")},
		{"Dockerfile": []byte("FROM scratch"), "bin2": []byte("x")},
		{"Dockerfile": []byte("FROM scratch\n"), "bin": []byte("x")},
	} {
		if inputsHash(other) == a {
			t.Errorf("%v hashes like the original", other)
		}
	}
}

// dockerfile writes a Dockerfile unique to this test run, so the first
// build is a cache miss whatever ran before.
func dockerfile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "Dockerfile")
	body := fmt.Sprintf("# run %d\nFROM scratch\nCOPY hello /hello\nENTRYPOINT [\"/hello\"]\n", time.Now().UnixNano())
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildMissThenCached(t *testing.T) {
	t.Parallel()
	docker := testenv.RequireDocker(t)
	ctx := context.Background()
	b := &Builder{Docker: docker, Root: ".", Timeout: 5 * time.Minute}
	img := &topology.Image{Dockerfile: dockerfile(t), Binaries: []topology.Binary{{Name: "hello", Package: "./testdata/hello"}}}

	var out bytes.Buffer
	first, err := b.Build(ctx, "hello", img, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Cleanup(func() { docker.ImageRemove(context.Background(), first.Ref, image.RemoveOptions{Force: true}) })
	if first.Cached {
		t.Fatal("first build of new inputs was reported cached")
	}
	got, err := docker.ImageInspect(ctx, first.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.Config.Labels[InputsLabel] == "" || !strings.HasPrefix(got.Config.Labels[InputsLabel], strings.Split(first.Ref, ":")[1]) {
		t.Errorf("label %q does not match the tag of %s", got.Config.Labels[InputsLabel], first.Ref)
	}

	out.Reset()
	second, err := b.Build(ctx, "hello", img, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cached || second.ID != first.ID || second.Ref != first.Ref {
		t.Errorf("second build: %+v, want cached %+v", second, first)
	}
	if !strings.Contains(out.String(), "cached:") {
		t.Errorf("status does not say cached: %q", out.String())
	}

	b.Rebuild = true
	third, err := b.Build(ctx, "hello", img, &out)
	if err != nil {
		t.Fatal(err)
	}
	if third.Cached {
		t.Error("E2E_REBUILD did not force a build")
	}
}

func TestCompileErrorSurfaces(t *testing.T) {
	t.Parallel()
	docker := testenv.RequireDocker(t)
	b := &Builder{Docker: docker, Root: ".", Timeout: 5 * time.Minute}
	img := &topology.Image{Dockerfile: dockerfile(t), Binaries: []topology.Binary{{Name: "hello", Package: "./testdata/broken"}}}
	_, err := b.Build(context.Background(), "broken", img, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "undefined: undefinedFunction") || !strings.Contains(err.Error(), "image broken") {
		t.Fatalf("error %v: want the image and the compiler's message", err)
	}
}
