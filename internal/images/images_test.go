package images

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/testbed-dev/testbed/internal/testenv"
	"github.com/testbed-dev/testbed/topology"
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

func TestInputsHashCoversNamesModesContentAndArgs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	df, x, y := write("Dockerfile", "FROM scratch"), write("x", "x"), write("y", "y")
	hash := func(args map[string]string, es ...entry) string {
		h, err := inputsHash(es, args, nil)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	base := []entry{{name: "Dockerfile", path: df, mode: 0o644}, {name: "bin", path: x, mode: 0o755}}
	a := hash(nil, base...)
	if a != hash(nil, base...) {
		t.Fatal("the hash is not stable")
	}
	for what, other := range map[string]string{
		"content":   hash(nil, base[0], entry{name: "bin", path: y, mode: 0o755}),
		"name":      hash(nil, base[0], entry{name: "bin2", path: x, mode: 0o755}),
		"mode":      hash(nil, base[0], entry{name: "bin", path: x, mode: 0o644}),
		"build arg": hash(map[string]string{"VERSION": "1"}, base...),
	} {
		if other == a {
			t.Errorf("a change of %s leaves the hash as it was", what)
		}
	}
	if hash(map[string]string{"A": "1", "B": "2"}, base...) != hash(map[string]string{"B": "2", "A": "1"}, base...) {
		t.Error("the hash depends on the order of the build args")
	}
}

func TestContextFilesHonoursDockerignoreAndSkipsGit(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for name, body := range map[string]string{
		".dockerignore":        "# comment\n*.log\nbuild/\n!build/keep.txt\nsecrets\n",
		"app.txt":              "app",
		"debug.log":            "noise",
		"build/out.bin":        "artifact",
		"build/keep.txt":       "kept by an exception",
		"secrets/token":        "hunter2",
		".git/config":          "[core]",
		"sub/.git/HEAD":        "nested repo files are not special",
		"nested/deep/file.txt": "deep",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	es, err := contextFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.name)
	}
	want := []string{".dockerignore", "app.txt", "build/keep.txt", "nested/deep/file.txt", "sub/.git/HEAD"}
	if !slices.Equal(got, want) {
		t.Errorf("context files %q, want %q", got, want)
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
	missThenCached(t, testenv.RequireDocker(t))
}

