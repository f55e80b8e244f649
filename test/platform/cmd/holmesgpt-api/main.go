// Command holmesgpt-api serves the deterministic analysis API.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/testbed-dev/testbed/test/platform/holmesgptapi"
	"github.com/testbed-dev/testbed/test/platform/startup"
)

func main() {
	startup.Main(func(ctx context.Context, log *slog.Logger) error {
		srv := &http.Server{Addr: ":8080", Handler: holmesgptapi.Handler(), ReadHeaderTimeout: 5 * time.Second}
		log.Info("serving", "addr", srv.Addr)
		return startup.Serve(ctx, srv, 10*time.Second)
	})
}
