// Command registry is an OCI distribution registry (go-containerregistry's
// pkg/registry, what `crane registry serve` runs): blobs on disk under
// --disk, manifests in memory. testbed runs it in a FROM scratch container
// beside its kind clusters (E2E_REGISTRY=local).
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("address", ":5000", "address to listen on")
	disk := flag.String("disk", "", "directory for the blobs (empty: in memory)")
	flag.Parse()
	var opts []registry.Option
	if *disk != "" {
		if err := os.MkdirAll(*disk, 0o755); err != nil {
			log.Fatal(err)
		}
		opts = append(opts, registry.WithBlobHandler(registry.NewDiskBlobHandler(*disk)))
	}
	srv := &http.Server{Addr: *addr, Handler: registry.New(opts...), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("registry on %s (blobs: %q)", *addr, *disk)
	log.Fatal(srv.ListenAndServe())
}
