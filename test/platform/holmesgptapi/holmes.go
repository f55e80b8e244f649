// Package holmesgptapi is a deterministic stand-in for the platform's
// HolmesGPT API (a Python service that asks an LLM): the same request
// always gets the same analysis.
package holmesgptapi

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
)

// Request asks for an investigation of an alert.
type Request struct {
	AlertName   string            `json:"alertName"`
	Fingerprint string            `json:"fingerprint,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// Analysis is the answer.
type Analysis struct {
	RootCause           string  `json:"rootCause"`
	RecommendedWorkflow string  `json:"recommendedWorkflow"`
	Confidence          float64 `json:"confidence"`
}

// known alerts and what the stand-in concludes for them.
var known = map[string]Analysis{
	"HighCPU":         {"CPU saturation from a runaway worker", "restart-pod", 0.92},
	"DiskFull":        {"log volume filled by debug logging", "clean-logs", 0.88},
	"OOMKilled":       {"memory limit below working set", "increase-memory", 0.9},
	"PodCrashLooping": {"bad configuration after a rollout", "rollback-deployment", 0.85},
}

var workflows = []string{"restart-pod", "scale-up", "rollback-deployment"}

// Investigate answers deterministically: a known alert its fixed analysis,
// any other one derived from a hash of its name.
func Investigate(r Request) Analysis {
	if a, ok := known[r.AlertName]; ok {
		return a
	}
	h := sha256.Sum256([]byte(r.AlertName))
	return Analysis{
		RootCause:           fmt.Sprintf("anomaly in %s", r.AlertName),
		RecommendedWorkflow: workflows[int(h[0])%len(workflows)],
		Confidence:          0.5 + float64(h[1]%40)/100,
	}
}

// Handler serves /api/v1/investigate, /healthz and /readyz.
func Handler() http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok) // no dependencies: the stand-in holds no model
	mux.HandleFunc("POST /api/v1/investigate", func(w http.ResponseWriter, r *http.Request) {
		var req Request
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || req.AlertName == "" {
			http.Error(w, "a JSON body with alertName is required", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Investigate(req))
	})
	return mux
}
