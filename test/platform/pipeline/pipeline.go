// Package pipeline holds the reconcile logic of the platform's controllers:
// remediationorchestrator drives a RemediationRequest through
// SignalProcessing → AIAnalysis → WorkflowExecution → NotificationRequest,
// and each of those kinds has its own controller.
package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	c "github.com/testbed-dev/testbed/test/platform/controller"
	"github.com/testbed-dev/testbed/test/platform/holmesgptapi"
	"github.com/testbed-dev/testbed/test/platform/startup"
)

// RemediationLabel links a child to its RemediationRequest.
const RemediationLabel = "platform.testbed.dev/remediation"

// Completed is the phase every kind ends in.
const Completed = "Completed"

// stage is one child of a RemediationRequest.
type stage struct {
	gvr    schema.GroupVersionResource
	kind   string
	prefix string
	phase  string // the RemediationRequest's phase while this stage runs
	spec   func(rr *unstructured.Unstructured, prev *unstructured.Unstructured) map[string]any
}

var stages = []stage{
	{c.SignalProcessings, "SignalProcessing", "sp-", "Processing", func(rr, _ *unstructured.Unstructured) map[string]any {
		return map[string]any{"alertName": c.SpecString(rr, "alertName"), "severity": c.SpecString(rr, "severity"), "namespace": c.SpecString(rr, "namespace")}
	}},
	{c.AIAnalyses, "AIAnalysis", "ai-", "Analyzing", func(rr, _ *unstructured.Unstructured) map[string]any {
		return map[string]any{"alertName": c.SpecString(rr, "alertName"), "fingerprint": c.SpecString(rr, "fingerprint")}
	}},
	{c.WorkflowExecutions, "WorkflowExecution", "we-", "Executing", func(_, ai *unstructured.Unstructured) map[string]any {
		wf, _, _ := unstructured.NestedString(ai.Object, "status", "recommendedWorkflow")
		return map[string]any{"workflow": wf}
	}},
	{c.NotificationRequests, "NotificationRequest", "nr-", "Notifying", func(rr, we *unstructured.Unstructured) map[string]any {
		wf, _, _ := unstructured.NestedString(we.Object, "status", "workflow")
		res, _, _ := unstructured.NestedString(we.Object, "status", "result")
		return map[string]any{"channel": "e2e-sink", "subject": fmt.Sprintf("%s remediated", c.SpecString(rr, "alertName")),
			"body": fmt.Sprintf("workflow %s: %s", wf, res)}
	}},
}

// Orchestrator is remediationorchestrator's controller.
var Orchestrator = c.Spec{
	Name:      "remediationorchestrator",
	Primary:   c.RemediationRequests,
	Secondary: []schema.GroupVersionResource{c.SignalProcessings, c.AIAnalyses, c.WorkflowExecutions, c.NotificationRequests},
	Owner:     func(u *unstructured.Unstructured) string { return u.GetLabels()[RemediationLabel] },
	Reconcile: orchestrate,
}

// orchestrate creates the next child of a RemediationRequest once the one
// before it completed, and completes the request after the last.
func orchestrate(ctx context.Context, rt *c.Runtime, rr *unstructured.Unstructured) error {
	if c.Phase(rr) == Completed {
		return nil
	}
	prev := rr
	for _, st := range stages {
		name := st.prefix + rr.GetName()
		child, err := rt.Resource(st.gvr).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			spec := st.spec(rr, prev)
			spec["remediationRequest"] = rr.GetName()
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": c.Group + "/v1alpha1", "kind": st.kind,
				"metadata": map[string]any{
					"name": name, "labels": map[string]any{RemediationLabel: rr.GetName()},
					"ownerReferences": []any{map[string]any{"apiVersion": rr.GetAPIVersion(), "kind": rr.GetKind(), "name": rr.GetName(), "uid": string(rr.GetUID()), "controller": true}},
				},
				"spec": spec,
			}}
			if _, err := rt.Resource(st.gvr).Create(ctx, u, metav1.CreateOptions{FieldManager: "remediationorchestrator"}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating %s %s: %w", st.kind, name, err)
			}
			if err := rt.Audit(ctx, rr.GetName(), "remediation."+st.phase, "remediationorchestrator", map[string]any{"child": name}); err != nil {
				return err
			}
			return rt.SetStatus(ctx, c.RemediationRequests, rr, map[string]any{"phase": st.phase})
		}
		if err != nil {
			return err
		}
		if c.Phase(child) != Completed {
			return nil // its controller will move it; its update requeues us
		}
		prev = child
	}
	if err := rt.Audit(ctx, rr.GetName(), "remediation.completed", "remediationorchestrator", nil); err != nil {
		return err
	}
	return rt.SetStatus(ctx, c.RemediationRequests, rr, map[string]any{"phase": Completed, "completedAt": time.Now().UTC().Format(time.RFC3339)})
}

