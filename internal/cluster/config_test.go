package cluster

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/testbed-dev/testbed/topology"
)

func TestKindConfigMergesTheShape(t *testing.T) {
	ports := []topology.Port{{Name: "web", NodePort: 30090, HostPort: 30990}}
	t.Run("default: one control-plane node with the ports and the patches", func(t *testing.T) {
		cfg, err := kindConfig(ports, false, "/state/p", nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Nodes) != 1 || cfg.Nodes[0].Role != v1alpha4.ControlPlaneRole {
			t.Fatalf("nodes %+v", cfg.Nodes)
		}
		checkControlPlane(t, cfg.Nodes[0], 30990)
	})
	t.Run("workers", func(t *testing.T) {
		cfg, err := kindConfig(ports, false, "/state/p", &topology.Cluster{Workers: 2}, false)
		if err != nil {
			t.Fatal(err)
		}
		roles := []v1alpha4.NodeRole{}
		for _, n := range cfg.Nodes {
			roles = append(roles, n.Role)
		}
		if len(roles) != 3 || roles[0] != v1alpha4.ControlPlaneRole || roles[1] != v1alpha4.WorkerRole || roles[2] != v1alpha4.WorkerRole {
			t.Fatalf("roles %v, want control-plane, worker, worker", roles)
		}
		checkControlPlane(t, cfg.Nodes[0], 30990)
		for _, w := range cfg.Nodes[1:] {
			if len(w.ExtraPortMappings) != 0 || len(w.ExtraMounts) != 0 {
				t.Errorf("a worker got %+v", w)
			}
		}
	})
	t.Run("a kind fragment: its nodes, mounts, gates and patches with testbed's", func(t *testing.T) {
		shape := &topology.Cluster{Kind: `kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
featureGates: {InPlacePodVerticalScaling: true}
networking: {podSubnet: 10.244.0.0/16}
containerdConfigPatches:
- |
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
kubeadmConfigPatches:
- |
  kind: ClusterConfiguration
  apiServer: {extraArgs: {v: "2"}}
nodes:
- role: worker
  extraMounts: [{hostPath: /tmp/sink, containerPath: /sink}]
- role: control-plane
  extraPortMappings: [{containerPort: 30500, hostPort: 30500}]
`}
		cfg, err := kindConfig(ports, true, "/state/p", shape, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Nodes) != 2 || cfg.Nodes[0].Role != v1alpha4.WorkerRole {
			t.Fatalf("nodes %+v", cfg.Nodes)
		}
		if m := cfg.Nodes[0].ExtraMounts; len(m) != 1 || m[0].ContainerPath != "/sink" {
			t.Errorf("the worker's mount: %+v", m)
		}
		cp := cfg.Nodes[1]
		checkControlPlane(t, cp, -1)
		if pm := cp.ExtraPortMappings; len(pm) != 2 || pm[0].ContainerPort != 30500 {
			t.Errorf("the fragment's own port mapping is lost: %+v", pm)
		}
		if !cfg.FeatureGates["InPlacePodVerticalScaling"] || cfg.Networking.PodSubnet != "10.244.0.0/16" || cfg.Networking.APIServerAddress != "127.0.0.1" {
			t.Errorf("gates %v, networking %+v", cfg.FeatureGates, cfg.Networking)
		}
		if n := len(cfg.KubeadmConfigPatches); n != 6 || cfg.KubeadmConfigPatches[0] != controlPlanePatch || !strings.Contains(cfg.KubeadmConfigPatches[n-1], `v: "2"`) {
			t.Errorf("kubeadm patches %q: testbed's first, then the fragment's", cfg.KubeadmConfigPatches)
		}
		if len(cfg.ContainerdConfigPatches) != 1 {
			t.Errorf("containerd patches %q", cfg.ContainerdConfigPatches)
		}
	})
	t.Run("a fragment without a control plane", func(t *testing.T) {
		_, err := kindConfig(ports, false, "/p", &topology.Cluster{Kind: "nodes: [{role: worker}]"}, false)
		if err == nil || !strings.Contains(err.Error(), "control-plane") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("an unknown field", func(t *testing.T) {
		_, err := kindConfig(ports, false, "/p", &topology.Cluster{Kind: "nodez: []"}, false)
		if err == nil || !strings.Contains(err.Error(), "nodez") {
			t.Errorf("err = %v", err)
		}
	})
}

func checkControlPlane(t *testing.T, n v1alpha4.Node, hostPort int32) {
	t.Helper()
	var mapped bool
	for _, pm := range n.ExtraPortMappings {
		if pm.ContainerPort == 30090 {
			mapped = pm.HostPort == hostPort && pm.ListenAddress == "127.0.0.1"
		}
	}
	if !mapped {
		t.Errorf("control plane %+v: NodePort 30090 is not on 127.0.0.1:%d", n.ExtraPortMappings, hostPort)
	}
	var patches bool
	for _, m := range n.ExtraMounts {
		patches = patches || (m.ContainerPath == kubeadmPatchesDir && m.HostPath == "/state/p")
	}
	if !patches {
		t.Errorf("control plane mounts %+v: no kubeadm patches", n.ExtraMounts)
	}
}

// TestStatePathsStayUnderTheCache: a scope or cluster name that is not one
// path element gets no state directory (and so nothing is removed outside
// the cache in its name).
func TestStatePathsStayUnderTheCache(t *testing.T) {
	for _, s := range []Scope{"../x", "x/../../..", "a/b", ".."} {
		if dir, err := s.Dir(); err == nil {
			t.Errorf("scope %q: state dir %s", s, dir)
		}
	}
	for _, name := range []string{"x/../../../../../any/dir", "..", "a/b", "../a"} {
		if dir, err := Scope("ok").StateDir(name); err == nil {
			t.Errorf("cluster %q: state dir %s", name, dir)
		}
	}
	if _, err := Scope("ok").StateDir("ok-web"); err != nil {
		t.Errorf("a valid name: %v", err)
	}
}

// TestKindFragmentPortsStayOnTheHost: a fragment's extraPortMappings
// without listenAddress (kind binds those on every interface) get
// 127.0.0.1; a given loopback address is kept.
func TestKindFragmentPortsStayOnTheHost(t *testing.T) {
	shape := &topology.Cluster{Kind: `nodes:
- role: control-plane
  extraPortMappings: [{containerPort: 80, hostPort: 18080}, {containerPort: 81, hostPort: 18081, listenAddress: "::1"}]
- role: worker
  extraPortMappings: [{containerPort: 82, hostPort: 18082}]
`}
	cfg, err := kindConfig(nil, false, "/p", shape, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]string{80: "127.0.0.1", 81: "::1", 82: "127.0.0.1"}
	for _, n := range cfg.Nodes {
		for _, m := range n.ExtraPortMappings {
			if w, ok := want[m.ContainerPort]; ok && m.ListenAddress != w {
				t.Errorf("containerPort %d listens on %q, want %s", m.ContainerPort, m.ListenAddress, w)
			}
		}
	}
	if again, _ := shape.KindConfig(); again.Nodes[0].ExtraPortMappings[0].ListenAddress != "" {
		t.Error("the topology's own fragment was changed")
	}
}

// TestOnlyTheMadeRecordSaysMade: a state dir with a kubeconfig (what a run
// that only used a cluster writes) is not a record that testbed made it;
// RecordMade is, and Delete's removal of the state dir takes it away.
func TestOnlyTheMadeRecordSaysMade(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	s := Scope("ok")
	dir, err := s.StateDir("ok-web")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kubeconfig"), []byte("used"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s.Made("ok-web") {
		t.Error("a state dir with only a kubeconfig counts as made")
	}
	if err := s.RecordMade("ok-web"); err != nil {
		t.Fatal(err)
	}
	if !s.Made("ok-web") {
		t.Error("RecordMade's record is not seen")
	}
	if s.Made("ok-api") {
		t.Error("another cluster of the scope counts as made")
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if s.Made("ok-web") {
		t.Error("made after its state dir was removed")
	}
}

// TestLockMakesASecondCreatorWait: while one holder has a cluster's lock
// (a run between its existence check and kind's return), another waits,
// says so, and gets the lock once it is released; a holder that gives up
// (ctx) gets an error, not the lock. flock locks belong to an open file,
// so two opens in one process contend as two processes do.
func TestLockMakesASecondCreatorWait(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	s := Scope("ok")
	unlock, err := s.lock(context.Background(), "ok-web", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if u, err := s.lock(ctx, "ok-web", io.Discard); err == nil {
		u()
		t.Fatal("a second holder got the lock while the first held it")
	}
	other, err := s.lock(context.Background(), "ok-api", io.Discard)
	if err != nil {
		t.Fatalf("another cluster's lock: %v", err)
	}
	other()
	got := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		u, err := s.lock(context.Background(), "ok-web", &out)
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-got:
		t.Fatalf("the second holder did not wait: %v", err)
	default:
	}
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("after the release: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second holder never got the released lock")
	}
	if !strings.Contains(out.String(), "waiting for another testbed process") {
		t.Errorf("the waiting holder did not say why it waits: %q", out.String())
	}
	if _, err := s.lock(context.Background(), "../escape", io.Discard); err == nil {
		t.Error("a lock file outside the scope's directory")
	}
}

// TestTheSharedCredentialNeedsOneControlPlane: super-admin.conf is made by
// kubeadm init only, so a joined control-plane node would have none for
// its controller manager.
func TestTheSharedCredentialNeedsOneControlPlane(t *testing.T) {
	for _, c := range []struct {
		shape *topology.Cluster
		want  bool
	}{
		{nil, true},
		{&topology.Cluster{Workers: 2}, true},
		{&topology.Cluster{Kind: "nodes: [{role: control-plane}, {}, {role: worker}]"}, false},
		{&topology.Cluster{Kind: "nodes: [{role: worker}, {role: control-plane}]"}, true},
	} {
		cfg, err := kindConfig(nil, false, "/p", c.shape, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := oneControlPlane(cfg); got != c.want {
			t.Errorf("shape %+v: oneControlPlane %v, want %v", c.shape, got, c.want)
		}
	}
}
