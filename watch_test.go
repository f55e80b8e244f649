package testbed

import (
	"context"
	"io"
	"testing"

	"github.com/testbed-dev/testbed/internal/affected"
	"github.com/testbed-dev/testbed/internal/images"
	"github.com/testbed-dev/testbed/internal/watch"
	"github.com/testbed-dev/testbed/topology"
)

// TestWatchRebuildsOnlyWhatASaveChanged: a save to one image's package
// makes the next run rebuild that image alone; a save to the suite
// recompiles the suite alone.
func TestWatchRebuildsOnlyWhatASaveChanged(t *testing.T) {
	ctx := context.Background()
	w := &watchLoop{out: io.Discard, suites: &suiteCache{}, service: "gateway",
		t: &Testbed{once: &processOnce{}, Topo: &topology.Topology{Services: map[string]*topology.Service{"gateway": {Suite: "./test/e2e/gateway"}}}},
		inputs: []affected.Input{
			{What: "image gateway", Image: "gateway", Paths: []affected.Path{affected.PackageDir("test/platform/gateway", false)}},
			{What: "image datastorage", Image: "datastorage", Paths: []affected.Path{affected.PackageDir("test/platform/datastorage", false)}},
			{What: "suite of gateway", Suite: true, Paths: []affected.Path{affected.PackageDir("test/e2e/gateway", true)}},
		}}
	built := func(name string) bool {
		_, reused, _ := w.t.once.images.do(ctx, name, func() (images.Built, error) { return images.Built{Name: name}, nil })
		return !reused
	}
	compiled := func() bool {
		_, reused, _ := w.suites.bins.do(ctx, "./test/e2e/gateway", func() (compiledSuite, error) { return compiledSuite{}, nil })
		return !reused
	}
	built("gateway")
	built("datastorage")
	compiled()

	w.changed(ctx, watch.Change{Files: []string{"test/platform/gateway/gateway.go"}})
	if !built("gateway") || built("datastorage") || compiled() {
		t.Error("after a save to gateway's package: want gateway rebuilt, datastorage and the suite as they were")
	}
	w.changed(ctx, watch.Change{Files: []string{"test/e2e/gateway/ingest_test.go"}})
	if built("gateway") || built("datastorage") || !compiled() {
		t.Error("after a save to the suite: want the suite recompiled, the images as they were")
	}
}

// TestWatchRunsAskTheNodesOnce: a run of the watch takes what the nodes
// hold from the watch's list (the cluster is nil here: asking it would
// panic), and a load is in the list the next run gets.
func TestWatchRunsAskTheNodesOnce(t *testing.T) {
	ctx := context.Background()
	kept := &nodeImages{}
	if _, ok := kept.list(); ok {
		t.Fatal("an empty list says it was listed: the first run would not ask the nodes")
	}
	kept.listed(map[string]string{"docker.io/testbed/gateway:a": "sha256:a"})
	first := &run{env: runEnv{nodeImages: kept}}
	got, err := first.heldImages(ctx, nil)
	if err != nil || got["docker.io/testbed/gateway:a"] != "sha256:a" {
		t.Fatalf("first run: %v, %v", got, err)
	}
	kept.loaded("testbed/gateway:b", "sha256:b")
	next := &run{env: runEnv{nodeImages: kept}}
	if got, _ := next.heldImages(ctx, nil); got["docker.io/testbed/gateway:b"] != "sha256:b" {
		t.Errorf("the next run does not see the load: %v", got)
	}
	if _, ok := got["docker.io/testbed/gateway:b"]; ok {
		t.Error("a load changed the list an earlier run holds (its copy is shared)")
	}
	var none *nodeImages // outside a watch: nothing kept, nothing recorded
	none.loaded("x", "y")
	if _, ok := none.list(); ok {
		t.Error("a nil list says it was listed")
	}
}
