package cluster

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestThawUnderThawsFrozenChildrenNotTheNodeItself(t *testing.T) {
	root := t.TempDir()
	write := func(rel, file, v string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, rel, file), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(rel, file string) string {
		b, _ := os.ReadFile(filepath.Join(root, rel, file))
		return string(b)
	}
	write("node", "freezer.state", "FROZEN") // a paused warm node: left as it is
	write("node/kubelet.slice/pod-a/cri-containerd-1.scope", "freezer.state", "FROZEN")
	write("node/kubelet.slice/pod-b/cri-containerd-2.scope", "freezer.state", "THAWED")
	write("node/kubelet.slice/pod-c/cri-containerd-3.scope", "cgroup.freeze", "1")
	if n := thawUnder(filepath.Join(root, "node")); n != 2 {
		t.Errorf("thawed %d, want 2", n)
	}
	if got := read("node/kubelet.slice/pod-a/cri-containerd-1.scope", "freezer.state"); got != "THAWED" {
		t.Errorf("v1 child: %q, want THAWED", got)
	}
	if got := read("node/kubelet.slice/pod-c/cri-containerd-3.scope", "cgroup.freeze"); got != "0" {
		t.Errorf("v2 child: %q, want 0", got)
	}
	if got := read("node", "freezer.state"); got != "FROZEN\n" {
		t.Errorf("the node's own cgroup: %q, want it left FROZEN", got)
	}
}

func TestCgroupDirsFindsTheFreezerOfTheContainerOnly(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cgroup")
	id := "9ddd2f5a50b6"
	os.WriteFile(f, []byte("9:name=systemd:/docker/"+id+"\n6:freezer:/docker/"+id+"\n5:devices:/docker/"+id+"\n0::/docker/"+id+"\n"), 0o644)
	got := cgroupDirs(f, "/sys/fs/cgroup", id)
	want := []string{"/sys/fs/cgroup/freezer/docker/" + id, "/sys/fs/cgroup/docker/" + id}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := cgroupDirs(f, "/sys/fs/cgroup", "another"); len(got) != 0 {
		t.Errorf("a process of another container: got %v, want none", got)
	}
}

// A node whose /proc cgroup file names no freezer dir of its own (v1
// hierarchies read "/") still has its engine cgroup found.
func TestFreezerDirsFindsTheEngineCgroup(t *testing.T) {
	root, id := t.TempDir(), "d81d3b017e54"
	if err := os.MkdirAll(filepath.Join(root, "freezer", "docker", id, "kubelet.slice"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "cgroup")
	if err := os.WriteFile(f, []byte("6:freezer:/\n0::/docker/"+id+"/init.scope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := freezerDirs(f, root, id)
	if !slices.Contains(got, filepath.Join(root, "freezer", "docker", id)) {
		t.Errorf("freezerDirs = %v: no freezer/docker/%s", got, id)
	}
}