// worker makes the controller of a child kind: do runs once per object
// and returns its status fields.
func worker(name string, gvr schema.GroupVersionResource, do func(ctx context.Context, rt *c.Runtime, u *unstructured.Unstructured) (map[string]any, error)) c.Spec {
	return c.Spec{
		Name:    name,
		Primary: gvr,
		Reconcile: func(ctx context.Context, rt *c.Runtime, u *unstructured.Unstructured) error {
			if c.Phase(u) == Completed {
				return nil
			}
			status, err := do(ctx, rt, u)
			if err != nil {
				return err
			}
			if err := rt.Audit(ctx, c.SpecString(u, "remediationRequest"), name+".completed", name, status); err != nil {
				return err
			}
			status["phase"] = Completed
			return rt.SetStatus(ctx, gvr, u, status)
		},
	}
}

// SignalProcessing classifies the signal.
var SignalProcessing = worker("signalprocessing", c.SignalProcessings, func(_ context.Context, _ *c.Runtime, u *unstructured.Unstructured) (map[string]any, error) {
	env := "staging"
	if ns := c.SpecString(u, "namespace"); ns == "prod" || ns == "production" {
		env = "production"
	}
	priority := "P3"
	switch c.SpecString(u, "severity") {
	case "critical":
		priority = "P1"
	case "warning":
		priority = "P2"
	}
	return map[string]any{"environment": env, "priority": priority}, nil
})

// AIAnalysis asks holmesgpt-api for a root cause and a workflow.
var AIAnalysis = func() c.Spec {
	s := worker("aianalysis", c.AIAnalyses, func(ctx context.Context, rt *c.Runtime, u *unstructured.Unstructured) (map[string]any, error) {
		body, _ := json.Marshal(holmesgptapi.Request{AlertName: c.SpecString(u, "alertName"), Fingerprint: c.SpecString(u, "fingerprint")})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, startup.Env("HOLMESGPT_API_URL", "http://holmesgpt-api:8080")+"/api/v1/investigate", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := rt.HTTP.Do(req)
		if err != nil {
			return nil, fmt.Errorf("holmesgpt-api: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("holmesgpt-api answered %d", resp.StatusCode)
		}
		var a holmesgptapi.Analysis
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			return nil, err
		}
		return map[string]any{"rootCause": a.RootCause, "recommendedWorkflow": a.RecommendedWorkflow, "confidence": fmt.Sprintf("%.2f", a.Confidence)}, nil
	})
	s.Ready = func(ctx context.Context, rt *c.Runtime) error {
		return startup.HTTPReady(ctx, rt.HTTP, startup.Env("HOLMESGPT_API_URL", "http://holmesgpt-api:8080"))
	}
	return s
}()

// WorkflowExecution runs the recommended workflow (deterministically).
var WorkflowExecution = worker("workflowexecution", c.WorkflowExecutions, func(_ context.Context, _ *c.Runtime, u *unstructured.Unstructured) (map[string]any, error) {
	wf := c.SpecString(u, "workflow")
	if wf == "" {
		return nil, fmt.Errorf("%s has no workflow", u.GetName())
	}
	return map[string]any{"workflow": wf, "result": "Succeeded", "steps": []any{"validate", "execute:" + wf, "verify"}}, nil
})

// Delivery is one notification delivered to the sink.
type Delivery struct {
	Name        string    `json:"name"`
	Remediation string    `json:"remediationRequest"`
	Subject     string    `json:"subject"`
	Body        string    `json:"body"`
	At          time.Time `json:"at"`
}

// sink is where notification delivers; the suites read it over HTTP.
var sink struct {
	sync.Mutex
	list []Delivery
}

// Notification delivers each NotificationRequest once to the sink.
var Notification = func() c.Spec {
	s := worker("notification", c.NotificationRequests, func(_ context.Context, _ *c.Runtime, u *unstructured.Unstructured) (map[string]any, error) {
		sink.Lock()
		defer sink.Unlock()
		// A status update that failed is retried: never deliver twice.
		if !slices.ContainsFunc(sink.list, func(d Delivery) bool { return d.Name == u.GetName() }) {
			sink.list = append(sink.list, Delivery{Name: u.GetName(), Remediation: c.SpecString(u, "remediationRequest"),
				Subject: c.SpecString(u, "subject"), Body: c.SpecString(u, "body"), At: time.Now().UTC()})
		}
		return map[string]any{"deliveredAt": time.Now().UTC().Format(time.RFC3339), "channel": c.SpecString(u, "channel")}, nil
	})
	s.Routes = func(mux *http.ServeMux, _ *c.Runtime) {
		mux.HandleFunc("GET /api/v1/deliveries", func(w http.ResponseWriter, _ *http.Request) {
			sink.Lock()
			defer sink.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"deliveries": append([]Delivery{}, sink.list...)})
		})
	}
	return s
}()
