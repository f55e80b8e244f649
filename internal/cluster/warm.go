package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/cluster/constants"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// A warm cluster is made ahead of a run (cluster, images, every component
// Ready), then its node is paused; a run claims it, unpauses it and uses
// it once, then deletes it. Its record lives in the cluster's state dir.
const (
	warmFile  = "warm.json"
	claimFile = "claimed"
	warmInfix = "-warm-"
)

// Warm is the record of a warm cluster.
type Warm struct {
	Name    string `json:"name"`
	Service string `json:"service"`
	// Shape hashes what the cluster was made from and a run cannot change
	// on it: the node image's ID, the kind config, the topology's
	// namespace. A run uses only a warm cluster of its own shape.
	Shape string    `json:"shape"`
	Made  time.Time `json:"made"`
	// Images maps each image reference the nodes held when they were
	// paused to its ID (as ImageIDs): a claim need not ask the waking
	// nodes again.
	Images map[string]string `json:"images,omitempty"`
	// Claimed is set when a run has claimed it (it is in use).
	Claimed bool `json:"-"`
	// Abandoned is set when the run that claimed it has ended without
	// deleting it (killed): nothing uses it, and cluster:prune deletes it.
	Abandoned bool `json:"-"`
}

// WarmName is a new name for a warm cluster of service.
func (s Scope) WarmName(service string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return s.NameFor(service) + warmInfix + hex.EncodeToString(b)
}

// IsWarmName reports whether name is a warm cluster's name, and of which
// service.
func (s Scope) IsWarmName(name string) (service string, ok bool) {
	rest, ok := strings.CutPrefix(name, s.Prefix())
	if !ok {
		return "", false
	}
	i := strings.LastIndex(rest, warmInfix)
	if i < 0 {
		return "", false
	}
	return rest[:i], true
}

// MarkWarm pauses the cluster's nodes, then records it as warm, with the
// images its nodes held: a run can claim it only once it is paused (the
// pause restarts the controller manager first and can take minutes; a run
// that claimed it before would find it "not paused" and, as its maker,
// delete it under the warmer).
func (c *Cluster) MarkWarm(ctx context.Context, service, shape string) error {
	held, err := c.ImageIDs(ctx)
	if err != nil {
		return err
	}
	w := Warm{Name: c.Name, Service: service, Shape: shape, Made: time.Now(), Images: held}
	return c.scope.publishWarm(w, func() error { return c.Pause(ctx) })
}

// publishWarm runs pause, then writes the warm record when it succeeded.
func (s Scope) publishWarm(w Warm, pause func() error) error {
	if err := pause(); err != nil {
		return err
	}
	return s.RecordWarm(w)
}

// Pause pauses the cluster's nodes, their kubelets frozen with them;
// Unpause resumes them. Before the first pause it makes the controller
// manager run without its node lifecycle controller (see
// withoutNodeLifecycle).
//
// The kubelet is not stopped across the pause, because a kubelet that
// restarts writes every container with a readiness probe unready until its
// first probe passes (Kubernetes ≤ 1.34; KEP-4781 keeps the status from
// 1.35 on). Each such pod leaves its Services for a moment, and the
// services whose readiness asks them follow a few seconds later. Measured
// here on gateway's warm cluster: its host port was dead from 6.05 s to
// 7.68 s after the unpause, its /readyz failing on datastorage from 4.1 s.
// With the kubelet frozen instead, in 8 wakes no pod's readiness changed
// and /readyz answered from 0.2–0.5 s on.
//
// A kubelet frozen with its node wakes with its last check of the
// container runtime older than its 30 s limit, and its first node status
// then often says "container runtime is down" (3 of 4 wakes here): the
// node reports NotReady until its next status. Two settings keep that
// harmless: the kubelet computes its status every second
// (kubeletStatusPatch, every cluster), so it lasts about a second, and
// without the node lifecycle controller nothing acts on it (no pod marked
// NotReady, no taint).
func (c *Cluster) Pause(ctx context.Context) error {
	ns, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range ns {
		if role, err := n.Role(); err == nil && role == constants.ControlPlaneNodeRoleValue {
			if err := c.withoutNodeLifecycle(ctx, n); err != nil {
				return err
			}
		}
	}
	return c.nodesDo(ctx, ns, "pause")
}