// TestBuildThroughPodman runs the same builds against Podman's
// Docker-compatible API, served by `podman system service` for the test.
func TestBuildThroughPodman(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and podman is not installed: .ci/run installs it")
		}
		t.Skip("podman is not installed (apt-get install podman) to run this test")
	}
	sock := filepath.Join(t.TempDir(), "podman.sock")
	ctx, cancel := context.WithCancel(context.Background())
	svc := exec.CommandContext(ctx, "podman", "system", "service", "--time=0", "unix://"+sock)
	var log bytes.Buffer
	svc.Stdout, svc.Stderr = &log, &log
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); svc.Wait() })
	c, err := client.NewClientWithOpts(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.Ping(pctx)
		pcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("podman's API does not answer: %v\n%s", err, log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if v, err := c.ServerVersion(ctx); err != nil || !strings.Contains(fmt.Sprint(v.Components), "Podman") {
		t.Fatalf("the socket is not Podman's: %+v, %v", v.Components, err)
	}
	missThenCached(t, c)
}

func missThenCached(t *testing.T, docker *client.Client) {
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
	if strings.Contains(out.String(), "compiled") {
		t.Errorf("a cache hit compiled the binary: %q", out.String())
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

// TestBuildSendsTheContext builds an image whose Dockerfile copies from a
// context directory: the files .dockerignore excludes are not sent (the
// COPY of one fails), and a change to an excluded file leaves the image
// cached while a change to a sent file rebuilds it.
func TestBuildSendsTheContext(t *testing.T) {
	t.Parallel()
	docker := testenv.RequireDocker(t)
	ctx := context.Background()
	root := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".dockerignore", "**/*.log\n") // as in docker: "*.log" would match the top level only
	write("static/index.html", fmt.Sprintf("run %d", time.Now().UnixNano()))
	write("static/debug.log", "one")
	write(".git/HEAD", "ref: refs/heads/main")
	df := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM scratch\nARG GREETING\nLABEL greeting=$GREETING\nCOPY static /static\nCOPY hello /hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &Builder{Docker: docker, Root: ".", Timeout: 5 * time.Minute}
	img := &topology.Image{Dockerfile: df, Context: root, Args: map[string]string{"GREETING": "hi"},
		Binaries: []topology.Binary{{Name: "hello", Package: "./testdata/hello"}}}
	var out bytes.Buffer
	first, err := b.Build(ctx, "context", img, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Cleanup(func() { docker.ImageRemove(context.Background(), first.Ref, image.RemoveOptions{Force: true}) })
	got, err := docker.ImageInspect(ctx, first.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.Config.Labels["greeting"] != "hi" {
		t.Errorf("build arg not passed: labels %v", got.Config.Labels)
	}
	if !strings.Contains(out.String(), "context: 4 files") { // .dockerignore, index.html, Dockerfile, hello
		t.Errorf("want 4 files sent (no .git, no *.log):\n%s", out.String())
	}

	write("static/debug.log", "two")
	out.Reset()
	if second, err := b.Build(ctx, "context", img, &out); err != nil || !second.Cached {
		t.Errorf("a change to an ignored file rebuilt the image (cached=%v, err=%v)", second.Cached, err)
	}
	write("static/index.html", "changed")
	out.Reset()
	third, err := b.Build(ctx, "context", img, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker.ImageRemove(context.Background(), third.Ref, image.RemoveOptions{Force: true}) })
	if third.Cached || third.Ref == first.Ref {
		t.Errorf("a change to a sent file did not rebuild: %+v", third)
	}

	// An excluded file is absent from the context the engine sees.
	bad := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(bad, []byte(fmt.Sprintf("# %d\nFROM scratch\nCOPY static/debug.log /x\n", time.Now().UnixNano())), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = b.Build(ctx, "ignored", &topology.Image{Dockerfile: bad, Context: root}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "debug.log") {
		t.Errorf("COPY of an ignored file: error %v, want one naming debug.log", err)
	}
}

// TestGoInputsHash: the hash of a binary's Go inputs follows its sources,
// embedded files and flags, and nothing else.
func TestGoInputsHash(t *testing.T) {
	t.Parallel()
	mod := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(mod, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.24\n")
	write("main.go", "package main\n\nimport _ \"embed\"\n\n//go:embed greeting.txt\nvar greeting string\n\nfunc main() { println(greeting) }\n")
	write("greeting.txt", "hello")
	write("notes.md", "not an input")
	b := &Builder{Root: mod}
	hash := func() string {
		t.Helper()
		h, err := b.goInputsHash(context.Background(), ".")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	first := hash()
	if hash() != first {
		t.Fatal("the hash is not stable")
	}
	write("notes.md", "still not an input")
	if hash() != first {
		t.Error("a file the package does not use changed the hash")
	}
	write("greeting.txt", "hi")
	afterEmbed := hash()
	if afterEmbed == first {
		t.Error("a change to an embedded file left the hash as it was")
	}
	write("main.go", "package main\n\nimport _ \"embed\"\n\n//go:embed greeting.txt\nvar greeting string\n\nfunc main() { println(greeting + \"!\") }\n")
	afterSource := hash()
	if afterSource == afterEmbed {
		t.Error("a change to a Go file left the hash as it was")
	}
	b.Cover = true
	afterCover := hash()
	if afterCover == afterSource {
		t.Error("-cover left the hash as it was")
	}
	b.NoInline = true
	if hash() == afterCover {
		t.Error("the inner loop's -l left the hash as it was: its image would pass for CI's")
	}
	write("main.go", "package main\n\nfunc main() { undefinedFunction() }\n")
	if _, err := (&Builder{Root: mod}).goInputsHash(context.Background(), "./nosuch"); err == nil {
		t.Error("a package that does not exist hashed without error")
	}
}

// TestNoInlineCompiles: the inner loop's flags are ones go build takes
// (the package pattern is relative to Root), and the line says so.
func TestNoInlineCompiles(t *testing.T) {
	t.Parallel()
	b := &Builder{Root: ".", NoInline: true}
	var out bytes.Buffer
	if err := b.compile(context.Background(), topology.Binary{Name: "hello", Package: "./testdata/hello"}, filepath.Join(t.TempDir(), "hello"), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "inlining off") {
		t.Errorf("the compile line does not say inlining is off: %q", out.String())
	}
}
