package startup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
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

// TestMainEndsItsContextAtSIGTERMAndExitsOneOnError runs Main in a child
// process (this test binary again): the kubelet's SIGTERM must end the
// context run is given, and run's error must become exit status 1 with the
// error and the attrs on a JSON log line.
func TestMainEndsItsContextAtSIGTERMAndExitsOneOnError(t *testing.T) {
	if os.Getenv("STARTUP_MAIN_CHILD") == "1" {
		Main(func(ctx context.Context, log *slog.Logger) error {
			log.Info("started")
			<-ctx.Done()
			return errors.New("stopped by " + context.Cause(ctx).Error())
		}, "controller", "probe")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainEndsItsContextAtSIGTERMAndExitsOneOnError$")
	cmd.Env = append(os.Environ(), "STARTUP_MAIN_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || !strings.Contains(lines.Text(), `"msg":"started"`) {
		cmd.Process.Kill()
		t.Fatalf("first line %q, want the started log", lines.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	for _, want := range []string{`"msg":"exiting"`, `"controller":"probe"`, `stopped by`} {
		if !strings.Contains(rest.String(), want) {
			t.Errorf("log after SIGTERM lacks %s:\n%s", want, rest.String())
		}
	}
}

func TestHTTPReadyIsNilOnlyFor200(t *testing.T) {
	code := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
	}))
	defer srv.Close()
	if err := HTTPReady(context.Background(), srv.Client(), srv.URL); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: got %v, want an error naming it", err)
	}
	code = http.StatusOK
	if err := HTTPReady(context.Background(), srv.Client(), srv.URL); err != nil {
		t.Errorf("200: got %v", err)
	}
}

func TestFailSays503OnlyForADeadline(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for _, c := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("query: %w", context.DeadlineExceeded), http.StatusServiceUnavailable},
		{errors.New("relation missing"), http.StatusInternalServerError},
	} {
		rec := httptest.NewRecorder()
		Fail(rec, log, "request failed", "dependency", "postgresql", c.err)
		if rec.Code != c.code || !strings.HasPrefix(rec.Body.String(), "postgresql: "+c.err.Error()) {
			t.Errorf("%v: got %d %q, want %d and the error", c.err, rec.Code, rec.Body.String(), c.code)
		}
	}
	if !strings.Contains(logs.String(), "dependency=postgresql") {
		t.Errorf("the log does not name the dependency: %s", logs.String())
	}
}
