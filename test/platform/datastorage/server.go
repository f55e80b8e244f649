// Package datastorage is the reference platform's audit store: an HTTP API
// that records audit events in PostgreSQL, with idempotency keys in Redis.
package datastorage

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/testbed-dev/testbed/test/platform/startup"
)

// Event is one audit record.
type Event struct {
	ID            int64           `json:"id"`
	CorrelationID string          `json:"correlation_id"`
	EventType     string          `json:"event_type"`
	Service       string          `json:"service"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	// Duplicate is set when an Idempotency-Key was seen before and the
	// event it first recorded is returned instead of a new one.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Server serves the audit API.
type Server struct {
	DB    *pgxpool.Pool
	Redis *redis.Client
	Log   *slog.Logger
}

// Handler routes the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", startup.Readyz(s.Log, s.Check))
	mux.HandleFunc("POST /api/v1/audit/events", s.record)
	mux.HandleFunc("GET /api/v1/audit/events", s.query)
	return mux
}

// Check returns why the store cannot serve: PostgreSQL or Redis unreachable,
// or the schema not at the version this build expects.
func (s *Server) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, err := CurrentVersion(ctx, s.DB)
	if err != nil {
		return fmt.Errorf("postgresql: %w", err)
	}
	if want := SchemaVersion(); v != want {
		return fmt.Errorf("schema at version %d, this build needs %d: run the migrations", v, want)
	}
	if err := s.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

func (s *Server) record(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var e Event
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		http.Error(w, "bad event: "+err.Error(), http.StatusBadRequest)
		return
	}
	if e.CorrelationID == "" || e.EventType == "" || e.Service == "" {
		http.Error(w, "correlation_id, event_type and service are required", http.StatusBadRequest)
		return
	}
	if len(e.Payload) == 0 {
		e.Payload = json.RawMessage(`{}`)
	}
	key := r.Header.Get("Idempotency-Key")
	if key != "" {
		rkey := "idempotency:" + key
		won, err := s.Redis.SetNX(ctx, rkey, "pending", 24*time.Hour).Result()
		if err != nil {
			s.fail(w, "redis", err)
			return
		}
		if !won {
			s.replay(ctx, w, rkey)
			return
		}
		defer func() {
			if e.ID == 0 { // the insert failed: let a retry try again
				s.Redis.Del(context.WithoutCancel(ctx), rkey)
			}
		}()
		if err := s.insert(ctx, &e); err != nil {
			s.fail(w, "postgresql", err)
			return
		}
		if err := s.Redis.Set(ctx, rkey, e.ID, 24*time.Hour).Err(); err != nil {
			s.fail(w, "redis", err)
			return
		}
	} else if err := s.insert(ctx, &e); err != nil {
		s.fail(w, "postgresql", err)
		return
	}
	writeJSON(w, http.StatusCreated, e)
}

func (s *Server) insert(ctx context.Context, e *Event) error {
	return s.DB.QueryRow(ctx,
		`INSERT INTO audit_events (correlation_id, event_type, service, payload) VALUES ($1, $2, $3, $4) RETURNING id, created_at`,
		e.CorrelationID, e.EventType, e.Service, e.Payload).Scan(&e.ID, &e.CreatedAt)
}

// replay answers a repeated Idempotency-Key with the event first recorded.
func (s *Server) replay(ctx context.Context, w http.ResponseWriter, rkey string) {
	v, err := s.Redis.Get(ctx, rkey).Result()
	if err != nil {
		s.fail(w, "redis", err)
		return
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		http.Error(w, "an event with this Idempotency-Key is being recorded; retry", http.StatusConflict)
		return
	}
	var e Event
	err = s.DB.QueryRow(ctx, `SELECT id, correlation_id, event_type, service, payload, created_at FROM audit_events WHERE id = $1`, id).
		Scan(&e.ID, &e.CorrelationID, &e.EventType, &e.Service, &e.Payload, &e.CreatedAt)
	if err != nil {
		s.fail(w, "postgresql", err)
		return
	}
	e.Duplicate = true
	writeJSON(w, http.StatusOK, e)
}

func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	cid := r.URL.Query().Get("correlation_id")
	if cid == "" {
		http.Error(w, "correlation_id is required", http.StatusBadRequest)
		return
	}
	rows, err := s.DB.Query(ctx, `SELECT id, correlation_id, event_type, service, payload, created_at FROM audit_events WHERE correlation_id = $1 ORDER BY id`, cid)
	if err != nil {
		s.fail(w, "postgresql", err)
		return
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Event, error) {
		var e Event
		err := row.Scan(&e.ID, &e.CorrelationID, &e.EventType, &e.Service, &e.Payload, &e.CreatedAt)
		return e, err
	})
	if err != nil {
		s.fail(w, "postgresql", err)
		return
	}
	if events == nil {
		events = []Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events})
}

func (s *Server) fail(w http.ResponseWriter, what string, err error) {
	startup.Fail(w, s.Log, "request failed", "dependency", what, err)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
