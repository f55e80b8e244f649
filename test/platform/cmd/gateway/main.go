// Command gateway serves the alert ingestion API.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/testbed-dev/testbed/test/platform/gateway"
	"github.com/testbed-dev/testbed/test/platform/incluster"
	"github.com/testbed-dev/testbed/test/platform/startup"
)

func main() { startup.Main(serve) }

func serve(ctx context.Context, log *slog.Logger) error {
	dyn, err := incluster.Dynamic()
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: startup.Env("REDIS_ADDR", "redis:6379"), DialTimeout: 3 * time.Second})
	defer rdb.Close()
	s := &gateway.Server{
		Redis:          rdb,
		Requests:       dyn.Resource(gateway.RemediationRequests).Namespace(startup.Env("POD_NAMESPACE", "default")),
		DatastorageURL: startup.Env("DATASTORAGE_URL", "http://datastorage:8080"),
		HTTP:           &http.Client{Timeout: 5 * time.Second},
		Log:            log,
		DedupWindow:    5 * time.Minute,
	}
	// Started before its dependencies are ready, the gateway exits.
	if err := startup.Retry(ctx, startup.Window, s.Check); err != nil {
		return errors.New("dependencies not ready at start: " + err.Error())
	}
	srv := &http.Server{Addr: startup.Env("LISTEN_ADDR", ":8080"), Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	log.Info("serving", "addr", srv.Addr)
	return startup.Serve(ctx, srv, 10*time.Second)
}
