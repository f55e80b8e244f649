// Command store is a small in-memory key-value HTTP service: PUT and GET
// /kv/<key>, with a bearer token from the environment (the topology's
// generated Secret).
package main

import (
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
)

func main() {
	token := os.Getenv("STORE_TOKEN")
	if token == "" {
		log.Fatal("STORE_TOKEN is not set")
	}
	var mu sync.Mutex
	kv := map[string]string{}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	http.HandleFunc("/kv/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		key := strings.TrimPrefix(r.URL.Path, "/kv/")
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
			kv[key] = string(b)
		case http.MethodGet:
			v, ok := kv[key]
			if !ok {
				http.NotFound(w, r)
				return
			}
			io.WriteString(w, v)
		default:
			http.Error(w, "PUT or GET", http.StatusMethodNotAllowed)
		}
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
