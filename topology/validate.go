package topology

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// Names end up in host names, Kubernetes objects, image references,
// environment variables and paths, so each kind of name follows the rule of
// the strictest place it goes, as Kubernetes validates its objects.
var (
	// validName matches what a kind cluster name may start with: lower-case
	// letters, digits and '-', starting with a letter; short enough for
	// <name>-<service>-warm-xxxxxx-control-plane to stay a valid host name.
	validName = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$`)
	// dnsLabel is an RFC 1123 label (Kubernetes' IsDNS1123Label), without
	// its length, checked apart.
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	// dnsSubdomain is an RFC 1123 subdomain (a Secret's name).
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	// secretKey is a key of a Secret's data (Kubernetes' IsConfigMapKey).
	secretKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	// fileName is a binary's name: one file in the image's build context.
	fileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

const (
	maxHostLabel = 63
	// The longest suffix testbed puts after <name>-<service> in a node's
	// host name: a warm cluster's "-warm-xxxxxx", then kind's
	// "-control-plane".
	nodeSuffix = len("-warm-xxxxxx") + len("-control-plane")
	// A run on an existing cluster (or e2e:all's one cluster) gets the
	// namespace <namespace>-<5 random>.
	runNamespaceSuffix = len("-xxxxx")
	maxSecretName      = 253
)

// MaxServiceName is the longest service name the topology name allows:
// every node of <name>-<service>-warm-xxxxxx must be a valid host name.
func MaxServiceName(name string) int {
	return maxHostLabel - len(name) - len("-") - nodeSuffix
}

// Validate reports every problem it finds, joined, each naming its field.
func (t *Topology) Validate() error {
	v := &validation{t: t}
	if !validName.MatchString(t.Name) {
		v.bad("name %q: use 1 to 20 lower-case letters, digits and '-', starting with a letter (it starts the names of the platform's clusters)", t.Name)
	}
	if err := label(t.Namespace, maxHostLabel-runNamespaceSuffix); err != nil {
		v.bad("namespace %q: %v (runs on a shared cluster add %d characters)", t.Namespace, err, runNamespaceSuffix)
	}
	if err := t.Cluster.validate(); err != nil {
		v.bad("cluster: %v", err)
	}
	v.secrets()
	v.images()
	v.components()
	v.services()
	return errors.Join(v.errs...)
}

// validation collects the problems of one topology.
type validation struct {
	t    *Topology
	errs []error
}

func (v *validation) bad(f string, a ...any) { v.errs = append(v.errs, fmt.Errorf(f, a...)) }

// label checks an RFC 1123 label of at most max characters.
func label(s string, max int) error {
	switch {
	case s == "":
		return errors.New("is required")
	case len(s) > max:
		return fmt.Errorf("is %d characters long: at most %d", len(s), max)
	case !dnsLabel.MatchString(s):
		return errors.New("use lower-case letters, digits and '-', starting and ending with a letter or digit (an RFC 1123 label)")
	}
	return nil
}

// localPath checks a path the topology reads: relative ones stay inside
// the repository; an absolute one is taken as given.
func localPath(p string) error {
	if p == "" {
		return errors.New("is required")
	}
	if !filepath.IsAbs(p) && !filepath.IsLocal(filepath.FromSlash(p)) {
		return errors.New("must stay inside the repository (a relative path without '..'), or be absolute")
	}
	return nil
}

// goPackage checks a Go package argument: never read as a flag, and a
// relative one inside the repository.
func goPackage(p string) error {
	switch {
	case p == "":
		return errors.New("is required")
	case strings.HasPrefix(p, "-"):
		return errors.New("must not start with '-' (go would read it as a flag)")
	case strings.HasPrefix(p, "."):
		if rest := strings.TrimSuffix(p, "/..."); !filepath.IsLocal(filepath.FromSlash(rest)) && filepath.Clean(rest) != "." {
			return errors.New("must be a package inside the repository (./dir)")
		}
	}
	return nil
}

func (v *validation) secrets() {
	for _, name := range sortedKeys(v.t.Secrets) {
		sec := v.t.Secrets[name]
		if len(name) > maxSecretName || !dnsSubdomain.MatchString(name) {
			v.bad("secret %q: use lower-case letters, digits, '-' and '.' (an RFC 1123 subdomain of at most %d characters)", name, maxSecretName)
		}
		if sec == nil || len(sec.Generate) == 0 {
			v.bad("secret %s: list the keys to generate (generate: [password])", name)
			continue
		}
		for _, k := range sec.Generate {
			if !secretKey.MatchString(k) {
				v.bad("secret %s: key %q: use letters, digits, '-', '_' and '.'", name, k)
			}
		}
	}
}

func (v *validation) images() {
	for _, name := range sortedKeys(v.t.Images) {
		img := v.t.Images[name]
		if err := label(name, maxHostLabel); err != nil {
			v.bad("image %q: name %v", name, err)
		}
		switch {
		case img == nil:
			v.bad("image %s: empty: give a dockerfile (built here) or a ref (third-party)", name)
		case img.Built() && img.Ref != "":
			v.bad("image %s: set either dockerfile (built here) or ref (third-party), not both", name)
		case !img.Built() && img.Ref == "":
			v.bad("image %s: needs a dockerfile or a ref", name)
		case img.Built():
			v.builtImage(name, img)
		case img.Context != "" || len(img.Args) > 0 || len(img.Binaries) > 0:
			v.bad("image %s: context, args and binaries belong to an image built here (with a dockerfile), not to ref %s", name, img.Ref)
		}
	}
}

func (v *validation) builtImage(name string, img *Image) {
	if err := localPath(img.Dockerfile); err != nil {
		v.bad("image %s: dockerfile %q %v", name, img.Dockerfile, err)
	} else if _, err := os.Stat(v.t.Path(img.Dockerfile)); err != nil {
		v.bad("image %s: dockerfile %s: %v", name, img.Dockerfile, errors.Unwrap(err))
	}
	if img.Context != "" {
		if err := localPath(img.Context); err != nil {
			v.bad("image %s: context %q %v", name, img.Context, err)
		} else if fi, err := os.Stat(v.t.Path(img.Context)); err != nil || !fi.IsDir() {
			v.bad("image %s: context %s must be a directory", name, img.Context)
		}
	}
	seen := map[string]bool{}
	for i, b := range img.Binaries {
		if !fileName.MatchString(b.Name) {
			v.bad("image %s: binaries[%d]: name %q: give one file name (letters, digits, '.', '_', '-', not starting with '-' or '.')", name, i, b.Name)
		}
		if seen[b.Name] {
			v.bad("image %s: binaries[%d]: name %q is given twice", name, i, b.Name)
		}
		seen[b.Name] = true
		if err := goPackage(b.Package); err != nil {
			v.bad("image %s: binaries[%d]: package %q %v", name, i, b.Package, err)
		}
	}
}

func (v *validation) components() {
	for _, name := range sortedKeys(v.t.Components) {
		c := v.t.Components[name]
		if err := label(name, maxHostLabel); err != nil {
			v.bad("component %q: name %v", name, err)
		}
		if c == nil {
			v.bad("component %s: empty: give its manifests (a kustomize directory)", name)
			continue
		}
		if err := localPath(c.Manifests); err != nil {
			v.bad("component %s: manifests %q %v", name, c.Manifests, err)
		} else if _, err := os.Stat(filepath.Join(v.t.Path(c.Manifests), "kustomization.yaml")); err != nil {
			v.bad("component %s: manifests %s must be a kustomize base (a directory with kustomization.yaml): %v", name, c.Manifests, errors.Unwrap(err))
		}
		for _, i := range c.Images {
			if v.t.Images[i] == nil {
				v.bad("component %s: unknown image %q", name, i)
			}
		}
		for _, n := range c.Needs {
			if v.t.Components[n] == nil {
				v.bad("component %s: needs unknown component %q", name, n)
			}
		}
	}
	if cyc := v.t.cycle(); cyc != nil {
		v.bad("components form a cycle of needs: %s", strings.Join(cyc, " → "))
	}
}

func (v *validation) services() {
	// e2e:all may run any two services at once: a host port belongs to one.
	hostOwner := map[int]string{}
	for _, name := range sortedKeys(v.t.Services) {
		s := v.t.Services[name]
		if err := label(name, MaxServiceName(v.t.Name)); err != nil {
			v.bad("service %q: name %v (the cluster <name>-<service> and its nodes must stay valid host names)", name, err)
		}
		if name == "all" || strings.Contains(name, "-warm-") {
			v.bad("service %q: the name \"all\" and names holding \"-warm-\" are testbed's (e2e:all's cluster, warm clusters)", name)
		}
		if s == nil {
			v.bad("service %s: empty: give its components and suite", name)
			continue
		}
		if err := s.Cluster.validate(); err != nil {
			v.bad("service %s: cluster: %v", name, err)
		}
		v.serviceComponents(name, s)
		v.ports(name, s)
		for _, p := range s.Ports {
			if other, taken := hostOwner[p.HostPort]; taken && other != name {
				v.bad("hostPort %d is mapped by services %s and %s, which e2e:all may run at once", p.HostPort, other, name)
			}
			hostOwner[p.HostPort] = name
		}
		if s.Suite == "" {
			v.bad("service %s: suite is required (a Go package, or %q)", name, NoSuite)
		} else if err := goPackage(s.Suite); s.Suite != NoSuite && err != nil {
			v.bad("service %s: suite %q %v", name, s.Suite, err)
		}
	}
}

func (v *validation) serviceComponents(name string, s *Service) {
	has := map[string]bool{}
	for _, c := range s.Components {
		if v.t.Components[c] == nil {
			v.bad("service %s: unknown component %q", name, c)
		}
		has[c] = true
	}
	for _, c := range s.Components {
		if comp := v.t.Components[c]; comp != nil {
			for _, n := range comp.Needs {
				if !has[n] {
					v.bad("service %s: component %s needs %s, which the service does not include", name, c, n)
				}
			}
		}
	}
}

func (v *validation) ports(name string, s *Service) {
	nodePorts, hostPorts, names := map[int]bool{}, map[int]bool{}, map[string]bool{}
	for i, p := range s.Ports {
		if err := label(p.Name, maxHostLabel); err != nil {
			v.bad("service %s: ports[%d]: name %q %v (it names E2E_<PORT>_URL)", name, i, p.Name, err)
		}
		if names[p.Name] {
			v.bad("service %s: ports[%d]: name %q is given twice", name, i, p.Name)
		}
		names[p.Name] = true
		if p.NodePort < 30000 || p.NodePort > 32767 {
			v.bad("service %s: port %s: nodePort %d is outside 30000-32767", name, p.Name, p.NodePort)
		}
		if p.Probe != "" && !strings.HasPrefix(p.Probe, "/") {
			v.bad("service %s: port %s: probe %q must be a path starting with /", name, p.Name, p.Probe)
		}
		if p.HostPort < 1 || p.HostPort > 65535 {
			v.bad("service %s: port %s: hostPort %d is not a port", name, p.Name, p.HostPort)
		}
		if nodePorts[p.NodePort] {
			v.bad("service %s: nodePort %d is mapped twice", name, p.NodePort)
		}
		if hostPorts[p.HostPort] {
			v.bad("service %s: hostPort %d is mapped twice", name, p.HostPort)
		}
		nodePorts[p.NodePort], hostPorts[p.HostPort] = true, true
	}
}

// loopback reports whether addr is a loopback address (127.0.0.1, ::1).
func loopback(addr string) bool {
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

func (c *Cluster) validate() error {
	if c == nil {
		return nil
	}
	if c.Workers < 0 || c.Workers > 8 {
		return fmt.Errorf("workers: %d: give 0 to 8", c.Workers)
	}
	k, err := c.KindConfig()
	if err != nil || k == nil {
		return err
	}
	if k.Name != "" {
		return fmt.Errorf("kind: name %q: testbed names the clusters (<name>-<service>); leave it out", k.Name)
	}
	if a := k.Networking.APIServerAddress; a != "" && !loopback(a) {
		return fmt.Errorf("kind: networking.apiServerAddress %s: the API server listens on 127.0.0.1 only (leave it out)", a)
	}
	for i, n := range k.Nodes {
		for j, m := range n.ExtraPortMappings {
			if m.ListenAddress != "" && !loopback(m.ListenAddress) {
				return fmt.Errorf("kind: nodes[%d].extraPortMappings[%d]: listenAddress %s: host ports listen on 127.0.0.1 only (leave it out: testbed sets 127.0.0.1)", i, j, m.ListenAddress)
			}
		}
	}
	if len(k.Nodes) > 0 {
		if c.Workers > 0 {
			return errors.New("set workers or kind's nodes, not both")
		}
		if !slices.ContainsFunc(k.Nodes, func(n v1alpha4.Node) bool { return n.Role == "" || n.Role == v1alpha4.ControlPlaneRole }) {
			return errors.New("kind: nodes: there must be a control-plane node")
		}
	}
	return nil
}
