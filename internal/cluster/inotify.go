package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// inotifyPerNode is about how many inotify instances one kind node's
// processes hold (kubelet, containerd, the control plane, CoreDNS): 25–30
// counted here. A paused node keeps its own.
const inotifyPerNode = 30

// InotifyShort says, when the host's inotify instances are too few for
// nodes more kind nodes, how many are in use and what to do; "" when there
// is room or it cannot tell. Without room a node starts but its components
// fail with "too many open files" (kind's known issue), which shows as
// CoreDNS never getting Ready. The instances are counted per user, and
// node processes run as root: only root sees them all, so only root
// counts (an fd duplicated or inherited counts twice: an overestimate).
func InotifyShort(nodes int) string {
	if os.Geteuid() != 0 {
		return ""
	}
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_user_instances")
	if err != nil {
		return ""
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || limit <= 0 {
		return ""
	}
	used := 0
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && l == "anon_inode:inotify" {
			used++
		}
	}
	if used+nodes*inotifyPerNode <= limit {
		return ""
	}
	return fmt.Sprintf("about %d of this host's %d inotify instances (fs.inotify.max_user_instances) are in use, and a kind node needs about %d: "+
		"its components may fail with \"too many open files\" (kind's known issue; paused warm clusters keep theirs). "+
		"Raise the limits (sudo sysctl -w fs.inotify.max_user_instances=1024 fs.inotify.max_user_watches=524288) or delete clusters you do not need (cluster:list, cluster:prune)",
		used, limit, inotifyPerNode)
}
