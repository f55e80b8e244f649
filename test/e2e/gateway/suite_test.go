// Package gateway_test is gateway's E2E suite. It runs against an
// environment `go run magefile.go e2e:gateway` sets up, which passes
// E2E_GATEWAY_URL, E2E_DATASTORAGE_URL, E2E_KUBECONFIG and E2E_NAMESPACE.
package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
)

func TestGateway(t *testing.T) { e2eenv.Run(t, "gateway") }

var (
	gatewayURL, datastorageURL, namespace string
	requests                              dynamic.NamespaceableResourceInterface
	client                                = &http.Client{Timeout: 10 * time.Second}
	rrResource                            = schema.GroupVersionResource{Group: "platform.testbed.dev", Version: "v1alpha1", Resource: "remediationrequests"}
)

var _ = e2eenv.Setup("gateway", []string{"gateway", "datastorage"}, func(e *e2eenv.Env) {
	gatewayURL, datastorageURL, namespace = e.URL("gateway"), e.URL("datastorage"), e.Namespace
	requests = e.Dyn.Resource(rrResource)
})

type alert struct {
	Status   string            `json:"status"`
	Labels   map[string]string `json:"labels"`
	StartsAt time.Time         `json:"startsAt"`
}

type result struct {
	Created    []string `json:"created"`
	Duplicates []string `json:"duplicates"`
}

// send posts an Alertmanager webhook with the alerts.
func send(ctx context.Context, alerts ...alert) (int, result) {
	body, err := json.Marshal(map[string]any{"receiver": "testbed", "status": "firing", "alerts": alerts})
	Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, gatewayURL+"/api/v1/signals/prometheus", bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var r result
	if resp.StatusCode < 300 {
		Expect(json.NewDecoder(resp.Body).Decode(&r)).To(Succeed())
	}
	return resp.StatusCode, r
}

// firing makes an alert unique to this run, so a kept cluster's earlier
// runs do not de-duplicate it.
func firing(name string) alert {
	return alert{Status: "firing", StartsAt: time.Now().UTC(), Labels: map[string]string{
		"alertname": name, "severity": "critical", "namespace": "prod", "pod": fmt.Sprintf("api-%d", time.Now().UnixNano()),
	}}
}

// requestsFor lists the RemediationRequests of a fingerprint.
func requestsFor(ctx context.Context, fp string) ([]unstructured.Unstructured, error) {
	l, err := requests.Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: "platform.testbed.dev/fingerprint=" + fp})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// auditEvents counts datastorage's events of a correlation ID.
func auditEvents(ctx context.Context, correlationID string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, datastorageURL+"/api/v1/audit/events?correlation_id="+correlationID, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	return len(out.Events), nil
}
