// Package gateway is the reference platform's entry point: it ingests
// Prometheus Alertmanager webhooks, de-duplicates alerts through Redis,
// creates one RemediationRequest per new alert and records audit events
// through datastorage.
package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/testbed-dev/testbed/test/platform/startup"
)

// RemediationRequests is the resource the gateway creates.
var RemediationRequests = schema.GroupVersionResource{Group: "platform.testbed.dev", Version: "v1alpha1", Resource: "remediationrequests"}

// Alert is one alert of an Alertmanager webhook.
type Alert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    time.Time         `json:"startsAt"`
	Fingerprint string            `json:"fingerprint,omitempty"`
}

// Webhook is Alertmanager's webhook payload (the fields the gateway reads).
type Webhook struct {
	Receiver string  `json:"receiver"`
	Status   string  `json:"status"`
	Alerts   []Alert `json:"alerts"`
}

// Result tells the sender what became of each firing alert.
type Result struct {
	Created    []string `json:"created"`    // RemediationRequest names
	Duplicates []string `json:"duplicates"` // fingerprints seen within the window
}

// Server serves the ingestion API.
type Server struct {
	Redis          *redis.Client
	Requests       dynamic.ResourceInterface // RemediationRequests in the gateway's namespace
	DatastorageURL string
	HTTP           *http.Client
	Log            *slog.Logger
	// DedupWindow is how long an alert's fingerprint suppresses repeats.
	DedupWindow time.Duration
}

// Handler routes the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", startup.Readyz(s.Log, s.Check))
	mux.HandleFunc("POST /api/v1/signals/prometheus", s.ingest)
	return mux
}

// Check returns why the gateway cannot serve: Redis, datastorage or the
// RemediationRequest API unreachable.
func (s *Server) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.DatastorageURL+"/readyz", nil)
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("datastorage: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("datastorage: not ready (%d)", resp.StatusCode)
	}
	if _, err := s.Requests.List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return fmt.Errorf("remediationrequests: %w", err)
	}
	return nil
}

// Fingerprint identifies an alert: Alertmanager's own, else a hash of its
// sorted labels.
func Fingerprint(a Alert) string {
	if a.Fingerprint != "" {
		return strings.ToLower(a.Fingerprint)
	}
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\x00", k, a.Labels[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func (s *Server) ingest(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	var hook Webhook
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&hook); err != nil {
		http.Error(w, "bad webhook: "+err.Error(), http.StatusBadRequest)
		return
	}
	res := Result{Created: []string{}, Duplicates: []string{}}
	for _, a := range hook.Alerts {
		if a.Status != "firing" || a.Labels["alertname"] == "" {
			continue
		}
		fp := Fingerprint(a)
		key := "dedup:" + fp
		fresh, err := s.Redis.SetNX(ctx, key, time.Now().UTC().Format(time.RFC3339), s.DedupWindow).Result()
		if err != nil {
			s.fail(w, "redis", err)
			return
		}
		if !fresh {
			res.Duplicates = append(res.Duplicates, fp)
			continue
		}
		name, err := s.createRequest(ctx, fp, a)
		if err == nil {
			err = s.audit(ctx, fp, a)
		}
		if err != nil {
			// Let a retry of this webhook try again.
			s.Redis.Del(context.WithoutCancel(ctx), key)
			s.fail(w, "remediation", err)
			return
		}
		res.Created = append(res.Created, name)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(res)
}

// createRequest creates the alert's RemediationRequest; one that exists
// already (a retried webhook) counts as created.
func (s *Server) createRequest(ctx context.Context, fp string, a Alert) (string, error) {
	name := "rr-" + fp
	labels := map[string]any{}
	for k, v := range a.Labels {
		labels[k] = v
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "platform.testbed.dev/v1alpha1",
		"kind":       "RemediationRequest",
		"metadata":   map[string]any{"name": name, "labels": map[string]any{"platform.testbed.dev/fingerprint": fp}},
		"spec": map[string]any{
			"fingerprint": fp,
			"alertName":   a.Labels["alertname"],
			"severity":    a.Labels["severity"],
			"namespace":   a.Labels["namespace"],
			"labels":      labels,
			"firstSeen":   a.StartsAt.UTC().Format(time.RFC3339),
		},
	}}
	_, err := s.Requests.Create(ctx, u, metav1.CreateOptions{FieldManager: "gateway"})
	if apierrors.IsAlreadyExists(err) {
		return name, nil
	}
	return name, err
}

// audit records the alert in datastorage, idempotently per fingerprint.
func (s *Server) audit(ctx context.Context, fp string, a Alert) error {
	payload, _ := json.Marshal(map[string]any{"alertname": a.Labels["alertname"], "labels": a.Labels})
	body, _ := json.Marshal(map[string]any{
		"correlation_id": fp, "event_type": "gateway.signal.received", "service": "gateway", "payload": json.RawMessage(payload),
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.DatastorageURL+"/api/v1/audit/events", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "gateway-received-"+fp)
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("datastorage: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("datastorage answered %d", resp.StatusCode)
	}
	return nil
}

func (s *Server) fail(w http.ResponseWriter, what string, err error) {
	startup.Fail(w, s.Log, "ingest failed", "step", what, err)
}
