package startup

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRetrySucceedsWithinTheWindow(t *testing.T) {
	n := 0
	err := Retry(context.Background(), time.Second, func(context.Context) error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("err %v after %d calls", err, n)
	}
}

func TestRetryReturnsTheLastErrorWhenTheWindowCloses(t *testing.T) {
	err := Retry(context.Background(), 300*time.Millisecond, func(context.Context) error { return errors.New("db down") })
	if err == nil || err.Error() != "db down" {
		t.Errorf("got %v", err)
	}
}

func TestReadyzSaysAndLogsWhyItIsNotReady(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	down := errors.New("datastorage: context deadline exceeded")
	var fail error
	h := Readyz(log, func(context.Context) error { return fail })

	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 || logged.Len() != 0 {
		t.Errorf("passing check: %d, logged %q", rec.Code, logged.String())
	}
	fail = down
	rec = httptest.NewRecorder()
	h(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), down.Error()) {
		t.Errorf("failing check: %d %q", rec.Code, rec.Body.String())
	}
	if !strings.Contains(logged.String(), "not ready") || !strings.Contains(logged.String(), down.Error()) {
		t.Errorf("the failure is not logged with its cause: %q", logged.String())
	}
}
