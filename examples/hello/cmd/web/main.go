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
	// The store must answer before web serves. testbed applies web once
	// the store is Ready, but a Ready pod can take a moment more to be
	// reached through its Service (kube-proxy syncs at most once a second,
	// and a lost DNS packet costs the resolver's 5 s): a few tries, then
	// exit. A wrong token is not transient: exit at once.
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, code, err := store(http.MethodGet, "visits", "")
		if err == nil && code == http.StatusUnauthorized {
			log.Fatalf("store at %s: the token was refused (status %d)", storeURL, code)
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			log.Fatalf("store at %s: %v (status %d)", storeURL, err, code)
		}
		log.Printf("store at %s: %v; trying again", storeURL, err)
		time.Sleep(time.Second)
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
