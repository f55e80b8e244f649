// Package controller is the small reconcile loop the platform's controllers
// share: client-go dynamic informers on their kinds, a rate-limited work
// queue, status updates, audit events through datastorage, and an HTTP
// server with /healthz and /readyz.
package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/testbed-dev/testbed/test/platform/incluster"
	"github.com/testbed-dev/testbed/test/platform/startup"
)

// Group is the API group of the platform's kinds.
const Group = "platform.testbed.dev"

// Resource names one of the platform's kinds.
func Resource(plural string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: Group, Version: "v1alpha1", Resource: plural}
}

// The platform's kinds.
var (
	RemediationRequests  = Resource("remediationrequests")
	SignalProcessings    = Resource("signalprocessings")
	AIAnalyses           = Resource("aianalyses")
	WorkflowExecutions   = Resource("workflowexecutions")
	NotificationRequests = Resource("notificationrequests")
)

// Runtime is what a controller's reconcile function works with.
type Runtime struct {
	Dyn       dynamic.Interface
	Namespace string
	Log       *slog.Logger
	HTTP      *http.Client
	// DatastorageURL receives audit events; empty disables them.
	DatastorageURL string
}

// Resource is a kind in the controller's namespace.
func (rt *Runtime) Resource(gvr schema.GroupVersionResource) dynamic.ResourceInterface {
	return rt.Dyn.Resource(gvr).Namespace(rt.Namespace)
}

// SetStatus writes the object's status through the status subresource.
func (rt *Runtime) SetStatus(ctx context.Context, gvr schema.GroupVersionResource, u *unstructured.Unstructured, status map[string]any) error {
	u = u.DeepCopy()
	u.Object["status"] = status
	_, err := rt.Resource(gvr).UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: "controller"})
	return err
}

// Audit records an event in datastorage; the key makes a retried
// reconcile record it once.
func (rt *Runtime) Audit(ctx context.Context, correlationID, eventType, service string, payload map[string]any) error {
	if rt.DatastorageURL == "" {
		return nil
	}
	p, _ := json.Marshal(payload)
	body, _ := json.Marshal(map[string]any{"correlation_id": correlationID, "event_type": eventType, "service": service, "payload": json.RawMessage(p)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rt.DatastorageURL+"/api/v1/audit/events", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", service+"-"+eventType+"-"+correlationID)
	resp, err := rt.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("audit: datastorage answered %d", resp.StatusCode)
	}
	return nil
}

// Spec configures a controller.
type Spec struct {
	Name string
	// Primary is the kind reconciled; its objects' names are the queue keys.
	Primary schema.GroupVersionResource
	// Secondary kinds whose events enqueue a primary object: Owner maps an
	// object of theirs to its primary's name ("" for none).
	Secondary []schema.GroupVersionResource
	Owner     func(*unstructured.Unstructured) string
	// Reconcile brings one primary object forward.
	Reconcile func(ctx context.Context, rt *Runtime, u *unstructured.Unstructured) error
	// Routes adds HTTP handlers beside /healthz and /readyz.
	Routes func(mux *http.ServeMux, rt *Runtime)
	// Ready checks the dependencies beyond the API (e.g. another service).
	Ready func(ctx context.Context, rt *Runtime) error
}

// Main runs a controller in its pod until SIGTERM; it exits non-zero when
// its dependencies are not there at start.
func Main(spec Spec) {
	startup.Main(func(ctx context.Context, log *slog.Logger) error { return run(ctx, spec, log) },
		"controller", spec.Name)
}

func run(ctx context.Context, spec Spec, log *slog.Logger) error {
	dyn, err := incluster.Dynamic()
	if err != nil {
		return err
	}
	rt := &Runtime{Dyn: dyn, Namespace: startup.Env("POD_NAMESPACE", "default"), Log: log,
		HTTP: &http.Client{Timeout: 5 * time.Second}, DatastorageURL: os.Getenv("DATASTORAGE_URL")}
	check := rt.dependencies(spec)
	// Started before its dependencies are ready, a controller exits.
	if err := startup.Retry(ctx, startup.Window, check); err != nil {
		return errors.New("dependencies not ready at start: " + err.Error())
	}

	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 10*time.Minute, rt.Namespace, nil)
	defer factory.Shutdown()
	lister, err := watch(ctx, factory, queue, spec)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", startup.Readyz(log, check))
	if spec.Routes != nil {
		spec.Routes(mux, rt)
	}
	srv := &http.Server{Addr: startup.Env("LISTEN_ADDR", ":8080"), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		for processNext(ctx, queue, lister, spec, rt) {
		}
	}()
	log.Info("running", "kind", spec.Primary.Resource, "namespace", rt.Namespace)
	return startup.Serve(ctx, srv, 10*time.Second)
}

// dependencies is the check of what the controller needs: its resources
// listable, datastorage ready, and the spec's own check.
func (rt *Runtime) dependencies(spec Spec) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		for _, gvr := range append([]schema.GroupVersionResource{spec.Primary}, spec.Secondary...) {
			if _, err := rt.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
				return fmt.Errorf("%s: %w", gvr.Resource, err)
			}
		}
		if rt.DatastorageURL != "" {
			if err := startup.HTTPReady(ctx, rt.HTTP, rt.DatastorageURL); err != nil {
				return fmt.Errorf("datastorage: %w", err)
			}
		}
		if spec.Ready != nil {
			return spec.Ready(ctx, rt)
		}
		return nil
	}
}

// watch starts the informers: a change of a primary object queues its
// name, a change of a secondary one its owner's. It returns once their
// caches are synced, with the primary objects' lister.
func watch(ctx context.Context, factory dynamicinformer.DynamicSharedInformerFactory, queue workqueue.TypedRateLimitingInterface[string], spec Spec) (cache.GenericLister, error) {
	enqueue := func(key func(*unstructured.Unstructured) string) cache.ResourceEventHandler {
		add := func(obj any) {
			if u, ok := obj.(*unstructured.Unstructured); ok {
				if k := key(u); k != "" {
					queue.Add(k)
				}
			}
		}
		return cache.ResourceEventHandlerFuncs{AddFunc: add, UpdateFunc: func(_, n any) { add(n) }}
	}
	primary := factory.ForResource(spec.Primary)
	if _, err := primary.Informer().AddEventHandler(enqueue(func(u *unstructured.Unstructured) string { return u.GetName() })); err != nil {
		return nil, err
	}
	for _, gvr := range spec.Secondary {
		if _, err := factory.ForResource(gvr).Informer().AddEventHandler(enqueue(spec.Owner)); err != nil {
			return nil, err
		}
	}
	factory.Start(ctx.Done())
	for gvr, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("informer for %s did not sync", gvr.Resource)
		}
	}
	return primary.Lister(), nil
}

func processNext(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], lister cache.GenericLister, spec Spec, rt *Runtime) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	obj, err := lister.ByNamespace(rt.Namespace).Get(key)
	if err != nil {
		q.Forget(key) // deleted
		return true
	}
	u := obj.(*unstructured.Unstructured).DeepCopy()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := spec.Reconcile(rctx, rt, u); err != nil {
		rt.Log.Error("reconcile failed; retrying", "name", key, "err", err)
		q.AddRateLimited(key)
		return true
	}
	q.Forget(key)
	return true
}

// Phase reads status.phase.
func Phase(u *unstructured.Unstructured) string {
	p, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	return p
}

// SpecString reads spec.<field>.
func SpecString(u *unstructured.Unstructured, field string) string {
	s, _, _ := unstructured.NestedString(u.Object, "spec", field)
	return s
}
