package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/testbed-dev/testbed/internal/testenv"
	"github.com/testbed-dev/testbed/topology"
)

func TestParseRecipeReadsThePlainForms(t *testing.T) {
	r, err := parseRecipe([]byte(`# The binary is built on the host.
FROM scratch AS final
WORKDIR /app
COPY hello ./
COPY static /srv/static
COPY ["a.txt", "b.txt", "/data/"]
ENV MODE=test LEVEL=2
ENV OLD form value
LABEL team=platform
EXPOSE 5000 53/udp
USER 65532:65532
ENTRYPOINT ["/app/hello", \
  "--flag"]
CMD ["serve"]
`))
	if err != nil {
		t.Fatal(err)
	}
	wantCopies := []copyOp{{"hello", "/app/hello"}, {"static", "/srv/static"}, {"a.txt", "/data/a.txt"}, {"b.txt", "/data/b.txt"}}
	if !slices.Equal(r.copies, wantCopies) {
		t.Errorf("copies %v, want %v", r.copies, wantCopies)
	}
	if want := []string{defaultPath, "MODE=test", "LEVEL=2", "OLD=form value"}; !slices.Equal(r.env, want) {
		t.Errorf("env %q, want %q", r.env, want)
	}
	if r.workdir != "/app" || r.user != "65532:65532" || r.labels["team"] != "platform" {
		t.Errorf("workdir %q user %q labels %v", r.workdir, r.user, r.labels)
	}
	if !slices.Equal(r.entrypoint, []string{"/app/hello", "--flag"}) || !slices.Equal(r.cmd, []string{"serve"}) {
		t.Errorf("entrypoint %q cmd %q", r.entrypoint, r.cmd)
	}
	if !slices.Equal(r.exposed, []string{"5000/tcp", "53/udp"}) {
		t.Errorf("exposed %q", r.exposed)
	}
}

// TestParseRecipeLeavesTheRestToDockerBuild: each Dockerfile the assembly
// does not understand is refused with the reason, never half-read.
func TestParseRecipeLeavesTheRestToDockerBuild(t *testing.T) {
	for df, why := range map[string]string{
		"FROM alpine:3\nCOPY x /x\n":                       "FROM alpine:3",
		"FROM scratch AS a\nCOPY x /x\nFROM scratch\n":     "only one stage",
		"FROM scratch\nRUN [\"/x\"]\n":                     "RUN is docker build's",
		"FROM scratch\nARG V=1\n":                          "ARG is docker build's",
		"FROM scratch\nCOPY --chown=1:1 x /x\n":            "COPY's flags",
		"FROM scratch\nCOPY --from=build /x /x\n":          "COPY's flags",
		"FROM scratch\nCOPY *.txt /x/\n":                   "wildcards",
		"FROM scratch\nENV A=$HOME\n":                      "variables",
		"FROM scratch\nLABEL a=\"b c\"\n":                  "quotes",
		"FROM scratch\nENTRYPOINT /x --flag\n":             "only the JSON form",
		"# syntax=docker/dockerfile:1\nFROM scratch\n":     "parser directive",
		"# escape=`\nFROM scratch\n":                       "parser directive",
		"COPY x /x\n":                                      "no FROM",
		"FROM scratch\nHEALTHCHECK CMD [\"/x\", \"ok\"]\n": "HEALTHCHECK is docker build's",
	} {
		_, err := parseRecipe([]byte(df))
		var na *notAssembled
		if !errors.As(err, &na) || !strings.Contains(na.why, why) {
			t.Errorf("%q: error %v, want a fallback saying %q", df, err, why)
		}
	}
}

