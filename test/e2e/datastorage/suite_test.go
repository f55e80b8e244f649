// Package datastorage_test is datastorage's E2E suite. It runs against an
// environment `go run magefile.go e2e:datastorage` sets up, which passes
// E2E_DATASTORAGE_URL, E2E_KUBECONFIG and E2E_NAMESPACE.
package datastorage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
)

func TestDatastorage(t *testing.T) { e2eenv.Run(t, "datastorage") }

var (
	baseURL   string
	namespace string
	kube      kubernetes.Interface
	client    = &http.Client{Timeout: 10 * time.Second}
)

var _ = e2eenv.Setup("datastorage", []string{"datastorage"}, func(e *e2eenv.Env) {
	baseURL, namespace, kube = e.URL("datastorage"), e.Namespace, e.Kube
})

type event struct {
	ID            int64           `json:"id,omitempty"`
	CorrelationID string          `json:"correlation_id"`
	EventType     string          `json:"event_type"`
	Service       string          `json:"service"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	Duplicate     bool            `json:"duplicate,omitempty"`
}

// record posts an event and returns the status code and the decoded answer.
func record(ctx context.Context, e event, idempotencyKey string) (int, event) {
	body, err := json.Marshal(e)
	Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/api/v1/audit/events", bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var got event
	if resp.StatusCode < 300 {
		Expect(json.NewDecoder(resp.Body).Decode(&got)).To(Succeed())
	}
	return resp.StatusCode, got
}

// query lists the events of a correlation ID.
func query(ctx context.Context, correlationID string) ([]event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/v1/audit/events?correlation_id="+correlationID, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var out struct {
		Events []event `json:"events"`
	}
	return out.Events, json.NewDecoder(resp.Body).Decode(&out)
}

// uniqueID makes correlation IDs that do not collide across runs on a kept cluster.
func uniqueID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, GinkgoParallelProcess(), time.Now().UnixNano())
}