// PauseProtocol names how Pause and Unpause treat the nodes: a warm
// cluster paused by another protocol is not one this testbed can wake.
const PauseProtocol = "frozen-kubelet/3"

// kcmManifest is kube-controller-manager's static pod manifest on a
// control-plane node (kubeadm's).
const kcmManifest = "/etc/kubernetes/manifests/kube-controller-manager.yaml"

// noNodeLifecycle is what --controllers gets to disable the node lifecycle
// controller.
const noNodeLifecycle = "-node-lifecycle-controller"

// withoutNodeLifecycle restarts node n's kube-controller-manager without
// the node lifecycle controller, and returns once the new one is healthy;
// a controller manager already without it is left as it is.
//
// That controller marks every pod of a node NotReady, and taints the node
// against new pods, when the node reports NotReady, as a kubelet frozen
// with its node can for a second after the unpause (see Pause). It
// cannot be left out at creation: the API server taints every new node
// not-ready, and this controller is what lifts the taint. A warm cluster
// is created with it and runs without it from its pause on: nodes that
// fail during a run are not tainted nor their pods evicted (with a node
// grace period of an hour, every testbed cluster already waits that long).
func (c *Cluster) withoutNodeLifecycle(ctx context.Context, n nodes.Node) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	manifest, err := nodeOutput(ctx, n, "cat", kcmManifest)
	if err != nil {
		return err
	}
	edited, err := disableController(manifest, noNodeLifecycle)
	if err != nil || edited == manifest {
		return err
	}
	old, err := nodeOutput(ctx, n, "crictl", "ps", "-q", "--name", "kube-controller-manager", "--state", "Running")
	if err != nil {
		return err
	}
	// Written beside the manifest, then renamed over it: the kubelet never
	// reads half a file.
	staged := "/etc/kubernetes/testbed-kube-controller-manager.yaml"
	var errOut bytes.Buffer
	if err := n.CommandContext(ctx, "cp", "/dev/stdin", staged).SetStdin(strings.NewReader(edited)).SetStderr(&errOut).Run(); err != nil {
		return fmt.Errorf("writing %s on %s: %w: %s", staged, n, err, strings.TrimSpace(errOut.String()))
	}
	if _, err := nodeOutput(ctx, n, "mv", staged, kcmManifest); err != nil {
		return err
	}
	for {
		now, err := nodeOutput(ctx, n, "crictl", "ps", "-q", "--name", "kube-controller-manager", "--state", "Running")
		if err == nil && now != "" && now != old {
			if h, err := nodeOutput(ctx, n, "curl", "-fsk", "--max-time", "2", "https://127.0.0.1:10257/healthz"); err == nil && h == "ok" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-controller-manager on %s did not come back healthy without the node lifecycle controller (docker exec %s crictl ps -a): %w", n, n, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// disableController adds -name to the --controllers flag of a controller
// manager's manifest (kubeadm writes one), unless it is already there.
func disableController(manifest, disable string) (string, error) {
	lines := strings.Split(manifest, "\n")
	for i, l := range lines {
		before, list, ok := strings.Cut(l, "--controllers=")
		if !ok {
			continue
		}
		if slices.Contains(strings.Split(list, ","), disable) {
			return manifest, nil
		}
		lines[i] = before + "--controllers=" + list + "," + disable
		return strings.Join(lines, "\n"), nil
	}
	return "", errors.New("kube-controller-manager's manifest has no --controllers flag to disable " + strings.TrimPrefix(disable, "-") + " in")
}

// nodeOutput runs a command in node n and returns its trimmed output.
func nodeOutput(ctx context.Context, n nodes.Node, name string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	if err := n.CommandContext(ctx, name, args...).SetStdout(&out).SetStderr(&errOut).Run(); err != nil {
		return "", fmt.Errorf("%s %s on %s: %w: %s", name, strings.Join(args, " "), n, err, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// Unpause resumes the cluster's paused nodes.
func (c *Cluster) Unpause(ctx context.Context) error {
	ns, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	return c.nodesDo(ctx, ns, "unpause")
}

// RecordWarm writes a warm cluster's record into its state dir, whole or
// not at all (a temporary file renamed over it): a reader never sees half
// of it.
func (s Scope) RecordWarm(w Warm) error {
	dir, err := s.StateDir(w.Name)
	if err != nil {
		return err
	}
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+warmFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, warmFile))
}

// nodesDo runs the engine's verb (pause, unpause) on the nodes, in one call.
func (c *Cluster) nodesDo(ctx context.Context, ns []nodes.Node, verb string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	args := []string{verb}
	for _, n := range ns {
		args = append(args, n.String())
	}
	// runc can fail to freeze a busy container ("unable to freeze": a
	// process of the node was mid-fork; seen when two clusters paused at
	// once): try again a few times.
	for attempt := 1; ; attempt++ {
		var out bytes.Buffer
		err := kindexec.CommandContext(ctx, c.runtime, args...).SetStdout(&out).SetStderr(&out).Run()
		if err == nil {
			return nil
		}
		if attempt == 5 || ctx.Err() != nil {
			return fmt.Errorf("%s %s %s (%d attempts): %w: %s", c.runtime, verb, c.Name, attempt, err, strings.TrimSpace(out.String()))
		}
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
	}
}

// ListWarm lists the warm clusters of service ("" for every service),
// oldest first, claimed ones included.
func (s Scope) ListWarm(service string) ([]Warm, error) {
	dir, err := s.Dir()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Warm
	for _, e := range entries {
		svc, ok := s.IsWarmName(e.Name())
		if !ok || (service != "" && svc != service) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), warmFile))
		if err != nil {
			continue // being made, or being deleted
		}
		var w Warm
		if json.Unmarshal(b, &w) != nil || w.Name != e.Name() {
			continue
		}
		h, claimed := claimHolder(filepath.Join(dir, e.Name()))
		w.Claimed = claimed
		w.Abandoned = claimed && h.Pid != 0 && !h.Alive()
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b Warm) int { return a.Made.Compare(b.Made) })
	return out, nil
}

