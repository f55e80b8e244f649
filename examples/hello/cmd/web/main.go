// Command web greets visitors and counts them in store: it needs store
// (and exits at start when store does not answer, as services do that are
// started before what they need).
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	storeURL = os.Getenv("STORE_URL")
	token    = os.Getenv("STORE_TOKEN")
	client   = &http.Client{Timeout: 5 * time.Second}
	mu       sync.Mutex
)

func store(method, key, body string) (string, int, error) {
	req, err := http.NewRequest(method, storeURL+"/kv/"+key, strings.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

func main() {
	if _, code, err := store(http.MethodGet, "visits", ""); err != nil || code == http.StatusUnauthorized {
		log.Fatalf("store at %s: %v (status %d)", storeURL, err, code)
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	http.HandleFunc("/hello/", func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/hello/")
		mu.Lock()
		defer mu.Unlock()
		v, code, err := store(http.MethodGet, "visits", "")
		if err != nil || (code != http.StatusOK && code != http.StatusNotFound) {
			http.Error(w, fmt.Sprintf("store: %v (status %d)", err, code), http.StatusBadGateway)
			return
		}
		n, _ := strconv.Atoi(v)
		n++
		if _, code, err := store(http.MethodPut, "visits", strconv.Itoa(n)); err != nil || code != http.StatusOK {
			http.Error(w, fmt.Sprintf("store: %v (status %d)", err, code), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "hello %s, visitor %d\n", name, n)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
