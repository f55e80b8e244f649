package cluster

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
)

// inspectOnly is an engine that holds the images named in ids (ref → ID)
// and can do nothing else: FindBakedNodeImage must only look.
type inspectOnly map[string]string

func (e inspectOnly) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	if id, ok := e[ref]; ok {
		return image.InspectResponse{ID: id}, nil
	}
	return image.InspectResponse{}, errdefs.NotFound(io.EOF)
}

func (inspectOnly) ImageBuild(context.Context, io.Reader, build.ImageBuildOptions) (build.ImageBuildResponse, error) {
	panic("FindBakedNodeImage built an image")
}

func (inspectOnly) ImageSave(context.Context, []string, ...client.ImageSaveOption) (io.ReadCloser, error) {
	panic("FindBakedNodeImage saved an image")
}

func (inspectOnly) ImageLoad(context.Context, io.Reader, ...client.ImageLoadOption) (image.LoadResponse, error) {
	panic("FindBakedNodeImage loaded an image")
}

// TestFindBakedNodeImageNeverBakes: with no bake of these inputs on the
// engine, Find returns the base and says the bake is missing (a run then
// loads the images and bakes after its suite); with the bake there, it
// returns it as BakeNodeImage would.
func TestFindBakedNodeImageNeverBakes(t *testing.T) {
	t.Setenv("KIND_EXPERIMENTAL_PROVIDER", "")
	engine := inspectOnly{"kindest/node:x": "sha256:base", "redis:7": "sha256:redis"}
	var out strings.Builder
	got, err := testScope.FindBakedNodeImage(context.Background(), engine, "kindest/node:x", []string{"redis:7"}, &out)
	if err != nil || !got.Missing || got.Cached || got.Ref != "kindest/node:x" || len(got.Images) != 1 {
		t.Fatalf("no bake on the engine: %+v, %v; want the base, Missing", got, err)
	}
	if !strings.Contains(out.String(), "not baked yet") {
		t.Errorf("output %q does not say the bake is missing", out.String())
	}
	// The tag a bake of these inputs gets, as BakeNodeImage names it.
	tag := bakedTag(testScope, "sha256:base", map[string]string{"redis:7": "sha256:redis"})
	engine[tag] = "sha256:baked"
	got, err = testScope.FindBakedNodeImage(context.Background(), engine, "kindest/node:x", []string{"redis:7"}, io.Discard)
	if err != nil || got.Missing || !got.Cached || got.Ref != tag {
		t.Fatalf("bake on the engine: %+v, %v; want %s, cached", got, err, tag)
	}
}
