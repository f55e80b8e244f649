// Package cluster makes, finds and deletes kind clusters through kind's Go
// library, each with a kubeconfig file of its own: the user's kubeconfig
// and current context are never touched.
package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	kindexec "sigs.k8s.io/kind/pkg/exec"

	"github.com/testbed-dev/testbed/engine"
	"github.com/testbed-dev/testbed/internal/registry"
	"github.com/testbed-dev/testbed/topology"
)

// Scope is the clusters of one topology, named by the topology's name:
// their names start with Prefix and their state (kubeconfig, warm records)
// lives under one directory of the user's cache. A cluster is the scope's
// when its name has the prefix and its state directory exists: another
// repository's clusters, or a user's, are never the scope's, even when
// their names happen to share the prefix.
type Scope string

// Prefix starts the name of every cluster of the scope.
func (s Scope) Prefix() string { return string(s) + "-" }

// NameFor is the cluster name of a service's E2E environment.
func (s Scope) NameFor(service string) string { return s.Prefix() + service }

// Cluster is one kind cluster and its own kubeconfig file.
type Cluster struct {
	Name       string
	Kubeconfig string
	scope      Scope
	// runtime runs the nodes (docker, podman, ...): kind's provider and
	// the node commands testbed runs itself (pause, port) go through it.
	runtime  string
	provider *cluster.Provider
}

// Dir is the scope's state directory, under the user's cache directory
// (never ~/.kube).
func (s Scope) Dir() (string, error) {
	if s == "" {
		return "", errors.New("a cluster scope needs a name (the topology's)")
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the kubeconfig: %w", err)
	}
	if !localName(string(s)) {
		return "", fmt.Errorf("cluster scope %q: not a name a directory under %s can have", string(s), filepath.Join(base, "testbed"))
	}
	return filepath.Join(base, "testbed", string(s)), nil
}

