// Package topology is the schema of a platform's topology file (by
// default deploy/topology.yaml): its name, the images (built here or
// third-party), the components made of manifests and images with what
// each needs, the Secrets generated per cluster, and the services whose
// E2E environments are sets of components, with their ports, suite and
// cluster shape. Load decodes it strictly (an unknown field is an error)
// and validates it: paths exist, names resolve, needs form no cycle, host
// ports are unique across services.
//
// A minimal topology:
//
//	namespace: shop
//	images:
//	  api: {dockerfile: images/api/Dockerfile, binaries: [{name: api, package: ./cmd/api}]}
//	  postgresql: {ref: postgres:15-alpine, env: SHOP_POSTGRES_IMAGE}
//	components:
//	  db: {manifests: deploy/db, images: [postgresql]}
//	  api: {manifests: deploy/api, images: [api], needs: [db]}
//	services:
//	  api:
//	    components: [db, api]
//	    ports: [{name: api, nodePort: 30080, hostPort: 30080}]
//	    suite: ./e2e/api
package topology

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/testbed-dev/testbed/internal/graph"
)

// Topology is the whole platform.
type Topology struct {
	// Name names the platform: the clusters testbed makes for it are
	// <name>-<service>, and its state lives under the user's cache in
	// testbed/<name>, so that two repositories never touch each other's
	// clusters. Default: the last element of the module path in go.mod at
	// the root (a major version suffix dropped), else the root's name.
	Name string `yaml:"name,omitempty"`
	// Namespace every component is applied to.
	Namespace  string                `yaml:"namespace"`
	Images     map[string]*Image     `yaml:"images"`
	Components map[string]*Component `yaml:"components"`
	Services   map[string]*Service   `yaml:"services"`
	// Cluster is the shape of every service's kind cluster, unless the
	// service sets its own.
	Cluster *Cluster `yaml:"cluster,omitempty"`
	// Secrets are created in the namespace before any component is
	// applied, with a random value per key, new in each cluster (an
	// existing Secret is kept). Components refer to them by name.
	Secrets map[string]*Secret `yaml:"secrets,omitempty"`
	// CI tunes the GitHub Actions matrix (ci:affected).
	CI *CI `yaml:"ci,omitempty"`
	// Root is the directory paths are relative to (the repository).
	Root string `yaml:"-"`
}

// CI is what ci:affected needs beyond the topology. It fails closed: a
// changed file that no image, component or suite is made from runs every
// service, unless Ignore names it.
type CI struct {
	// Ignore names the files whose changes need no E2E run: "docs/" (a
	// directory), "*.md" (a base name at any depth), or a path.Match
	// pattern on the whole slash-separated path ("deploy/*/README.md").
	Ignore []string `yaml:"ignore,omitempty"`
}

// Image is either built here (Dockerfile plus host-built Go binaries) or a
// third-party reference (Ref, overridable by the variable Env).
type Image struct {
	Dockerfile string `yaml:"dockerfile,omitempty"`
	// Context is the build context directory; without it the context holds
	// only the Dockerfile and the binaries. .git and what its .dockerignore
	// excludes are left out.
	Context string `yaml:"context,omitempty"`
	// Args are the build arguments (--build-arg).
	Args     map[string]string `yaml:"args,omitempty"`
	Binaries []Binary          `yaml:"binaries,omitempty"`
	Ref      string            `yaml:"ref,omitempty"`
	Env      string            `yaml:"env,omitempty"`
}

// Built reports whether the image is built here.
func (i *Image) Built() bool { return i.Dockerfile != "" }

// Binary is a Go program compiled on the host into the image's context.
type Binary struct {
	Name    string `yaml:"name"`
	Package string `yaml:"package"`
}

// Component is a set of manifests applied together, the images they run,
// and the components that must be Ready before it is applied.
type Component struct {
	// Manifests is a kustomize base: a directory with kustomization.yaml.
	Manifests string   `yaml:"manifests"`
	Images    []string `yaml:"images,omitempty"`
	Needs     []string `yaml:"needs,omitempty"`
}

// Cluster is the shape of a kind cluster, beyond what testbed sets itself
// (a control-plane node, the API server and the service's ports on
// 127.0.0.1, its kubeadm patches).
type Cluster struct {
	// Workers adds worker nodes beside the control plane (images are
	// loaded into every node).
	Workers int `yaml:"workers,omitempty"`
	// Kind is a kind configuration (kind: Cluster, apiVersion:
	// kind.x-k8s.io/v1alpha4) merged with testbed's: its nodes replace the
	// single control-plane node (the first control-plane node gets the
	// ports), its feature gates, runtime config and networking are used,
	// its kubeadm and containerd patches come after testbed's. Extra
	// mounts, node labels, feature gates: what the origin's clusters set.
	// Ports stay on the host: an extraPortMappings entry without
	// listenAddress gets 127.0.0.1, and any address but a loopback one
	// (for it or for networking.apiServerAddress) is refused.
	Kind string `yaml:"kind,omitempty"`
}