// TestAssembledImageIsDockerBuilds builds one Dockerfile both ways, the
// in-process assembly and docker build, on the real engine: the two
// images have the same config (user, environment, entrypoint, command,
// working directory, ports, labels) and the same files, with their
// modes and contents. The assembled one runs, has the same ID when
// assembled again, and is a cache hit for the next Build.
func TestAssembledImageIsDockerBuilds(t *testing.T) {
	t.Parallel()
	docker := testenv.RequireDocker(t)
	ctx := context.Background()
	root := t.TempDir()
	for name, body := range map[string]string{"static/index.html": fmt.Sprint(time.Now().UnixNano()), "static/css/site.css": "body{}", "notes.txt": "n"} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	df := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(df, []byte(`FROM scratch
WORKDIR /app
COPY hello ./
COPY static /srv/static
COPY notes.txt /doc/
ENV GREETING=hi
LABEL team=platform
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/app/hello"]
CMD ["--serve"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	img := &topology.Image{Dockerfile: df, Context: root, Binaries: []topology.Binary{{Name: "hello", Package: "./testdata/hello"}}}
	b := &Builder{Docker: docker, Root: ".", Timeout: 5 * time.Minute}
	var out bytes.Buffer
	built, err := b.Build(ctx, "assembled", img, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Cleanup(func() { docker.ImageRemove(context.Background(), built.Ref, image.RemoveOptions{Force: true}) })
	if !strings.Contains(out.String(), "assembled in-process") {
		t.Fatalf("the build did not assemble:\n%s", out.String())
	}

	// The same context through docker build, tagged apart.
	dir := t.TempDir()
	entries, hash, err := b.inputs(ctx, "assembled", img)
	if err != nil {
		t.Fatal(err)
	}
	if entries, err = b.compileAll(ctx, "assembled", img, dir, entries, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := writeTar(filepath.Join(dir, "context.tar"), entries); err != nil {
		t.Fatal(err)
	}
	dockerRef := "testbed/assembled-vs-docker:" + hash[:12]
	if _, err := b.dockerBuild(ctx, "assembled", img, filepath.Join(dir, "context.tar"), dockerRef, hash, io.Discard); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker.ImageRemove(context.Background(), dockerRef, image.RemoveOptions{Force: true}) })

	a, d := inspect(t, docker, built.Ref), inspect(t, docker, dockerRef)
	if !reflect.DeepEqual(a, d) {
		t.Errorf("configs differ:\nassembled %+v\ndocker    %+v", a, d)
	}
	af, df2 := imageFiles(t, docker, built.Ref), imageFiles(t, docker, dockerRef)
	if !reflect.DeepEqual(af, df2) {
		t.Errorf("files differ:\nassembled %v\ndocker    %v", af, df2)
	}
	if len(af) != 4 {
		t.Errorf("files %v: want hello, index.html, site.css, notes.txt", af)
	}

	// It runs: the entrypoint, the command and the user are the engine's.
	if got := runImage(t, docker, built.Ref); got != "hello\n" {
		t.Errorf("the assembled image printed %q, want hello", got)
	}

	// Assembled again (a rebuild), it is the same image; built once more,
	// a cache hit.
	b.Rebuild = true
	again, err := b.Build(ctx, "assembled", img, io.Discard)
	if err != nil || again.ID != built.ID {
		t.Errorf("reassembled: %+v, %v; want the ID %s", again, err, built.ID)
	}
	b.Rebuild = false
	if hit, err := b.Build(ctx, "assembled", img, io.Discard); err != nil || !hit.Cached {
		t.Errorf("the assembled image is no cache hit: %+v, %v", hit, err)
	}
}

type config struct {
	User, WorkingDir string
	Env, Entrypoint  []string
	Cmd              []string
	Ports            []string
	Labels           map[string]string
	Arch, OS         string
}

func inspect(t *testing.T, docker *client.Client, ref string) config {
	t.Helper()
	got, err := docker.ImageInspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	c := config{User: got.Config.User, WorkingDir: got.Config.WorkingDir, Env: got.Config.Env, Entrypoint: got.Config.Entrypoint,
		Cmd: got.Config.Cmd, Labels: got.Config.Labels, Arch: got.Architecture, OS: got.Os}
	for p := range got.Config.ExposedPorts {
		c.Ports = append(c.Ports, string(p))
	}
	return c
}

// imageFiles lists the regular files of an image's layers: path, mode
// and the digest of the content.
func imageFiles(t *testing.T, docker *client.Client, ref string) map[string]string {
	t.Helper()
	rc, err := docker.ImageSave(context.Background(), []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, ".tar") && !strings.HasPrefix(h.Name, "blobs/") {
			continue
		}
		layer := tar.NewReader(tr)
		for {
			lh, err := layer.Next()
			if err != nil {
				break // not a layer (a config blob), or its end
			}
			if lh.Typeflag != tar.TypeReg {
				continue
			}
			sum := sha256.New()
			io.Copy(sum, layer)
			files[lh.Name] = fmt.Sprintf("%v %s", lh.FileInfo().Mode(), hex.EncodeToString(sum.Sum(nil))[:12])
		}
	}
	return files
}

func runImage(t *testing.T, docker *client.Client, ref string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := docker.ContainerCreate(ctx, &container.Config{Image: ref}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer docker.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	if err := docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitC, errC := docker.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		t.Fatal(err)
	}
	logs, err := docker.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	var buf bytes.Buffer
	io.Copy(&buf, logs)
	// The log stream is multiplexed: an 8-byte header before each frame.
	raw := buf.Bytes()
	var text strings.Builder
	for len(raw) >= 8 {
		n := int(raw[4])<<24 | int(raw[5])<<16 | int(raw[6])<<8 | int(raw[7])
		if 8+n > len(raw) {
			break
		}
		text.Write(raw[8 : 8+n])
		raw = raw[8+n:]
	}
	return text.String()
}
