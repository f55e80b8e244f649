package topology

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// badCases are topologies that must be refused (each an edit of base),
// naming the field; none may panic or make a path outside the repository.
var badCases = []struct{ name, edit, from, want string }{
	{"null image", "  app: {dockerfile: Dockerfile}\n", "  app: {dockerfile: Dockerfile}\n  x:\n", "image x: empty"},
	{"null component", "  db: {manifests: m}\n", "  db: {manifests: m}\n  x:\n", "component x: empty"},
	{"null service", "    suite: ./e2e\n", "    suite: ./e2e\n  x:\n", "service x: empty"},
	{"null secret", "namespace: ns\n", "namespace: ns\nsecrets:\n  s:\n", "secret s: list the keys"},
	{"upper-case service", "services:\n  app:", "services:\n  App:", `service "App": name use lower-case`},
	{"unicode component", "  db: {manifests: m}", "  dbé: {manifests: m}", `component "dbé": name use lower-case`},
	{"80-character service", "services:\n  app:", "services:\n  " + strings.Repeat("a", 80) + ":", "characters long: at most"},
	{"service escaping the cache", "services:\n  app:", "services:\n  x/../../../../../any/dir:", `service "x/../../../../../any/dir": name`},
	{"dot-dot image", "  app: {dockerfile: Dockerfile}", "  ../app: {dockerfile: Dockerfile}", `image "../app": name`},
	{"upper-case namespace", "namespace: ns", "namespace: NS", `namespace "NS"`},
	{"long namespace", "namespace: ns", "namespace: " + strings.Repeat("n", 60), "characters long: at most 57"},
	{"port name", "name: http,", "name: HTTP_1,", `name "HTTP_1"`},
	{"binary path", "app: {dockerfile: Dockerfile}", "app: {dockerfile: Dockerfile, binaries: [{name: ../../bin/x, package: ./cmd/x}]}", `binaries[0]: name "../../bin/x"`},
	{"binary flag", "app: {dockerfile: Dockerfile}", "app: {dockerfile: Dockerfile, binaries: [{name: -x, package: ./cmd/x}]}", `binaries[0]: name "-x"`},
	{"package flag", "app: {dockerfile: Dockerfile}", "app: {dockerfile: Dockerfile, binaries: [{name: x, package: -toolexec=sh}]}", `package "-toolexec=sh" must not start with '-'`},
	{"suite flag", "suite: ./e2e", "suite: -exec=sh", `suite "-exec=sh" must not start with '-'`},
	{"suite outside", "suite: ./e2e", "suite: ./../../elsewhere", `suite "./../../elsewhere" must be a package inside the repository`},
	{"manifests outside", "  db: {manifests: m}", "  db: {manifests: ../../etc}", `manifests "../../etc" must stay inside the repository`},
	{"service all", "services:\n  app:", "services:\n  all:", `service "all": the name "all"`},
	{"port on every interface", "    suite: ./e2e\n", "    suite: ./e2e\n    cluster:\n      kind: |\n        nodes:\n        - role: control-plane\n          extraPortMappings: [{containerPort: 80, hostPort: 8080, listenAddress: 0.0.0.0}]\n",
		"listenAddress 0.0.0.0: host ports listen on 127.0.0.1 only"},
	{"API server on every interface", "    suite: ./e2e\n", "    suite: ./e2e\n    cluster:\n      kind: |\n        networking: {apiServerAddress: 0.0.0.0}\n",
		"apiServerAddress 0.0.0.0: the API server listens on 127.0.0.1 only"},
}

// TestBadTopologiesAreRefused: each bad case is an error naming its field,
// quickly, and nothing is written outside the repository.
func TestBadTopologiesAreRefused(t *testing.T) {
	t.Parallel()
	for _, c := range badCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			body := strings.Replace(base, c.edit, c.from, 1)
			if body == base {
				t.Fatalf("edit %q did not apply", c.edit)
			}
			path, root := write(t, body)
			before := listDir(t, filepath.Dir(root))
			t0 := time.Now()
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						err = errors.New("panic")
						t.Errorf("Load panicked: %v", p)
					}
				}()
				_, err = Load(path, root)
			}()
			if took := time.Since(t0); took > time.Second {
				t.Errorf("Load took %s", took)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
			if after := listDir(t, filepath.Dir(root)); after != before {
				t.Errorf("Load changed %s: %s → %s", filepath.Dir(root), before, after)
			}
		})
	}
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}

func TestServiceNameBudgetKeepsNodeNamesValid(t *testing.T) {
	for _, name := range []string{"a", "testbed", strings.Repeat("n", 20)} {
		n := MaxServiceName(name)
		node := name + "-" + strings.Repeat("s", n) + "-warm-abcdef-control-plane"
		if len(node) != maxHostLabel {
			t.Errorf("name %q: the longest service gives the node %q (%d characters), want exactly %d", name, node, len(node), maxHostLabel)
		}
	}
}
