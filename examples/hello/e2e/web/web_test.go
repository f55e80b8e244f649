// Package web is web's E2E suite: plain Go tests. testbed runs it with
// E2E_WEB_URL pointing at web's NodePort on 127.0.0.1; suiteenv names
// the variables, so the suite and testbed cannot disagree on them.
package web

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/testbed-dev/testbed/suiteenv"
)

func TestHelloCountsVisitors(t *testing.T) {
	if !suiteenv.InEnvironment() {
		t.Skipf("%s is not set: run it with `go run magefile.go e2e:web`", suiteenv.KubeconfigVar)
	}
	url, err := suiteenv.URL("web")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) string {
		t.Helper()
		resp, err := client.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
		}
		return strings.TrimSpace(string(b))
	}
	// Two replicas of web share one count in store.
	for i, want := range []string{"hello ada, visitor 1", "hello bob, visitor 2", "hello eve, visitor 3"} {
		name := strings.Fields(want)[1]
		name = strings.TrimSuffix(name, ",")
		if got := get("/hello/" + name); got != want {
			t.Errorf("request %d: %q, want %q", i+1, got, want)
		}
	}
}
