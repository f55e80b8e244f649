package cluster

import (
	"strings"
	"testing"
	"time"
)

// TestKindLoggerTimesEachPhase feeds the lines kind's status prints as it
// creates a cluster (its own newlines included) and checks that each
// phase's end carries the time since its start, one line per message.
func TestKindLoggerTimesEachPhase(t *testing.T) {
	var out strings.Builder
	clock := time.Unix(0, 0)
	l := newKindLogger(&out)
	l.now = func() time.Time { return clock }
	info := l.V(0)
	info.Infof("Creating cluster %q ...\n", "x")
	info.Infof(" • %s  ...\n", "Preparing nodes 📦")
	clock = clock.Add(3200 * time.Millisecond)
	info.Infof(" ✓ %s\n", "Preparing nodes 📦")
	info.Infof(" • %s  ...\n", "Starting control-plane 🕹️")
	clock = clock.Add(16 * time.Second)
	info.Infof(" ✗ %s\n", "Starting control-plane 🕹️")
	l.Warn("a warning")
	l.V(1).Info("debug, not shown")
	want := `Creating cluster "x" ...
 • Preparing nodes 📦  ...
 ✓ Preparing nodes 📦  3.2s
 • Starting control-plane 🕹️  ...
 ✗ Starting control-plane 🕹️  16.0s
a warning
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}
