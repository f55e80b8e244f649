// Package startup holds what every platform binary does as it starts:
// read its settings and check its dependencies once, briefly.
package startup

import (
	"context"
	"os"
	"time"
)

// Window covers the moment a Service's endpoints take to reach kube-proxy
// after its pod is Ready, not a dependency that is still starting: like the
// services they stand for, the platform's binaries started before what they
// need is ready exit, and the kubelet backs off.
const Window = 2 * time.Second

// Env reads a variable with a default.
func Env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Retry calls f until it succeeds or the window closes, and returns f's
// last error.
func Retry(ctx context.Context, window time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}
