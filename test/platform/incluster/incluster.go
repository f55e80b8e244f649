// Package incluster opens the Kubernetes API from inside a pod, for the
// platform binaries that read or write its objects (gateway, controllers).
// It is apart from startup so that the binaries that do not talk to the
// API do not link client-go.
package incluster

import (
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Timeout bounds every API call a platform binary makes.
const Timeout = 10 * time.Second

// Dynamic returns a dynamic client on the pod's service account.
func Dynamic() (*dynamic.DynamicClient, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = Timeout
	return dynamic.NewForConfig(cfg)
}
