// Command gateway serves the alert ingestion API.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/testbed-dev/testbed/test/platform/gateway"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := serve(ctx, log); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func serve(ctx context.Context, log *slog.Logger) error {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return err
	}
	cfg.Timeout = 10 * time.Second
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: env("REDIS_ADDR", "redis:6379"), DialTimeout: 3 * time.Second})
	defer rdb.Close()
	s := &gateway.Server{
		Redis:          rdb,
		Requests:       dyn.Resource(gateway.RemediationRequests).Namespace(env("POD_NAMESPACE", "default")),
		DatastorageURL: env("DATASTORAGE_URL", "http://datastorage:8080"),
		HTTP:           &http.Client{Timeout: 5 * time.Second},
		Log:            log,
		DedupWindow:    5 * time.Minute,
	}
	// Started before its dependencies are ready, the gateway exits.
	deadline := time.Now().Add(2 * time.Second)
	for err = s.Check(ctx); err != nil && time.Now().Before(deadline); err = s.Check(ctx) {
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return errors.New("dependencies not ready at start: " + err.Error())
	}
	srv := &http.Server{Addr: env("LISTEN_ADDR", ":8080"), Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("serving", "addr", srv.Addr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
