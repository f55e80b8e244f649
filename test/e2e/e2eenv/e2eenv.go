// Package e2eenv is what the platform's suites share: the environment the
// targets pass (E2E_KUBECONFIG, E2E_NAMESPACE, E2E_<PORT>_URL) and small
// helpers over the platform's kinds, datastorage and the notification sink.
package e2eenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/testbed-dev/testbed/test/platform/controller"
	"github.com/testbed-dev/testbed/test/platform/pipeline"
)

// Env is a suite's environment.
type Env struct {
	Namespace string
	Dyn       dynamic.Interface
	HTTP      *http.Client
}

// Load reads the environment; skip is non-empty when the suite runs outside
// one (a plain `go test ./...`).
func Load(service string) (env *Env, skip string, err error) {
	kc := os.Getenv("E2E_KUBECONFIG")
	if kc == "" {
		return nil, fmt.Sprintf("E2E_KUBECONFIG is not set: this suite runs inside an environment; use `go run magefile.go e2e:%s`", service), nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		return nil, "", err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	return &Env{Namespace: os.Getenv("E2E_NAMESPACE"), Dyn: dyn, HTTP: &http.Client{Timeout: 10 * time.Second}}, "", nil
}

// URL is the host address of a mapped port, by its topology name.
func URL(port string) string {
	return os.Getenv("E2E_" + strings.ToUpper(strings.ReplaceAll(port, "-", "_")) + "_URL")
}

// Unique makes names that do not collide across runs on a kept cluster.
func Unique(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1_000_000_000)
}

// Create creates one of the platform's objects.
func (e *Env) Create(ctx context.Context, gvr schema.GroupVersionResource, kind, name string, spec map[string]any) error {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": controller.Group + "/v1alpha1", "kind": kind,
		"metadata": map[string]any{"name": name}, "spec": spec,
	}}
	_, err := e.Dyn.Resource(gvr).Namespace(e.Namespace).Create(ctx, u, metav1.CreateOptions{})
	return err
}

// Get reads one.
func (e *Env) Get(ctx context.Context, gvr schema.GroupVersionResource, name string) (*unstructured.Unstructured, error) {
	return e.Dyn.Resource(gvr).Namespace(e.Namespace).Get(ctx, name, metav1.GetOptions{})
}

// Status reads status.<field> of one ("" when absent).
func (e *Env) Status(ctx context.Context, gvr schema.GroupVersionResource, name, field string) (string, error) {
	u, err := e.Get(ctx, gvr, name)
	if err != nil {
		return "", err
	}
	s, _, _ := unstructured.NestedString(u.Object, "status", field)
	return s, nil
}

// getJSON decodes a GET.
func (e *Env) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// AuditTypes lists the event types datastorage holds for a correlation ID.
func (e *Env) AuditTypes(ctx context.Context, correlationID string) ([]string, error) {
	var out struct {
		Events []struct {
			EventType string `json:"event_type"`
		} `json:"events"`
	}
	if err := e.getJSON(ctx, URL("datastorage")+"/api/v1/audit/events?correlation_id="+correlationID, &out); err != nil {
		return nil, err
	}
	var types []string
	for _, ev := range out.Events {
		types = append(types, ev.EventType)
	}
	return types, nil
}

// Deliveries lists what notification delivered to its sink.
func (e *Env) Deliveries(ctx context.Context) ([]pipeline.Delivery, error) {
	var out struct {
		Deliveries []pipeline.Delivery `json:"deliveries"`
	}
	return out.Deliveries, e.getJSON(ctx, URL("notification")+"/api/v1/deliveries", &out)
}
