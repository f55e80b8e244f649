package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager is testbed's name on what it makes (the managed-by label)
// and the field manager of a Client without a Manager.
const FieldManager = "testbed"

// ManagerFor is the field manager of a topology's applies: one per
// topology, so that two teams' applies of one CRD on a shared cluster
// conflict (and say so) instead of silently taking each other's fields.
func ManagerFor(topology string) string { return FieldManager + "-" + topology }

// manager is the field manager of this client's writes.
func (c *Client) manager() string {
	if c.Manager != "" {
		return c.Manager
	}
	return FieldManager
}

// requestTimeout bounds each API request that is not a watch.
const requestTimeout = 30 * time.Second

// Client talks to one cluster.
type Client struct {
	Core    kubernetes.Interface
	Dynamic dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	cfg     *rest.Config

	// LeaveOthers is set on a cluster testbed did not make: an object that
	// exists there and that testbed never applied (a CRD a release
	// installed) is left as it is, and fields another manager set are not
	// taken over (the apply fails, naming the manager). On testbed's own
	// clusters an apply takes over whatever it names.
	LeaveOthers bool

	// Manager is the field manager of every write (ManagerFor the
	// topology); empty: FieldManager.
	Manager string
}

// NewClient connects through the kubeconfig file at path (the cluster's
// own, never the user's default), with its current context.
func NewClient(path string) (*Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	return newClient(cfg)
}

func newClient(cfg *rest.Config) (*Client, error) {
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(core.Discovery()))
	return &Client{Core: core, Dynamic: dyn, mapper: mapper, cfg: cfg}, nil
}

// resource finds the API resource of an object. A kind it does not know
// refreshes the discovery cache once: a CRD may just have been Established.
func (c *Client) resource(o *unstructured.Unstructured) (*meta.RESTMapping, error) {
	gvk := o.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("the cluster does not serve %s: %w", gvk, err)
	}
	return m, nil
}

func (c *Client) resourceFor(o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	m, err := c.resource(o)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.Dynamic.Resource(m.Resource).Namespace(o.GetNamespace()), nil
	}
	return c.Dynamic.Resource(m.Resource), nil
}

// SetNamespace puts the namespaced objects in ns and leaves cluster-scoped
// ones (CRDs, cluster roles) without one.
func (c *Client) SetNamespace(objs []Object, ns string) error {
	for _, o := range objs {
		m, err := c.resource(o.Unstructured)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", o.Source, o, err)
		}
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			o.SetNamespace(ns)
		} else {
			o.SetNamespace("")
		}
	}
	return nil
}

// Apply server-side applies the objects into namespace ns (namespaced kinds
// only). An error names the manifest file and the object.
func (c *Client) Apply(ctx context.Context, ns string, objs []Object, w io.Writer) error {
	if err := c.SetNamespace(objs, ns); err != nil {
		return err
	}
	verbs := make([]string, len(objs))
	for _, tier := range applyTiers(objs) {
		// One tier's objects at once (each a GET and a PATCH: about 30 ms
		// here, one after the other before), the next tier after it.
		// The first failure cancels the rest of the tier, and Wait returns
		// it: the cause, not a cancellation it made.
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for _, i := range tier {
			g.Go(func() error {
				verb, err := c.applyOne(gctx, objs[i])
				if err != nil {
					return fmt.Errorf("%s: %s: %w", objs[i].Source, objs[i], err)
				}
				verbs[i] = verb
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	for i, o := range objs {
		fmt.Fprintf(w, "%s %s\n", o, verbs[i])
	}
	return nil
}

// applyTiers groups the objects' indexes, in manifest order, into what
// Apply sends together, in kustomize's order of kinds: what others are
// made in or of (namespaces, CRDs); service accounts and the policies
// admission applies (a token Secret whose account does not exist yet is
// deleted by the token controller); what workloads refer to (roles,
// config, secrets, claims, Services); then the workloads and the webhooks
// and API services that call them. A pod thus never starts before its
// ConfigMap or ServiceAccount exists.
func applyTiers(objs []Object) [][]int {
	tiers := make([][]int, 4)
	for i, o := range objs {
		t := 2
		switch o.GetKind() {
		case "Namespace", "CustomResourceDefinition":
			t = 0
		case "ServiceAccount", "ResourceQuota", "LimitRange", "PriorityClass", "StorageClass":
			t = 1
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod",
			"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService":
			t = 3
		}
		tiers[t] = append(tiers[t], i)
	}
	return slices.DeleteFunc(tiers, func(t []int) bool { return len(t) == 0 })
}

func (c *Client) applyOne(ctx context.Context, o Object) (string, error) {
	ri, err := c.resourceFor(o.Unstructured)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(o.Object)
	if err != nil {
		return "", err
	}
	patch := func() (*unstructured.Unstructured, error) {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		force := !c.LeaveOthers
		return ri.Patch(rctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: c.manager(), Force: &force})
	}
	live, err := get(ctx, ri, o.GetName())
	if err != nil {
		return "", err
	}
	if live != nil && c.LeaveOthers && !managedBy(live, c.manager()) {
		return "left as it is (it exists and testbed did not make it)", nil
	}
	before := ""
	if live != nil {
		before = live.GetResourceVersion()
	}
	got, err := patch()
	if err != nil && o.GetKind() == "Job" && apierrors.IsInvalid(err) {
		// A Job's pod template is immutable: a changed Job is replaced.
		if err := deleteAndWait(ctx, ri, o.GetName()); err != nil {
			return "", fmt.Errorf("replacing the Job: %w", err)
		}
		got, err = patch()
		if err == nil {
			return "replaced", nil
		}
	}
	if apierrors.IsConflict(err) && c.LeaveOthers {
		return "", fmt.Errorf("%w\n  it exists and another manager set these fields differently: testbed does not change what it did not make; align the manifest with the cluster's object, or use a cluster of your own", err)
	}
	if err != nil {
		return "", err
	}
	switch {
	case before == "":
		return "created", nil
	case got.GetResourceVersion() == before:
		return "unchanged", nil
	}
	return "configured", nil
}

// get is the live object, nil when it is absent (NotFound). Any other
// error (Forbidden, a timeout) is returned: an object that cannot be read
// may be someone else's, and must not be taken for absent.
func get(ctx context.Context, ri dynamic.ResourceInterface, name string) (*unstructured.Unstructured, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	u, err := ri.Get(rctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the live object: %w", err)
	}
	return u, nil
}

// managedBy reports whether manager applied or updated any field of u.
func managedBy(u *unstructured.Unstructured, manager string) bool {
	for _, m := range u.GetManagedFields() {
		if m.Manager == manager {
			return true
		}
	}
	return false
}

func deleteAndWait(ctx context.Context, ri dynamic.ResourceInterface, name string) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	fg := metav1.DeletePropagationForeground
	if err := ri.Delete(rctx, name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := ri.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// EnsureNamespace applies the namespace.
func (c *Client) EnsureNamespace(ctx context.Context, ns string) error {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": ns, "labels": map[string]any{"app.kubernetes.io/managed-by": FieldManager}},
	}}
	_, err := c.applyOne(ctx, Object{Unstructured: u})
	return err
}

// CreateNamespace creates ns with the labels; an existing namespace is an
// error (it is not the caller's to take over).
func (c *Client) CreateNamespace(ctx context.Context, ns string, labels map[string]string) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}
	_, err := c.Core.CoreV1().Namespaces().Create(rctx, n, metav1.CreateOptions{FieldManager: c.manager()})
	return err
}

