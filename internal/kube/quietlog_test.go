package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"k8s.io/klog/v2"
)

// TestUntilCancelQuietDropsOnlyTheWaitsEnd logs through the logger a wait
// gives its informer, as client-go's reflector does when its list is cut
// short, and as it does on a real failure.
func TestUntilCancelQuietDropsOnlyTheWaitsEnd(t *testing.T) {
	var lines []string
	base := funcr.New(func(prefix, args string) { lines = append(lines, prefix+" "+args) }, funcr.Options{})
	ctx := untilCancelQuiet(klog.NewContext(context.Background(), base))
	logger := klog.LoggerWithName(klog.FromContext(ctx).WithCallDepth(3), "UnhandledError")
	logger.Error(fmt.Errorf("failed to list *v1.Pod: %w", context.Canceled), "Failed to watch")
	logger.Error(fmt.Errorf("failed to list *v1.Pod: %w", context.DeadlineExceeded), "Failed to watch")
	if len(lines) != 0 {
		t.Errorf("the end of a wait was logged: %q", lines)
	}
	logger.Error(errors.New(`pods is forbidden: User "x" cannot list resource "pods"`), "Failed to watch")
	logger.Info("an informer's note")
	if len(lines) != 2 || !strings.Contains(lines[0], "forbidden") || !strings.Contains(lines[0], "UnhandledError") || !strings.Contains(lines[1], "an informer's note") {
		t.Errorf("logged %q; want the refusal (named UnhandledError) and the note", lines)
	}
}
