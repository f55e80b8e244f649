package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/cluster/nodes"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// nodePath is the PATH of a command entered into a node: the node's own,
// not the host's (whose environment could also carry CONTAINERD_ADDRESS
// or the like into ctr).
const nodePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// nodeCommand is a short command (ctr, crictl, containerd) inside node n.
// Where it can, it enters the node's mount and PID namespaces with nsenter:
// 3–4 ms here before the command runs, against 0.2–0.3 s for the engine's
// exec (kind's node command, docker exec), which is on the critical path
// of every image load. It can when the nodes run in Docker, testbed runs as
// root and the engine runs on this host: the node's init is then a process
// here whose root is the node's filesystem. Anywhere else (podman, a
// remote engine, not root, no nsenter, a paused node) it is kind's node
// command. entered says which one it is.
func (c *Cluster) nodeCommand(ctx context.Context, n nodes.Node, command string, args ...string) (cmd kindexec.Cmd, entered bool) {
	if pid := c.nodePID(ctx, n.String()); pid > 0 {
		if nsenter, err := exec.LookPath("nsenter"); err == nil {
			full := append([]string{"--target", strconv.Itoa(pid), "--mount", "--pid", "--", command}, args...)
			return kindexec.CommandContext(ctx, nsenter, full...).SetEnv(nodePath), true
		}
	}
	return n.CommandContext(ctx, command, args...), false
}

// nodePID is the host PID of the node container's init, 0 when testbed
// cannot enter it from here. It asks the engine each time (26 ms here): a
// node paused or recreated since would otherwise be entered.
func (c *Cluster) nodePID(ctx context.Context, name string) int {
	if c.runtime != "docker" || os.Geteuid() != 0 {
		return 0
	}
	_, pid, paused, err := c.nodeState(ctx, name)
	if err != nil || paused || !isNode(pid, name) {
		return 0 // a paused node's containerd would not answer
	}
	return pid
}

// nodeState is what the engine says of the node container name: its ID,
// the host PID of its init (0 when it is not running) and whether it is
// paused.
func (c *Cluster) nodeState(ctx context.Context, name string) (id string, pid int, paused bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := kindexec.CommandContext(ctx, c.runtime, "inspect", "-f", "{{.Id}} {{.State.Pid}} {{.State.Paused}}", name).SetStdout(&out).Run(); err != nil {
		return "", 0, false, err
	}
	f := strings.Fields(out.String())
	if len(f) != 3 {
		return "", 0, false, fmt.Errorf("%s inspect %s: %q", c.runtime, name, out.String())
	}
	if pid, err = strconv.Atoi(f[1]); err != nil {
		return "", 0, false, fmt.Errorf("%s inspect %s: pid %q", c.runtime, name, f[1])
	}
	return f[0], pid, f[2] == "true", nil
}

// isNode reports whether host process pid is the init of the kind node
// name: its root's /etc/hostname is the node's name (kind names the host
// after the node). A PID of another host (a remote engine's) is not.
func isNode(pid int, name string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/root/etc/hostname")
	return err == nil && strings.TrimSpace(string(b)) == name
}
