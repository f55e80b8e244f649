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

	"golang.org/x/sync/errgroup"
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

// MarkWarm records the cluster as warm, with the images its nodes hold,
// and pauses its nodes.
func (c *Cluster) MarkWarm(ctx context.Context, service, shape string) error {
	held, err := c.ImageIDs(ctx)
	if err != nil {
		return err
	}
	if err := c.scope.RecordWarm(Warm{Name: c.Name, Service: service, Shape: shape, Made: time.Now(), Images: held}); err != nil {
		return err
	}
	return c.Pause(ctx)
}

// Pause stops each node's kubelet, then pauses the nodes; Unpause resumes
// them and their kubelets start again. A kubelet frozen with its node wakes
// with its last check of the container runtime older than its 30 s limit,
// and its first node status then often says "container runtime is down"
// (2 of 5 unpauses here): the node is NotReady for a status period, the
// scheduler turns new pods away, and the node lifecycle controller marks
// every pod of the node NotReady. A kubelet that starts checks the runtime
// before its first status (2 of 2 such unpauses by hand clean).
//
// The kubelet is started again by the node's own systemd, not by an exec
// after the unpause: Pause installs a path unit that starts kubelet.service
// when kubeletWake exists, and Unpause copies that file into each node
// while it is still paused (an archive copy through the engine's API, no
// process in the node), so systemd starts the kubelet the moment it thaws.
// An exec is a runc call: 0.7 s on this machine, on the claim's critical
// path.
func (c *Cluster) Pause(ctx context.Context) error {
	ns, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	unit, err := os.CreateTemp("", "testbed-kubelet-wake-unit-")
	if err != nil {
		return err
	}
	defer os.Remove(unit.Name())
	_, err = unit.WriteString(kubeletWakeUnit)
	if err := errors.Join(err, unit.Close()); err != nil {
		return err
	}
	if err := c.copyToNodes(ctx, ns, unit.Name(), kubeletWakeUnitPath); err != nil {
		return err
	}
	// No wake file while the kubelet stops (or the path unit would start
	// it again); the unit is new to systemd, so start loads it.
	err = eachNode(ctx, ns, time.Minute, func(ctx context.Context, n nodes.Node) error {
		for _, cmd := range [][]string{{"rm", "-f", kubeletWake}, {"systemctl", "start", "testbed-kubelet-wake.path"}, {"systemctl", "stop", "kubelet"}} {
			var out bytes.Buffer
			if err := n.CommandContext(ctx, cmd[0], cmd[1:]...).SetStdout(&out).SetStderr(&out).Run(); err != nil {
				return fmt.Errorf("%s on %s: %w: %s", strings.Join(cmd, " "), n, err, strings.TrimSpace(out.String()))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.nodesDo(ctx, ns, "pause")
}

// PauseProtocol names how Pause and Unpause hand the kubelet over: a warm
// cluster paused by another protocol is not one this testbed can wake.
const PauseProtocol = "kubelet-wake-path/2"

const (
	// kubeletWake is the file whose existence starts the kubelet: on the
	// node's /var volume, so that the copy lands on the file system
	// systemd watches whatever the engine's storage driver.
	kubeletWake         = "/var/lib/testbed-kubelet-wake"
	kubeletWakeUnitPath = "/etc/systemd/system/testbed-kubelet-wake.path"
	kubeletWakeUnit     = "[Unit]\nDescription=start the kubelet when testbed unpauses the node\n[Path]\nPathExists=" + kubeletWake + "\nUnit=kubelet.service\n"
)

// Unpause resumes the cluster's paused nodes; their kubelets start as they
// thaw (see Pause).
func (c *Cluster) Unpause(ctx context.Context) error {
	ns, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "testbed-kubelet-wake-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Close(); err != nil {
		return err
	}
	if err := c.copyToNodes(ctx, ns, f.Name(), kubeletWake); err != nil {
		return err
	}
	return c.nodesDo(ctx, ns, "unpause")
}

// copyToNodes copies a host file to path on the nodes through the engine's
// API (docker cp: no process runs in the node, so it works on a paused one
// too).
func (c *Cluster) copyToNodes(ctx context.Context, ns []nodes.Node, file, path string) error {
	return eachNode(ctx, ns, 30*time.Second, func(ctx context.Context, n nodes.Node) error {
		var out bytes.Buffer
		if err := kindexec.CommandContext(ctx, c.runtime, "cp", file, n.String()+":"+path).SetStdout(&out).SetStderr(&out).Run(); err != nil {
			return fmt.Errorf("%s cp %s:%s: %w: %s", c.runtime, n, path, err, strings.TrimSpace(out.String()))
		}
		return nil
	})
}

// eachNode runs fn for every node at once, within timeout; the first error
// cancels the others.
func eachNode(ctx context.Context, ns []nodes.Node, timeout time.Duration, fn func(context.Context, nodes.Node) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	for _, n := range ns {
		g.Go(func() error { return fn(gctx, n) })
	}
	return g.Wait()
}

// RecordWarm writes a warm cluster's record into its state dir.
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
	return os.WriteFile(filepath.Join(dir, warmFile), b, 0o600)
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
		_, err = os.Stat(filepath.Join(dir, e.Name(), claimFile))
		w.Claimed = err == nil
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b Warm) int { return a.Made.Compare(b.Made) })
	return out, nil
}

// ErrClaimed is returned by Claim when another process claimed it first.
var ErrClaimed = errors.New("already claimed")

// Claim takes the warm cluster for this process: the claim file is
// created with O_EXCL, so of two processes claiming at once exactly one
// succeeds; the other gets ErrClaimed.
func (s Scope) Claim(name string) (*Cluster, error) {
	c, err := s.Open(name, nil)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(filepath.Dir(c.Kubeconfig), claimFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("warm cluster %s: %w", name, ErrClaimed)
	}
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
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
