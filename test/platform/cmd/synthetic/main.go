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
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/testbed-dev/testbed/test/platform/startup"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	readyAfter, err := time.ParseDuration(os.Getenv("READY_AFTER"))
	if err != nil {
		readyAfter = 0
	}
	client := &http.Client{Timeout: time.Second}
	for _, u := range strings.Split(os.Getenv("NEEDS"), ",") {
		if u == "" {
			continue
		}
		if err := readyWithin(ctx, client, u, time.Second); err != nil {
			log.Error("exiting: a dependency is not ready", "needs", u, "err", err)
			os.Exit(1)
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
	if err := startup.Serve(ctx, srv, 5*time.Second); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}

func readyWithin(ctx context.Context, c *http.Client, base string, window time.Duration) error {
	deadline := time.Now().Add(window)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
