// Package e2eenv is what the platform's suites share: the environment the
// targets pass (E2E_KUBECONFIG, E2E_NAMESPACE, E2E_<PORT>_URL) and small
// helpers over the platform's kinds, datastorage and the notification sink.
package e2eenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/testbed-dev/testbed/suiteenv"
	"github.com/testbed-dev/testbed/test/platform/controller"
	"github.com/testbed-dev/testbed/test/platform/pipeline"
)

// Env is a suite's environment.
type Env struct {
	Namespace string
	Dyn       dynamic.Interface
	Kube      kubernetes.Interface
	HTTP      *http.Client
	urls      map[string]string // port name → host URL
}

// Run runs the suite's specs. Inside an environment a suite that ran no
// spec fails: a skip in its BeforeSuite must not read as a pass.
func Run(t *testing.T, service string) {
	t.Helper()
	RegisterFailHandler(Fail)
	var ran int
	ReportAfterEach(func(r SpecReport) {
		if r.State.Is(types.SpecStatePassed | types.SpecStateFailureStates) {
			ran++
		}
	})
	RunSpecs(t, service+" E2E")
	if suiteenv.InEnvironment() && ran == 0 {
		t.Errorf("%s is set but the %s suite ran no spec: a suite inside an environment must run", suiteenv.KubeconfigVar, service)
	}
}

// Setup registers the suite's BeforeSuite and returns the Env it fills:
// outside an environment (a plain `go test ./...`) the suite skips; inside
// one, every port the suite uses must have its URL, or the suite fails.
// then, if given, runs at the end of the BeforeSuite (a suite's own setup:
// Ginkgo allows one BeforeSuite).
func Setup(service string, ports []string, then func(*Env)) *Env {
	env := &Env{}
	BeforeSuite(func() {
		if !suiteenv.InEnvironment() {
			Skip(fmt.Sprintf("%s is not set: this suite runs inside an environment; use `go run magefile.go e2e:run %s`", suiteenv.KubeconfigVar, service))
		}
		e, err := load(ports)
		Expect(err).NotTo(HaveOccurred())
		*env = *e
		if then != nil {
			then(env)
		}
	})
	return env
}

// load reads the environment: the kubeconfig, the namespace and the URL of
// each port; a missing one is an error.
func load(ports []string) (*Env, error) {
	kc, err := suiteenv.Require(suiteenv.KubeconfigVar)
	if err != nil {
		return nil, err
	}
	ns, err := suiteenv.Require(suiteenv.NamespaceVar)
	if err != nil {
		return nil, err
	}
	urls := map[string]string{}
	for _, p := range ports {
		if urls[p], err = suiteenv.URL(p); err != nil {
			return nil, err
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Env{Namespace: ns, Dyn: dyn, Kube: kube, HTTP: &http.Client{Timeout: 10 * time.Second}, urls: urls}, nil
}

// URL is the host address of a port the suite declared in Setup.
func (e *Env) URL(port string) string {
	u, ok := e.urls[port]
	if !ok {
		Fail(fmt.Sprintf("port %q was not declared in e2eenv.Setup", port))
	}
	return u
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

// Reconcile creates one of the platform's objects and waits, up to
// within, until its controller reports status.phase Completed: the shape
// every controller spec starts with.
func (e *Env) Reconcile(ctx context.Context, within time.Duration, gvr schema.GroupVersionResource, kind, name string, spec map[string]any) {
	GinkgoHelper()
	Expect(e.Create(ctx, gvr, kind, name, spec)).To(Succeed())
	Eventually(e.Status).WithContext(ctx).WithArguments(gvr, name, "phase").
		WithTimeout(within).WithPolling(500 * time.Millisecond).Should(Equal(pipeline.Completed))
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
	if err := e.getJSON(ctx, e.URL("datastorage")+"/api/v1/audit/events?correlation_id="+correlationID, &out); err != nil {
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
	return out.Deliveries, e.getJSON(ctx, e.URL("notification")+"/api/v1/deliveries", &out)
}
