// Command synthetic is a component with known behaviour for benchmarks: it
// becomes ready READY_AFTER its start, and like the platform's services it
// exits when what it needs (NEEDS: comma-separated base URLs whose /readyz
// must answer 200) is not ready when it starts.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/testbed-dev/testbed/test/platform/startup"
)

func main() { startup.Main(serve) }

func serve(ctx context.Context, log *slog.Logger) error {
	readyAfter, err := time.ParseDuration(os.Getenv("READY_AFTER"))
	if err != nil {
		readyAfter = 0
	}
	client := &http.Client{Timeout: time.Second}
	for _, u := range strings.Split(os.Getenv("NEEDS"), ",") {
		if u == "" {
			continue
		}
		if err := startup.Retry(ctx, time.Second, func(ctx context.Context) error { return startup.HTTPReady(ctx, client, u) }); err != nil {
			return fmt.Errorf("a dependency is not ready: %s: %w", u, err)
		}
	}
	start := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if time.Since(start) < readyAfter {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("serving", "ready_after", readyAfter.String())
	return startup.Serve(ctx, srv, 5*time.Second)
}
