// Command holmesgpt-api serves the deterministic analysis API.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/testbed-dev/testbed/test/platform/holmesgptapi"
	"github.com/testbed-dev/testbed/test/platform/startup"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv := &http.Server{Addr: ":8080", Handler: holmesgptapi.Handler(), ReadHeaderTimeout: 5 * time.Second}
	log.Info("serving", "addr", srv.Addr)
	if err := startup.Serve(ctx, srv, 10*time.Second); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}