// localName reports whether name is one path element that stays where it
// is joined ("a", not "../a", "a/b" or "..").
func localName(name string) bool {
	return filepath.IsLocal(name) && !strings.ContainsAny(name, `/\`)
}

// StateDir is where a cluster's kubeconfig lives.
func (s Scope) StateDir(name string) (string, error) {
	dir, err := s.Dir()
	if err != nil {
		return "", err
	}
	if !localName(name) {
		return "", fmt.Errorf("cluster %q: not a name a state directory under %s can have", name, dir)
	}
	return filepath.Join(dir, name), nil
}

// lock takes the scope's lock on the named cluster (flock on a file of
// the scope's directory, released by unlock or by the process's end),
// waiting while another testbed process holds it, until ctx ends.
func (s Scope) lock(ctx context.Context, name string, w io.Writer) (unlock func(), err error) {
	dir, err := s.Dir()
	if err != nil {
		return nil, err
	}
	if !localName(name) {
		return nil, fmt.Errorf("cluster %q: not a name a lock file under %s can have", name, dir)
	}
	locks := filepath.Join(dir, ".locks")
	if err := os.MkdirAll(locks, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(locks, name), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for told := false; ; told = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking cluster %s: %w", name, err)
		}
		if !told {
			fmt.Fprintf(w, "waiting for another testbed process that is creating cluster %s\n", name)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// madeRecord is the file in a cluster's state dir that says testbed started
// kind for it. The state dir alone does not: it is also written for a
// cluster testbed only used (its kubeconfig, on the reuse path and for
// deploy:parallel or cluster:load against a cluster made by hand).
const madeRecord = "made-by-testbed"

// RecordMade writes the record that testbed made the named cluster, just
// before it starts kind for it, with this process as its maker.
func (s Scope) RecordMade(name string) error { return s.RecordMadeBy(name, Self()) }

// RecordMadeBy writes the record that the holder made the named cluster.
func (s Scope) RecordMadeBy(name string, h Holder) error {
	dir, err := s.StateDir(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	rec := fmt.Sprintf("%s at %s\n", h, time.Now().UTC().Format(time.RFC3339))
	return os.WriteFile(filepath.Join(dir, madeRecord), []byte(rec), 0o600)
}

// Made reports whether testbed made the named cluster (see RecordMade).
func (s Scope) Made(name string) bool {
	dir, err := s.StateDir(name)
	if err != nil {
		return false
	}
	fi, err := os.Stat(filepath.Join(dir, madeRecord))
	return err == nil && fi.Mode().IsRegular()
}

// Made reports whether testbed made this cluster.
func (c *Cluster) Made() bool { return c.scope.Made(c.Name) }

// Open returns a handle on the named cluster, whether or not it exists.
func (s Scope) Open(name string, w io.Writer) (*Cluster, error) {
	if w == nil {
		w = io.Discard
	}
	dir, err := s.StateDir(name)
	if err != nil {
		return nil, err
	}
	rt, err := runtime()
	if err != nil {
		return nil, err
	}
	return &Cluster{
		Name:       name,
		Kubeconfig: filepath.Join(dir, "kubeconfig"),
		scope:      s,
		runtime:    rt,
		provider:   cluster.NewProvider(providerOption(rt), cluster.ProviderWithLogger(newKindLogger(w))),
	}, nil
}

// Exists reports whether kind knows the cluster.
func (c *Cluster) Exists(ctx context.Context) (bool, error) {
	names, err := withDeadline(ctx, 30*time.Second, "listing kind clusters", c.provider.List)
	if err != nil {
		return false, err
	}
	return slices.Contains(names, c.Name), nil
}

// CreateOptions configure a new cluster.
type CreateOptions struct {
	// NodeImage is the kind node image; empty means kind's default.
	NodeImage string
	// Ports are mapped from the node to 127.0.0.1 on the host.
	Ports []topology.Port
	// Service is named in the error when a port is taken.
	Service string
	// Reuse keeps an existing cluster instead of failing.
	Reuse bool
	// AnyHostPorts lets the engine choose the host ports (a warm cluster):
	// read them with HostPorts.
	AnyHostPorts bool
	// Shape is the topology's cluster shape (workers, a kind fragment);
	// nil: one control-plane node.
	Shape *topology.Cluster
	// Registry makes the nodes' containerd read per-registry hosts.toml
	// files, so that they can pull from the local registry
	// (E2E_REGISTRY=local; ConfigureRegistry writes the file).
	Registry bool
}

// Outcome says what Create did with the cluster: a run deletes at its end
// only a cluster it made.
type Outcome int

const (
	// NotMade: Create refused before kind started (the cluster exists, a
	// port is taken); nothing of the cluster is this call's.
	NotMade Outcome = iota
	// Reused: the cluster existed and Reuse was asked; it is not this call's.
	Reused
	// Made: kind was started for it: the cluster (or what is left of a
	// failed creation) is this call's.
	Made
)

// existsError says what to do about the cluster found in the way of a
// create: wait, when a run that is still running holds it (deleting it
// would break that run); else delete it (with testbed, or kind if
// testbed did not make it) or reuse it.
func (c *Cluster) existsError(service string) error {
	if why, held := c.scope.InUse(c.Name); held {
		return fmt.Errorf("cluster %s %w and is %s (%w): wait until that run has ended (it deletes the cluster it made); deleting it now would break that run", c.Name, ErrExists, why, ErrBusy)
	}
	how := "kind delete cluster --name " + c.Name + " if it is yours (testbed did not make it)"
	if c.Made() {
		how = "cluster:delete " + service
		if strings.Contains(service, ":") { // e2e:all's one cluster
			how = "cluster:prune"
		}
	}
	return fmt.Errorf("cluster %s %w: delete it (%s), or set E2E_REUSE_CLUSTER=1 to use it (a run deletes only a cluster it made)", c.Name, ErrExists, how)
}

// ErrExists is returned when the cluster exists and reuse was not asked;
// ErrMissing when a cluster a target works on does not exist.
var (
	ErrExists = errors.New("already exists")
	// ErrBusy comes with ErrExists when a run that is still running holds
	// the cluster: no command should delete it.
	ErrBusy    = errors.New("in use")
	ErrMissing = errors.New("does not exist")
)

// Create makes the cluster, or with Reuse returns the existing one. It
// checks the host ports first. If ctx ends while kind works, or kind fails,
// it deletes what kind made, sweeping for node containers the engine
// creates after kind returned.
func (c *Cluster) Create(ctx context.Context, o CreateOptions, w io.Writer) (Outcome, error) {
	// From the existence check until kind returns, no other testbed
	// process creates a cluster of this name: the second run of a service
	// started at the same instant waits, then finds it (and is refused,
	// or reuses it).
	unlock, err := c.scope.lock(ctx, c.Name, w)
	if err != nil {
		return NotMade, err
	}
	defer unlock()
	exists, err := c.Exists(ctx)
	if err != nil {
		return NotMade, err
	}
	if exists {
		if !o.Reuse {
			return NotMade, c.existsError(o.Service)
		}
		if err := c.writeKubeconfig(ctx); err != nil {
			return Reused, err
		}
		fmt.Fprintf(w, "reusing cluster %s (kubeconfig %s)\n", c.Name, c.Kubeconfig)
		return Reused, nil
	}
	opts, err := c.prepareKind(ctx, o, w)
	if err != nil {
		return NotMade, err
	}
	// From here kind works for this call: the record says so to prune,
	// list and cluster:delete (Delete removes it with the state dir).
	if err := c.scope.RecordMade(c.Name); err != nil {
		return NotMade, err
	}
	return c.runKind(ctx, opts, o.NodeImage, w)
}

// prepareKind checks the host ports and writes what kind reads (the state
// dir, the kubeadm patches), returning kind's create options.
func (c *Cluster) prepareKind(ctx context.Context, o CreateOptions, w io.Writer) ([]cluster.CreateOption, error) {
	if !o.AnyHostPorts {
		if err := PortsFree(o.Ports, o.Service); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.Kubeconfig), 0o700); err != nil {
		return nil, err
	}
	patches, err := writeKubeadmPatches(filepath.Dir(c.Kubeconfig))
	if err != nil {
		return nil, err
	}
	cfg, err := kindConfig(o.Ports, o.AnyHostPorts, patches, o.Shape, o.Registry)
	if err != nil {
		return nil, err
	}
	if oneControlPlane(cfg) && c.sharedCredential(ctx, o.NodeImage, w) {
		cfg.KubeadmConfigPatches = slices.Insert(cfg.KubeadmConfigPatches, 1, sharedCredentialPatch)
	}
	if short := InotifyShort(len(cfg.Nodes)); short != "" {
		fmt.Fprintf(w, "warning: %s\n", short)
	}
	opts := []cluster.CreateOption{
		cluster.CreateWithV1Alpha4Config(cfg),
		cluster.CreateWithKubeconfigPath(c.Kubeconfig),
		// No CreateWithWaitForReady: kind's last action would wait (about
		// 3 s here) for the nodes to be Ready, while loads and applies need
		// only containerd and the API server. Whatever needs a Ready node
		// waits for it: the run's "ready cluster DNS" step, and the
		// readiness waits, which take an Unschedulable pod on a node still
		// settling for no failure.
		cluster.CreateWithDisplayUsage(false),
		cluster.CreateWithDisplaySalutation(false),
	}
	if o.NodeImage != "" {
		opts = append(opts, cluster.CreateWithNodeImage(o.NodeImage))
	}
	return opts, nil
}

// runKind runs kind's create until it returns or ctx ends; either way what
// it made is this call's to clean up when the create did not complete.
func (c *Cluster) runKind(ctx context.Context, opts []cluster.CreateOption, nodeImage string, w io.Writer) (Outcome, error) {
	done := make(chan error, 1)
	go func() {
		restore := fastNodeExec(c.runtime)
		defer restore()
		done <- c.provider.Create(c.Name, opts...)
	}()
	var err error
	select {
	case err = <-done:
		if err == nil && ctx.Err() != nil {
			// kind finished as the interrupt came: the cluster is ours
			// to delete all the same.
			return Made, errors.Join(ctx.Err(), c.sweep(context.WithoutCancel(ctx), w))
		}
	case <-ctx.Done():
		// kind's Create takes no context. Deleting the node under it makes
		// its next step fail, so it returns in seconds instead of finishing
		// the cluster (~20 s). Until it returns, delete again each second:
		// the node may not exist yet.
		fmt.Fprintf(w, "interrupted: deleting %s under kind, then once more when kind has stopped\n", c.Name)
		dctx := context.WithoutCancel(ctx)
		stopped := waitKind(done, engine.Hurry(ctx), kindStopBound, time.Second, func() {
			if err := c.Delete(dctx, io.Discard); err != nil {
				fmt.Fprintf(w, "delete racing kind: %v\n", err)
			}
		})
		if !stopped {
			fmt.Fprintf(w, "kind had not stopped creating %s when testbed stopped waiting for it; sweeping what it made so far (if a node is left: kind delete cluster --name %s)\n", c.Name, c.Name)
		}
		return Made, errors.Join(ctx.Err(), c.sweep(dctx, w))
	}
	if err != nil && strings.Contains(err.Error(), "already exist") {
		// Someone made it after the existence check, outside testbed (kind
		// checks its nodes first and then stops): it is theirs, and so is
		// the state dir; only the record this call wrote goes.
		_ = os.Remove(filepath.Join(filepath.Dir(c.Kubeconfig), madeRecord))
		return NotMade, fmt.Errorf("cluster %s %w (made by someone else while testbed was about to create it): %v", c.Name, ErrExists, err)
	}
	if err != nil {
		// kind deletes a cluster whose creation failed (no Retain), but a
		// `docker run` it started may still be carried out by the engine
		// (its client interrupted by a terminal's Ctrl-C, which the whole
		// process group gets): sweep.
		err = fmt.Errorf("kind create cluster %s: %w%s", c.Name, err, nodeImageHint(err, nodeImage))
		return Made, errors.Join(err, c.sweep(context.WithoutCancel(ctx), w))
	}
	return Made, os.Chmod(c.Kubeconfig, 0o600)
}

// kindStopBound is how long an interrupted Create waits for kind to stop
// once its nodes are deleted under it: kind fails at its next step, in
// seconds, unless it is stuck (an engine call that does not return).
const kindStopBound = 30 * time.Second

// waitKind calls del at once and then every tick until kind's create
// returns on done; it gives up after bound, or at once after a del when
// hurry is closed (the runner kills soon: the sweep that follows matters
// more). stopped reports whether kind returned.
func waitKind(done <-chan error, hurry <-chan struct{}, bound, tick time.Duration, del func()) (stopped bool) {
	limit := time.NewTimer(bound)
	defer limit.Stop()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		del()
		select {
		case <-done:
			return true
		case <-hurry:
			return false
		case <-limit.C:
			return false
		case <-t.C:
		}
	}
}

// kubeadmPatchesDir is where a node finds the kubeadm patches of
// writeKubeadmPatches (mounted read-only from the cluster's state dir).
const kubeadmPatchesDir = "/kind/testbed-patches"

// coreDNSPatch makes CoreDNS ready sooner, applied by kubeadm as it
// creates the Deployment (no rollout after): one replica (a test cluster
// has one node; the second replica only competed for the two cores), and
// its readiness probed every second instead of every 10 s.
const coreDNSPatch = `spec:
  replicas: 1
  template:
    spec:
      containers:
      - name: coredns
        readinessProbe:
          periodSeconds: 1
`

// controlPlanePatch keeps a cluster healthy across a pause of its node
// (docker pause, a suspended laptop): without leader election the
// controller manager and scheduler have no lease to lose when the clock
// jumps, and with a node grace period of an hour the node is not tainted
// unreachable, its pods not evicted, when it comes back. kind merges
// extraArgs into the kubeadm config of any version.
const controlPlanePatch = `kind: ClusterConfiguration
controllerManager:
  extraArgs:
    leader-elect: "false"
    node-monitor-grace-period: "1h"
scheduler:
  extraArgs:
    leader-elect: "false"
`

// sharedCredentialPatch has the controller manager's controllers share one
// credential, the node's super-admin.conf, instead of each getting a
// service account and a token of its own as it starts: that took 3.9 s
// here for the 40-odd controllers, one after the other, and no pod (not
// CoreDNS's, not the platform's) is made before the last has started; with
// one credential they all start in 0.1–0.2 s. Not admin.conf: from 1.29
// its user is cluster-admin through a binding kubeadm makes only once it
// has seen the API healthy, after the controllers may have started; with
// it the pods came 6–7 s late in 3 of 4 runs of one set here (in none of
// 7 others). super-admin.conf (system:masters) is made by kubeadm init
// from 1.29 on, before the static pods, and by no join: the patch is given
// to a cluster of one control-plane node of such an image only
// (nodeKubeMinor). What changes for a suite: the controllers' own service
// accounts in kube-system are not made, and what they do is not limited
// by RBAC.
const sharedCredentialPatch = `kind: ClusterConfiguration
controllerManager:
  extraArgs:
    use-service-account-credentials: "false"
    kubeconfig: /etc/kubernetes/super-admin.conf
  extraVolumes:
  - name: super-admin-kubeconfig
    hostPath: /etc/kubernetes/super-admin.conf
    mountPath: /etc/kubernetes/super-admin.conf
    readOnly: true
    pathType: File
`

// sharedCredentialSince is the first Kubernetes minor whose kubeadm makes
// super-admin.conf.
const sharedCredentialSince = 29

// kubeletStatusPatch has the kubelet compute its node's status every
// second instead of every 10 s (it still posts it only on a change, or
// every 5 min: the report frequency would otherwise follow the update
// one). A kubelet frozen with a paused node can wake reporting NotReady
// ("container runtime is down", its last check of the runtime older than
// 30 s): measured here, that lasted 10 s with the default and about 2 s
// with this (1 of 4 wakes; 3 of 4 with the default).
const kubeletStatusPatch = `kind: KubeletConfiguration
nodeStatusUpdateFrequency: 1s
nodeStatusReportFrequency: 5m0s
`

// ecdsaKeysPatches have kubeadm make the cluster's keys ECDSA P-256
// instead of RSA-2048: its certs and kubeconfig phases took 8–18 ms
// instead of 0.97–1.14 s here (kind v0.33, Kubernetes 1.34, 2 runs each,
// alternating; kind's create 11.6–12.3 s vs 12.7–14.7 s). kind writes
// kubeadm's v1beta3 config for Kubernetes below 1.36, where the feature
// gate says it, and v1beta4 from then on, where the field does (the gate
// is gone there); a patch with an apiVersion applies only to a document
// of that version.
var ecdsaKeysPatches = []string{`apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
featureGates:
  PublicKeysECDSA: true
`, `apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
encryptionAlgorithm: ECDSA-P256
`}

// initPatch points kubeadm init at the patches directory.
const initPatch = `kind: InitConfiguration
patches:
  directory: ` + kubeadmPatchesDir + `
`

// sharedCredential reports whether the node image's kubeadm makes
// super-admin.conf (sharedCredentialPatch). kind's own default image is
// recent; an image whose version cannot be read gets the default
// credentials, and a line saying why.
func (c *Cluster) sharedCredential(ctx context.Context, nodeImage string, w io.Writer) bool {
	if nodeImage == "" {
		return true
	}
	minor, err := c.nodeKubeMinor(ctx, nodeImage)
	if err != nil {
		fmt.Fprintf(w, "the controller manager keeps a credential per controller (slower to start): %v\n", err)
		return false
	}
	return minor >= sharedCredentialSince
}

// oneControlPlane reports whether cfg has a single control-plane node.
func oneControlPlane(cfg *v1alpha4.Cluster) bool {
	n := 0
	for _, node := range cfg.Nodes {
		if node.Role == "" || node.Role == v1alpha4.ControlPlaneRole { // kind's default role
			n++
		}
	}
	return n == 1
}

// writeKubeadmPatches writes the files of kubeadm's patches directory
// into the cluster's state dir and returns their directory.
func writeKubeadmPatches(stateDir string) (string, error) {
	dir := filepath.Join(stateDir, "kubeadm-patches")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "corednsdeployment+strategic.yaml"), []byte(coreDNSPatch), 0o644)
}

// ConfigHash hashes the kind configuration a cluster of these ports gets
// (the kubeadm patches included): part of a warm cluster's shape.
func ConfigHash(ports []topology.Port, anyHostPorts bool, shape *topology.Cluster, registry bool) string {
	cfg, err := kindConfig(ports, anyHostPorts, kubeadmPatchesDir, shape, registry)
	b, _ := json.Marshal(struct {
		Cfg        *v1alpha4.Cluster
		Err        string
		CoreDNS    string
		Credential string
	}{cfg, fmt.Sprint(err), coreDNSPatch, sharedCredentialPatch})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// kindConfig is the kind configuration of a testbed cluster: API server
// and host ports on 127.0.0.1 only, and the kubeadm patches above
// (patchesDir is mounted into the first control-plane node, which also
// gets the ports), merged with the topology's shape: one control-plane
// node plus its workers, or the nodes of its kind fragment, whose feature
// gates, runtime config and networking are used and whose patches come
// after testbed's. With localRegistry, containerd reads hosts.toml files
// (the local registry's recipe).
func kindConfig(ports []topology.Port, anyHostPorts bool, patchesDir string, shape *topology.Cluster, localRegistry bool) (*v1alpha4.Cluster, error) {
	cfg := &v1alpha4.Cluster{
		TypeMeta:             v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Networking:           v1alpha4.Networking{APIServerAddress: "127.0.0.1"},
		KubeadmConfigPatches: append([]string{controlPlanePatch, kubeletStatusPatch, initPatch}, ecdsaKeysPatches...),
		Nodes:                []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole}},
	}
	frag, err := shape.KindConfig()
	if err != nil {
		return nil, err
	}
	if shape != nil {
		for range shape.Workers {
			cfg.Nodes = append(cfg.Nodes, v1alpha4.Node{Role: v1alpha4.WorkerRole})
		}
	}
	if frag != nil {
		if len(frag.Nodes) > 0 {
			cfg.Nodes = slices.Clone(frag.Nodes)
			// kind binds a mapping without an address on every interface:
			// a test cluster's ports stay on the host (the topology refuses
			// any other explicit address).
			for i := range cfg.Nodes {
				ms := slices.Clone(cfg.Nodes[i].ExtraPortMappings)
				for j := range ms {
					if ms[j].ListenAddress == "" {
						ms[j].ListenAddress = "127.0.0.1"
					}
				}
				cfg.Nodes[i].ExtraPortMappings = ms
			}
		}
		cfg.Networking = frag.Networking
		if cfg.Networking.APIServerAddress == "" {
			cfg.Networking.APIServerAddress = "127.0.0.1"
		}
		cfg.FeatureGates, cfg.RuntimeConfig = frag.FeatureGates, frag.RuntimeConfig
		cfg.KubeadmConfigPatches = append(cfg.KubeadmConfigPatches, frag.KubeadmConfigPatches...)
		cfg.KubeadmConfigPatchesJSON6902 = frag.KubeadmConfigPatchesJSON6902
		cfg.ContainerdConfigPatches = frag.ContainerdConfigPatches
		cfg.ContainerdConfigPatchesJSON6902 = frag.ContainerdConfigPatchesJSON6902
	}
	if localRegistry {
		cfg.ContainerdConfigPatches = append([]string{registry.ContainerdPatch}, cfg.ContainerdConfigPatches...)
	}
	first := slices.IndexFunc(cfg.Nodes, func(n v1alpha4.Node) bool { return n.Role == "" || n.Role == v1alpha4.ControlPlaneRole })
	if first < 0 {
		return nil, errors.New("the cluster has no control-plane node")
	}
	cp := &cfg.Nodes[first]
	cp.Role = v1alpha4.ControlPlaneRole
	cp.ExtraMounts = append(slices.Clone(cp.ExtraMounts), v1alpha4.Mount{HostPath: patchesDir, ContainerPath: kubeadmPatchesDir, Readonly: true})
	cp.ExtraPortMappings = slices.Clone(cp.ExtraPortMappings)
	for _, p := range ports {
		host := int32(p.HostPort)
		if anyHostPorts {
			host = -1 // the engine picks a free port as it starts the node
		}
		cp.ExtraPortMappings = append(cp.ExtraPortMappings, v1alpha4.PortMapping{
			ContainerPort: int32(p.NodePort), HostPort: host, ListenAddress: "127.0.0.1", Protocol: v1alpha4.PortMappingProtocolTCP,
		})
	}
	return cfg, nil
}

// Sweep timing: the cluster is gone once no node container of it has been
// seen for sweepQuiet; the sweep gives up after sweepMax.
const (
	sweepQuiet = 3 * time.Second
	sweepMax   = time.Minute
)

// sweep deletes the cluster, then keeps looking for node containers of it
// until none has been seen for sweepQuiet, deleting what appears: the
// Docker engine carries out a container create whose client was killed
// after the client is gone (seen: a Ctrl-C 2.8 s into a run left a node
// container that appeared after kind had returned and cleaned up).
func (c *Cluster) sweep(ctx context.Context, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, sweepMax)
	defer cancel()
	if err := c.Delete(ctx, w); err != nil {
		return err
	}
	quietSince := time.Now()
	for time.Since(quietSince) < sweepQuiet {
		select {
		case <-ctx.Done():
			return fmt.Errorf("sweeping cluster %s: node containers kept appearing: %w", c.Name, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
		ns, err := withDeadline(ctx, 30*time.Second, "listing nodes", func() ([]nodes.Node, error) { return c.provider.ListNodes(c.Name) })
		if err != nil {
			return err
		}
		if len(ns) > 0 {
			fmt.Fprintf(w, "sweep: %d node container(s) of %s appeared after kind returned: deleting\n", len(ns), c.Name)
			if err := c.Delete(ctx, w); err != nil {
				return err
			}
			quietSince = time.Now()
		}
	}
	return nil
}

func nodeImageHint(err error, image string) string {
	s := err.Error()
	if strings.Contains(s, "pull") || strings.Contains(s, "image") {
		if image == "" {
			image = "kind's default node image"
		}
		return fmt.Sprintf("\n%s could not be used: set E2E_NODE_IMAGE to a node image present here (offline: eval \"$(../shared/tools/offline-kind/build.sh env)\")", image)
	}
	return ""
}

// writeKubeconfig (re)writes the cluster's own kubeconfig, mode 0600.
func (c *Cluster) writeKubeconfig(ctx context.Context) error {
	cfg, err := withDeadline(ctx, 30*time.Second, "reading the kubeconfig", func() (string, error) { return c.provider.KubeConfig(c.Name, false) })
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.Kubeconfig), 0o700); err != nil {
		return err
	}
	return os.WriteFile(c.Kubeconfig, []byte(cfg), 0o600)
}

// EnsureKubeconfig makes sure the kubeconfig file of an existing cluster is
// present, for targets run against a kept cluster.
func (c *Cluster) EnsureKubeconfig(ctx context.Context) error {
	ok, err := c.Exists(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("cluster %s %w: create it, or keep one with E2E_KEEP_CLUSTER=1", c.Name, ErrMissing)
	}
	return c.writeKubeconfig(ctx)
}

// Delete removes the cluster and its kubeconfig; deleting a cluster that
// does not exist succeeds.
func (c *Cluster) Delete(ctx context.Context, w io.Writer) error {
	var err error
	// The first attempt goes straight to kind's delete (one listing, one
	// `docker rm -f`): a cancelled CI job has 10 s from the runner's
	// SIGINT to its SIGKILL, and each extra docker call costs up to a
	// second on a busy machine. `docker rm -f` of a node sometimes fails
	// while another container is torn down at the same time (seen with two
	// test clusters at once), or because a cgroup inside it was left
	// frozen (see thawNodes): the later attempts check that the engine
	// answers at all and thaw first.
	for attempt := 1; attempt <= 3; attempt++ {
		if attempt > 1 {
			// When the engine cannot even list clusters (Docker
			// unreachable), more attempts would only delay the report.
			if _, lerr := c.Exists(ctx); lerr != nil {
				return fmt.Errorf("cannot tell whether cluster %s exists: %w (deleting it: %v)", c.Name, lerr, runErrorDetail(err))
			}
			if n := c.thawNodes(ctx); n > 0 {
				fmt.Fprintf(w, "thawed %d frozen cgroups inside the nodes of %s (a container set up while the node was killed)\n", n, c.Name)
			}
		}
		_, err = withDeadline(ctx, 2*time.Minute, "deleting cluster "+c.Name, func() (struct{}, error) {
			return struct{}{}, c.provider.Delete(c.Name, c.Kubeconfig)
		})
		if err == nil || ctx.Err() != nil {
			break
		}
		fmt.Fprintf(w, "delete attempt %d: %v\n", attempt, runErrorDetail(err))
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		return runErrorDetail(err)
	}
	fmt.Fprintf(w, "deleted cluster %s\n", c.Name)
	return os.RemoveAll(filepath.Dir(c.Kubeconfig))
}

// runErrorDetail adds the output of a failed command kind ran (which kind's
// own message leaves out).
func runErrorDetail(err error) error {
	var re *kindexec.RunError
	if errors.As(err, &re) && len(re.Output) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(re.Output)))
	}
	return err
}

// CollectLogs writes kind's node logs into dir.
func (c *Cluster) CollectLogs(ctx context.Context, dir string) error {
	_, err := withDeadline(ctx, 2*time.Minute, "collecting node logs", func() (struct{}, error) {
		return struct{}{}, c.provider.CollectLogs(c.Name, dir)
	})
	return err
}

// Nodes lists the nodes that run workloads.
func (c *Cluster) Nodes(ctx context.Context) ([]nodes.Node, error) {
	return withDeadline(ctx, 30*time.Second, "listing nodes", func() ([]nodes.Node, error) { return c.provider.ListInternalNodes(c.Name) })
}

// List returns the names of the clusters the scope made, and of the
// clusters whose names have its prefix but that it did not make (no made
// record, though perhaps a kubeconfig of a run that used one): those are
// not its to touch.
func (s Scope) List(ctx context.Context) (ours, others []string, err error) {
	rt, err := runtime()
	if err != nil {
		return nil, nil, err
	}
	p := cluster.NewProvider(providerOption(rt))
	names, err := withDeadline(ctx, 30*time.Second, "listing kind clusters", p.List)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		if !strings.HasPrefix(n, s.Prefix()) {
			continue
		}
		if s.Made(n) {
			ours = append(ours, n)
		} else {
			others = append(others, n)
		}
	}
	return ours, others, nil
}

// PortsFree fails at once, naming the port and the service, when a host
// port the cluster would map is already taken.
func PortsFree(ports []topology.Port, service string) error {
	var errs []error
	for _, p := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.HostPort))
		if err != nil {
			errs = append(errs, fmt.Errorf("host port 127.0.0.1:%d, which service %s maps to its %s NodePort %d, is in use: stop what listens there (ss -ltnp 'sport = :%d') or delete the cluster that holds it", p.HostPort, service, p.Name, p.NodePort, p.HostPort))
			continue
		}
		l.Close()
	}
	return errors.Join(errs...)
}

// withDeadline runs a call that takes no context (kind's library) under a
// deadline. On expiry it returns at once; the call finishes in the
// background, its result dropped.
func withDeadline[T any](ctx context.Context, d time.Duration, what string, f func() (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		// f takes no context. What it started (kind's `docker ps`) ends
		// in milliseconds unless the engine hangs: give it a moment, so
		// that it does not outlive a run that is ending.
		t := time.NewTimer(deadlineGrace)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
		}
		var zero T
		return zero, fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

// deadlineGrace is how long withDeadline waits, once its context has
// ended, for the call it gave up on.
const deadlineGrace = 2 * time.Second

// ConfigureRegistry points every node's containerd at the local registry
// (E2E_REGISTRY=local; registry.Connect joins it to kind's network).
func (c *Cluster) ConfigureRegistry(ctx context.Context) error {
	ns, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, n := range ns {
		if err := registry.ConfigureNode(ctx, n); err != nil {
			return err
		}
	}
	return nil
}
