package cluster

import (
	"os"
	"strings"
	"testing"
)

// The check counts this process's own inotify instance, and with a
// demand no host can meet it names the limit and the remedy.
func TestInotifyShortNamesTheLimitAndTheRemedy(t *testing.T) {
	if os.Geteuid() != 0 {
		if got := InotifyShort(1 << 20); got != "" {
			t.Errorf("not root, it cannot count, yet it says %q", got)
		}
		return
	}
	if got := InotifyShort(0); got != "" && !strings.Contains(got, "inotify") {
		t.Errorf("with no node asked: %q", got)
	}
	got := InotifyShort(1 << 20) // more nodes than any limit allows
	for _, want := range []string{"fs.inotify.max_user_instances", "sysctl -w", "cluster:prune"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q does not say %q", got, want)
		}
	}
}