// ErrClaimed is returned by Claim when another process claimed it first.
var ErrClaimed = errors.New("already claimed")

// Claim takes the warm cluster for this process: the claim file (who
// claimed it, see Holder) is created with O_EXCL, so of two processes
// claiming at once exactly one succeeds; the other gets ErrClaimed. A
// cluster whose state dir has gone (discarded or pruned by another
// process since it was listed) is claimed by another too.
func (s Scope) Claim(name string) (*Cluster, error) {
	c, err := s.Open(name, nil)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(filepath.Dir(c.Kubeconfig), claimFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) || errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("warm cluster %s: %w", name, ErrClaimed)
	}
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(Self().String() + "\n")
	return c, errors.Join(err, f.Close())
}

// HostPorts maps each node port published on the control-plane node to
// its port on the host: a warm cluster's host ports are chosen by the
// engine, so that warm clusters of one service and its fresh cluster
// never compete for a port.
func (c *Cluster) HostPorts(ctx context.Context) (map[int]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := kindexec.Output(kindexec.CommandContext(ctx, c.runtime, "port", c.Name+"-control-plane"))
	if err != nil {
		return nil, fmt.Errorf("%s port %s-control-plane: %w", c.runtime, c.Name, err)
	}
	ports := map[int]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// 30080/tcp -> 127.0.0.1:32771
		from, to, ok := strings.Cut(l, " -> ")
		if !ok {
			continue
		}
		np, err1 := strconv.Atoi(strings.TrimSuffix(from, "/tcp"))
		_, hp, _ := strings.Cut(to, ":")
		hpn, err2 := strconv.Atoi(hp)
		if err1 == nil && err2 == nil {
			ports[np] = hpn
		}
	}
	return ports, nil
}