// Service is one E2E environment: its components, host ports and suite.
type Service struct {
	// Cluster is the shape of the service's cluster; nil: the topology's.
	Cluster    *Cluster `yaml:"cluster,omitempty"`
	Components []string `yaml:"components"`
	Ports      []Port   `yaml:"ports,omitempty"`
	// Suite is the Go package of the service's E2E suite, or NoSuite.
	Suite string `yaml:"suite"`
}

// NoSuite is the suite of a service that is only set up and torn down.
const NoSuite = "none"

// Secret is a Secret made for each environment.
type Secret struct {
	// Generate lists the keys that get a random value (48 hex digits).
	Generate []string `yaml:"generate"`
}

// Port maps a NodePort to a port on the host's 127.0.0.1.
type Port struct {
	Name     string `yaml:"name"`
	NodePort int    `yaml:"nodePort"`
	HostPort int    `yaml:"hostPort"`
	// Probe is the HTTP path requested through the port from the host
	// before the suite starts: any HTTP response means the NodePort is
	// programmed. Default /.
	Probe string `yaml:"probe,omitempty"`
}

// ProbePath is the path the host requests through the port.
func (p Port) ProbePath() string {
	if p.Probe == "" {
		return "/"
	}
	return p.Probe
}

// Load reads and validates the topology at path; relative paths inside it
// are resolved against root.
func Load(path, root string) (*Topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the topology: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	t := &Topology{Root: root}
	if err := dec.Decode(t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if t.Name == "" {
		t.Name = DefaultName(root)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// DefaultName is the name of a topology that sets none: the last element
// of the module path of root's go.mod (example.com/shop/v2: shop), else
// the base name of root, lower-cased, with what a cluster name cannot
// hold as '-', cut to 20 characters, prefixed e2e- unless it starts with a
// letter.
func DefaultName(root string) string {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = root
	}
	name := filepath.Base(abs)
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err == nil {
		if mod := modulePath(b); mod != "" {
			parts := strings.Split(mod, "/")
			name = parts[len(parts)-1]
			if len(parts) > 1 && len(name) > 1 && name[0] == 'v' && strings.Trim(name[1:], "0123456789") == "" {
				name = parts[len(parts)-2]
			}
		}
	}
	name = strings.ToLower(name)
	name = strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '-'
	}, name)
	name = strings.Trim(name, "-")
	if name == "" || name[0] < 'a' || name[0] > 'z' {
		name = "e2e-" + name
	}
	if len(name) > 20 {
		name = name[:20]
	}
	return strings.Trim(name, "-")
}

// modulePath reads the module line of a go.mod.
func modulePath(gomod []byte) string {
	for _, l := range strings.Split(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// ClusterOf is the shape of a service's cluster: its own, else the
// topology's, else nil (testbed's single node).
func (t *Topology) ClusterOf(s *Service) *Cluster {
	if s.Cluster != nil {
		return s.Cluster
	}
	return t.Cluster
}

// ServiceNames lists the services, sorted.
func (t *Topology) ServiceNames() []string {
	names := make([]string, 0, len(t.Services))
	for n := range t.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Service returns a service by name, or an error listing the valid ones.
func (t *Topology) Service(name string) (*Service, error) {
	s, ok := t.Services[name]
	if !ok {
		return nil, fmt.Errorf("unknown service %q: valid services are %s", name, strings.Join(t.ServiceNames(), ", "))
	}
	return s, nil
}

// Path resolves a topology path against the root.
func (t *Topology) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(t.Root, p)
}

// cycle returns one cycle of component needs, or nil.
func (t *Topology) cycle() []string {
	return graph.Cycle(sortedKeys(t.Components), func(n string) []string {
		if c := t.Components[n]; c != nil {
			return c.Needs
		}
		return nil
	})
}

// ImagesOf lists, sorted, the images a service's components run.
func (t *Topology) ImagesOf(s *Service) []string {
	set := map[string]bool{}
	for _, c := range s.Components {
		for _, i := range t.Components[c].Images {
			set[i] = true
		}
	}
	return sortedKeys(set)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// KindConfig decodes the Kind fragment (strictly: an unknown field is an
// error); nil when there is none.
func (c *Cluster) KindConfig() (*v1alpha4.Cluster, error) {
	if c == nil || strings.TrimSpace(c.Kind) == "" {
		return nil, nil
	}
	var k v1alpha4.Cluster
	if err := sigsyaml.UnmarshalStrict([]byte(c.Kind), &k); err != nil {
		return nil, fmt.Errorf("kind: %w", err)
	}
	if k.Kind != "" && k.Kind != "Cluster" || k.APIVersion != "" && k.APIVersion != "kind.x-k8s.io/v1alpha4" {
		return nil, fmt.Errorf("kind: %s %s: give a kind.x-k8s.io/v1alpha4 Cluster", k.APIVersion, k.Kind)
	}
	return &k, nil
}
