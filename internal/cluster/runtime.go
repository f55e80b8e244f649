package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"sigs.k8s.io/kind/pkg/cluster"
)

// RuntimeVar picks the container runtime of kind's nodes, as it does for
// the kind CLI.
const RuntimeVar = "KIND_EXPERIMENTAL_PROVIDER"

// runtimes are the runtimes kind can run nodes in, in the order kind's
// DetectNodeProvider tries them when none is asked for.
var runtimes = []string{"docker", "nerdctl", "podman"}

// SelectRuntime chooses the runtime of kind's nodes as the kind CLI
// does: the one KIND_EXPERIMENTAL_PROVIDER names (docker, podman, nerdctl,
// finch, nerdctl.lima), else the first of docker, nerdctl, podman that is
// installed (available says whether a command is). Unlike kind, which
// ignores an unknown value, an unknown value is an error: a typo must not
// quietly run the nodes elsewhere.
func SelectRuntime(env string, available func(command string) bool) (string, error) {
	switch env {
	case "docker", "podman", "nerdctl", "finch", "nerdctl.lima":
		return env, nil
	case "":
	default:
		return "", fmt.Errorf("%s=%q: use docker, podman, nerdctl, finch or nerdctl.lima", RuntimeVar, env)
	}
	for _, r := range runtimes {
		if available(r) {
			return r, nil
		}
	}
	return "", fmt.Errorf("no container runtime for kind's nodes: install Docker (or podman, nerdctl), or set %s", RuntimeVar)
}

// runtime is the runtime of this process's clusters: it does not change
// while the process runs.
func runtime() (string, error) {
	return SelectRuntime(os.Getenv(RuntimeVar), func(c string) bool {
		_, err := exec.LookPath(c)
		return err == nil
	})
}

// providerOption is kind's provider for the runtime.
func providerOption(rt string) cluster.ProviderOption {
	switch {
	case rt == "podman":
		return cluster.ProviderWithPodman()
	case strings.HasPrefix(rt, "nerdctl"), rt == "finch":
		return cluster.ProviderWithNerdctl(rt)
	}
	return cluster.ProviderWithDocker()
}