// DeleteRun deletes the objects (cluster-scoped or not) that carry
// RunLabel=run in the cluster, and waits until each is gone: an object of
// the same name without it (left as it was, not the run's) stays, and a
// missing one is not an error. It returns how many it deleted.
func (c *Client) DeleteRun(ctx context.Context, objs []Object, run string) (int, error) {
	var errs []error
	n := 0
	for _, o := range objs {
		ri, err := c.resourceFor(o.Unstructured)
		var live *unstructured.Unstructured
		if err == nil {
			live, err = get(ctx, ri, o.GetName())
		}
		if err == nil {
			if live == nil || live.GetLabels()[RunLabel] != run {
				continue
			}
			if err = deleteAndWait(ctx, ri, o.GetName()); err == nil {
				n++
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", o, err))
		}
	}
	return n, errors.Join(errs...)
}

// EnsureSecret creates a Secret holding a random value (48 hex digits)
// under each key, once: an existing Secret is kept, so a reused cluster
// keeps its password.
func (c *Client) EnsureSecret(ctx context.Context, ns, name string, keys []string) (created bool, err error) {
	data := map[string]string{}
	for _, k := range keys {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return false, err
		}
		data[k] = hex.EncodeToString(b)
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/managed-by": FieldManager}},
		StringData: data,
	}
	_, err = c.Core.CoreV1().Secrets(ns).Create(rctx, s, metav1.CreateOptions{FieldManager: c.manager()})
	if apierrors.IsAlreadyExists(err) {
		return false, nil
	}
	return err == nil, err
}

// DeleteNamespace deletes ns and waits until it is gone. Its pods are
// killed, not stopped gracefully: nothing of the namespace is kept, and a
// database's graceful stop waits for clients that are going too (seen:
// 28 s for the reference platform's namespace, PostgreSQL waiting).
func (c *Client) DeleteNamespace(ctx context.Context, ns string) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	err := c.Core.CoreV1().Namespaces().Delete(rctx, ns, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	// The namespace is terminating: no new pod starts in it.
	now := int64(0)
	if err := c.Core.CoreV1().Pods(ns).DeleteCollection(rctx, metav1.DeleteOptions{GracePeriodSeconds: &now}, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("killing the pods of %s: %w", ns, err)
	}
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.Core.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// WaitServiceEndpoint waits until the Service has at least one ready
// endpoint and returns how many it has.
func (c *Client) WaitServiceEndpoint(ctx context.Context, ns, service string, timeout time.Duration) (int, error) {
	sel := metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service}
	ready := 0
	var last error // a failed list is retried, and named if it was the last word
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		lctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		list, err := c.Core.DiscoveryV1().EndpointSlices(ns).List(lctx, sel)
		if last = err; err != nil {
			return false, nil
		}
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready++
				}
			}
		}
		return ready > 0, nil
	})
	if err != nil {
		return 0, fmt.Errorf("service %s/%s: no ready endpoint after %s: %w", ns, service, timeout, errors.Join(err, last))
	}
	return ready, nil
}

// Answers reports whether the API server answers /readyz once, within
// timeout: through the kubeconfig's address and CA, so only the cluster
// that kubeconfig was written for can answer.
func (c *Client) Answers(ctx context.Context, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := c.Core.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err == nil
}

// WaitAPI waits until the API server answers /readyz (a cluster whose node
// was just unpaused answers after a second or two).
func (c *Client) WaitAPI(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		_, last = c.Core.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		rcancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the API server did not answer within %s: %w", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
