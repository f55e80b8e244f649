package testenv

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
)

// recorder stands in for a test: it records whether RequireKind skipped or
// failed it, and stops the call there as the real ones do.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Cleanup(func())            {}
func (r *recorder) Skip(a ...any)             { r.skipped = fmt.Sprint(a...); runtime.Goexit() }
func (r *recorder) Skipf(f string, a ...any)  { r.skipped = fmt.Sprintf(f, a...); runtime.Goexit() }
func (r *recorder) Fatal(a ...any)            { r.failed = fmt.Sprint(a...); runtime.Goexit() }
func (r *recorder) Fatalf(f string, a ...any) { r.failed = fmt.Sprintf(f, a...); runtime.Goexit() }

func requireKind(t *testing.T) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		RequireKind(r)
	}()
	<-done
	return r
}

// TestNoSkipUnderCI: with CI=true, -short and no Docker, a kind test fails
// instead of skipping; without CI=true it skips.
func TestNoSkipUnderCI(t *testing.T) {
	short := flag.Lookup("test.short")
	old := short.Value.String()
	if err := short.Value.Set("true"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = short.Value.Set(old) })
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")

	t.Setenv("CI", "true")
	if r := requireKind(t); r.skipped != "" || r.failed == "" {
		t.Errorf("CI=true, -short, no Docker: skipped %q, failed %q; want a failure", r.skipped, r.failed)
	}
	t.Setenv("CI", "")
	if r := requireKind(t); r.skipped == "" || r.failed != "" {
		t.Errorf("no CI, -short: skipped %q, failed %q; want a skip", r.skipped, r.failed)
	}
}
