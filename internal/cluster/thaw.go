package cluster

import (
	"bufio"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// thawNodes thaws the cgroups inside the cluster's node containers that
// are left frozen, and returns how many it thawed.
//
// runc freezes a container's cgroup for a moment while it sets the
// container up (cgroup v1 device rules). A node deleted at that moment
// (Ctrl-C while a pod starts: seen once in the fault suite's SIGINT at
// 30.7 s) kills that runc and leaves the pod's cgroup FROZEN inside the
// node; its frozen process cannot die, so `docker rm -f` of the node fails
// ("tried to kill container, but did not receive an exit event") every
// time, and the node stays. Thawing lets the kill finish.
//
// It reads the node's cgroups from /proc of its init process, so it only
// works where testbed runs beside the engine as root (CI, a Linux host);
// elsewhere it finds nothing and does nothing. The node's own cgroup is
// left as it is (a paused warm node is frozen on purpose).
func (c *Cluster) thawNodes(ctx context.Context) int {
	ns, err := c.Nodes(ctx)
	if err != nil {
		return 0
	}
	thawed := 0
	for _, n := range ns {
		id, pid, paused, err := c.nodeState(ctx, n.String())
		// A paused node is frozen as a whole, on purpose: the engine
		// deletes it as such, and its children only read FROZEN.
		if err != nil || pid == 0 || paused {
			continue
		}
		for _, dir := range freezerDirs("/proc/"+strconv.Itoa(pid)+"/cgroup", "/sys/fs/cgroup", id) {
			thawed += thawUnder(dir)
		}
	}
	return thawed
}

// cgroupDirs returns the freezer directories (cgroup v1's freezer
// hierarchy, or the unified one of v2) of the process whose cgroup file is
// at path, under the cgroup mount root; only those that name the container
// id, so that a process of another PID namespace is never mistaken for it.
func cgroupDirs(path, root, id string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || !strings.Contains(parts[2], id) {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			dirs = append(dirs, filepath.Join(root, parts[2]))
		case slices.Contains(strings.Split(parts[1], ","), "freezer"):
			dirs = append(dirs, filepath.Join(root, "freezer", parts[2]))
		}
	}
	return dirs
}

// freezerDirs is cgroupDirs plus the engine's own cgroup of the container
// where it exists: Docker's cgroupfs layout (freezer/docker/<id>, v1) or
// its systemd one. A node's init can read "/" for its v1 hierarchies (seen
// in CI: "freezer:/", with the frozen pod cgroup under
// freezer/docker/<id>/kubelet.slice), and its unified path names its own
// init.scope leaf, below which no pod is: from /proc alone such a node has
// no freezer dir to thaw.
func freezerDirs(path, root, id string) []string {
	dirs := cgroupDirs(path, root, id)
	for _, d := range []string{
		filepath.Join(root, "freezer", "docker", id),
		filepath.Join(root, "freezer", "system.slice", "docker-"+id+".scope"),
		filepath.Join(root, "docker", id),
		filepath.Join(root, "system.slice", "docker-"+id+".scope"),
	} {
		if _, err := os.Stat(d); err == nil && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// thawUnder thaws every frozen cgroup below dir (not dir itself): v1's
// freezer.state FROZEN becomes THAWED, v2's cgroup.freeze 1 becomes 0.
func thawUnder(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || path == dir {
			return nil
		}
		if b, err := os.ReadFile(filepath.Join(path, "freezer.state")); err == nil && strings.TrimSpace(string(b)) == "FROZEN" {
			if os.WriteFile(filepath.Join(path, "freezer.state"), []byte("THAWED"), 0) == nil {
				n++
			}
		}
		if b, err := os.ReadFile(filepath.Join(path, "cgroup.freeze")); err == nil && strings.TrimSpace(string(b)) == "1" {
			if os.WriteFile(filepath.Join(path, "cgroup.freeze"), []byte("0"), 0) == nil {
				n++
			}
		}
		return nil
	})
	return n
}
