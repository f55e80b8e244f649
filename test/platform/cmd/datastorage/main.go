// Command datastorage serves the audit API (the default) or, as
// `datastorage migrate`, applies the database migrations and exits.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/testbed-dev/testbed/test/platform/datastorage"
	"github.com/testbed-dev/testbed/test/platform/startup"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		startup.Main(migrate)
	} else {
		startup.Main(serve)
	}
}

// databaseURL builds the connection string from the same variables the
// PostgreSQL image takes, the password coming from a Secret.
func databaseURL() string {
	u := url.URL{
		Scheme: "postgres",
		User:   url.UserPassword(startup.Env("POSTGRES_USER", "datastorage"), os.Getenv("POSTGRES_PASSWORD")),
		Host:   net.JoinHostPort(startup.Env("POSTGRES_HOST", "postgresql"), startup.Env("POSTGRES_PORT", "5432")),
		Path:   "/" + startup.Env("POSTGRES_DB", "audit"),
	}
	q := url.Values{"sslmode": {"disable"}, "connect_timeout": {"5"}}
	u.RawQuery = q.Encode()
	return u.String()
}

func migrate(ctx context.Context, log *slog.Logger) error {
	var conn *pgx.Conn
	err := startup.Retry(ctx, startup.Window, func(ctx context.Context) (err error) {
		conn, err = pgx.Connect(ctx, databaseURL())
		return err
	})
	if err != nil {
		return fmt.Errorf("cannot reach PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	mctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return datastorage.Migrate(mctx, conn, func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) })
}

func serve(ctx context.Context, log *slog.Logger) error {
	pool, err := pgxpool.New(ctx, databaseURL())
	if err != nil {
		return err
	}
	defer pool.Close()
	rdb := redis.NewClient(&redis.Options{Addr: startup.Env("REDIS_ADDR", "redis:6379"), DialTimeout: 3 * time.Second})
	defer rdb.Close()
	s := &datastorage.Server{DB: pool, Redis: rdb, Log: log}
	// Like the services it stands for, datastorage refuses to start without
	// its dependencies: started too early, it exits and the kubelet backs off.
	if err := startup.Retry(ctx, startup.Window, s.Check); err != nil {
		return fmt.Errorf("dependencies not ready at start: %w", err)
	}
	srv := &http.Server{Addr: startup.Env("LISTEN_ADDR", ":8080"), Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	log.Info("serving", "addr", srv.Addr, "schema", datastorage.SchemaVersion())
	return startup.Serve(ctx, srv, 10*time.Second)
}
