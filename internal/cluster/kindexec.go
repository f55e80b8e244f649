package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// kind runs each of its commands on a node (kubeadm init, kubectl apply of
// the CNI and the StorageClass, cat of a manifest, ...) with `docker exec`:
// 0.2–0.25 s each on this engine before the command starts, 12 of them in
// a create, and kind has no hook for them (its exec.DefaultCmder is a
// concrete type). While kind creates a cluster, PATH therefore starts with
// a directory whose `docker` is nodeExecShim: it runs kind's node
// commands by nsenter (0.03 s), in every namespace of the node, with the
// environment docker exec gives, and hands anything else to the real
// docker unchanged. Testbed's own node commands enter the node in Go
// (nodeCommand), without PATH.
//
// The shim enters only what is a kind node here: the engine says the
// container runs, is not paused and has kind's cluster label, and its
// init's /etc/hostname is the container's name (the engine's PIDs are
// this host's), and nsenter can enter it (a root without that right gets
// the engine's exec). What differs from docker exec: the command stays in
// testbed's cgroup, so the node's cgroup does not count its CPU and
// memory.
const nodeExecShim = `#!/bin/bash
# Written by testbed (internal/cluster/kindexec.go): kind's
# "docker exec --privileged [-i] [-e K=V]... NODE CMD ARG..." into a
# kind node on this host, by nsenter; anything else is real docker's.
real=@REAL@
[[ $1 == exec && $2 == --privileged ]] || exec "$real" "$@"
args=("$@")
set -- "${args[@]:2}"
stdin=0
if [[ $1 == -i ]]; then stdin=1; shift; fi
extra=()
while [[ $1 == -e && $# -ge 2 ]]; do extra+=("$2"); shift 2; done
node=$1
shift
[[ $# -ge 1 && -n $node && $node != -* ]] || exec "$real" "${args[@]}"
mapfile -t info < <("$real" inspect --type container -f '{{.State.Pid}} {{.State.Paused}} {{index .Config.Labels "io.x-k8s.kind.cluster"}}{{range .Config.Env}}{{"\n"}}{{.}}{{end}}' "$node" 2>/dev/null)
read -r pid paused cluster <<<"${info[0]}"
if [[ ! $pid =~ ^[1-9][0-9]*$ || $paused != false || -z $cluster ]] ||
  [[ $(cat "/proc/$pid/root/etc/hostname" 2>/dev/null) != "$node" ]]; then
  exec "$real" "${args[@]}"
fi
env=(HOME=/root "HOSTNAME=$node")
for e in "${info[@]:1}"; do [[ $e == *=* ]] && env+=("$e"); done
enter=(nsenter --target "$pid" --mount --uts --ipc --net --pid --cgroup --)
# Root without the right to enter (a user namespace, a seccomp filter):
# the engine's exec then.
# The node's own env (a host PATH is not looked up in the node).
"${enter[@]}" /usr/bin/env true </dev/null >/dev/null 2>&1 || exec "$real" "${args[@]}"
run=("${enter[@]}" /usr/bin/env -i "${env[@]}" "${extra[@]}" "$@")
if ((stdin)); then exec "${run[@]}"; fi
exec "${run[@]}" </dev/null
`

// shimPath is the PATH override while kinds create clusters: users counts
// the creates under way (e2e:all makes two at once), old is PATH before
// the first.
var shimPath struct {
	sync.Mutex
	users int
	old   string
}

// fastNodeExec puts nodeExecShim first on PATH until the returned func is
// called, when nodes run in Docker on this host and testbed is root (what
// nsenter needs); otherwise, or if the shim cannot be written, it changes
// nothing. The restore func may be called more than once.
func fastNodeExec(runtime string) (restore func()) {
	nothing := func() {}
	if runtime != "docker" || os.Geteuid() != 0 {
		return nothing
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		return nothing
	}
	if _, err := exec.LookPath("bash"); err != nil {
		return nothing
	}
	shimPath.Lock()
	defer shimPath.Unlock()
	if shimPath.users == 0 {
		// PATH is the caller's here: no create has put the shim on it.
		real, err := exec.LookPath("docker")
		if err != nil {
			return nothing
		}
		base, err := os.UserCacheDir()
		if err != nil {
			return nothing
		}
		dir, err := writeNodeExecShim(filepath.Join(base, "testbed", "_bin"), real)
		if err != nil {
			return nothing
		}
		shimPath.old = os.Getenv("PATH")
		os.Setenv("PATH", dir+string(os.PathListSeparator)+shimPath.old)
	}
	shimPath.users++
	return sync.OnceFunc(func() {
		shimPath.Lock()
		defer shimPath.Unlock()
		if shimPath.users--; shimPath.users == 0 {
			os.Setenv("PATH", shimPath.old)
		}
	})
}

// writeNodeExecShim writes the shim calling real under bin (in a
// directory named by its content, written once) and returns the directory.
func writeNodeExecShim(bin, real string) (string, error) {
	abs, err := filepath.Abs(real)
	if err != nil {
		return "", err
	}
	body := strings.Replace(nodeExecShim, "@REAL@", "'"+strings.ReplaceAll(abs, "'", `'\''`)+"'", 1)
	sum := sha256.Sum256([]byte(body))
	if strings.HasPrefix(abs, bin+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is a shim of testbed's, not docker", abs)
	}
	dir := filepath.Join(bin, hex.EncodeToString(sum[:6]))
	path := filepath.Join(dir, "docker")
	if got, err := os.ReadFile(path); err == nil && string(got) == body {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".docker-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(body); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return dir, os.Rename(tmp.Name(), path)
}
