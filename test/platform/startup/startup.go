// Package startup holds what every platform binary does as it starts:
// read its settings and check its dependencies once, briefly.
package startup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Window covers the moment a Service's endpoints take to reach kube-proxy
// after its pod is Ready, not a dependency that is still starting: like the
// services they stand for, the platform's binaries started before what they
// need is ready exit, and the kubelet backs off.
const Window = 2 * time.Second

// Main runs a platform binary's body: JSON logs on stdout (with attrs on
// every line), a context that ends at SIGTERM (the kubelet's stop) or
// Ctrl-C, and exit status 1 with the error logged when run fails.
func Main(run func(ctx context.Context, log *slog.Logger) error, attrs ...any) {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With(attrs...)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, log)
	stop()
	if err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}

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

// Readyz serves a readiness endpoint: 200 when check passes, 503 with its
// error when not. A failed check is logged, and a passing one slow enough
// that a probe's default 1 s timeout would have failed it: the pod's log
// then says why it left its Services.
func Readyz(log *slog.Logger, check func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		err := check(r.Context())
		took := time.Since(start).Round(time.Millisecond)
		switch {
		case err != nil:
			log.Warn("not ready", "err", err, "took", took.String())
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		case took > 500*time.Millisecond:
			log.Warn("ready, slowly", "took", took.String())
		}
		fmt.Fprintln(w, "ready")
	}
}

// Fail answers a request that failed on a dependency (what): 503 when the
// dependency ran out of time, 500 otherwise, the error in the body and in
// the log (msg, with what under key).
func Fail(w http.ResponseWriter, log *slog.Logger, msg, key, what string, err error) {
	log.Error(msg, key, what, "err", err)
	code := http.StatusInternalServerError
	if errors.Is(err, context.DeadlineExceeded) {
		code = http.StatusServiceUnavailable
	}
	http.Error(w, what+": "+err.Error(), code)
}

// HTTPReady asks another service's /readyz once: nil when it answers 200.
func HTTPReady(ctx context.Context, c *http.Client, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready (%d)", resp.StatusCode)
	}
	return nil
}

// Serve serves srv until ctx ends, then shuts it down, giving the
// requests in flight up to grace to finish (the kubelet's SIGTERM, then
// its grace period). It returns the server's error (a port in use), the
// shutdown's when grace ran out, or nil.
func Serve(ctx context.Context, srv *http.Server, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // http.ErrServerClosed, at once
	return err
}
