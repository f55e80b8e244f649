// Package suiteenv is the contract between testbed and a service's E2E
// suite: the variables the plan sets and the suites read. Both sides import
// it, so a name cannot drift between them.
//
// Inside an environment (E2E_KUBECONFIG set) a missing variable is an
// error, never a reason to skip: a renamed port must fail the run, not
// make it green with nothing run.
package suiteenv

import (
	"fmt"
	"os"
	"strings"
)

// The variables every suite gets.
const (
	KubeconfigVar = "E2E_KUBECONFIG" // the cluster's own kubeconfig file
	NamespaceVar  = "E2E_NAMESPACE"  // the namespace the components run in
)

// URLVar is the variable holding the host address of a mapped port, by its
// topology name: E2E_<NAME>_URL, the name upper-cased with '-' and '.' as '_'.
func URLVar(port string) string {
	return "E2E_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(port)) + "_URL"
}

// InEnvironment reports whether the suite runs inside an environment testbed
// set up (E2E_KUBECONFIG is set); outside one (a plain `go test ./...`) a
// suite skips.
func InEnvironment() bool { return os.Getenv(KubeconfigVar) != "" }

// Require returns the value of a variable the environment must set.
func Require(name string) (string, error) {
	v := os.Getenv(name)
	if v == "" {
		return "", fmt.Errorf("%s is not set although %s is: the topology and the suite disagree (a port renamed?); testbed sets %s and E2E_<PORT>_URL for each port of the service", name, KubeconfigVar, NamespaceVar)
	}
	return v, nil
}

// URL is the host address of a mapped port; an error when it is not set.
func URL(port string) (string, error) { return Require(URLVar(port)) }
