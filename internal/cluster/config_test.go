package cluster

import (
	"strings"
	"testing"

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
