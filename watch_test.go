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
