package startup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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

// Serve ends when its context does, after the request in flight got its
// answer, and reports a port in use at once.
func TestServeShutsDownWhenItsContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	inUse := &http.Server{Addr: addr, ReadHeaderTimeout: time.Second}
	if err := Serve(context.Background(), inUse, time.Second); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("a port in use: %v", err)
	}
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		cancel() // SIGTERM while a request is in flight
		time.Sleep(200 * time.Millisecond)
		fmt.Fprintln(w, "answered")
	})}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, srv, 5*time.Second) }()
	var resp *http.Response
	for range 50 {
		if resp, err = http.Get("http://" + addr + "/"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	<-started
	if string(body) != "answered\n" {
		t.Errorf("the request in flight got %q", body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after its context ended: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}
