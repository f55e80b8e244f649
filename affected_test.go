package testbed

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/testbed-dev/testbed/internal/affected"
	"github.com/testbed-dev/testbed/topology"
)

// TestAffectedOnTheReferencePlatform computes what every service of this
// repository's topology is made from (go list of the real packages) and
// checks, for hand-made changes, which services they affect. The expected
// sets are written out by hand from the topology: which components use an
// image, which services use a component.
func TestAffectedOnTheReferencePlatform(t *testing.T) {
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Load(filepath.Join(root, TopologyFile), root)
	if err != nil {
		t.Fatal(err)
	}
	tb := &Testbed{Opts: Options{Root: root, Topology: filepath.Join(root, TopologyFile)}, Topo: topo}
	inputs, err := tb.inputs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all := "aianalysis datastorage gateway holmesgpt-api notification remediationorchestrator signalprocessing workflowexecution"
	withDataStorage := "aianalysis datastorage gateway notification remediationorchestrator signalprocessing workflowexecution"
	tests := []struct {
		name  string
		files []string
		want  string
	}{
		{"README only: none", []string{"README.md"}, ""},
		{"the topology: every service", []string{"deploy/topology.yaml"}, all},
		{"a manifest of a shared component (PostgreSQL): every service using it", []string{"deploy/components/postgresql/postgresql.yaml"}, withDataStorage},
		{"the CRDs: the services applying them", []string{"deploy/components/crds/pipeline.yaml"}, "aianalysis gateway notification remediationorchestrator signalprocessing workflowexecution"},
		{"a suite only: its service", []string{"test/e2e/gateway/suite_test.go"}, "gateway"},
		{"a service's main package: the services deploying its image", []string{"test/platform/cmd/holmesgpt-api/main.go"}, "aianalysis holmesgpt-api remediationorchestrator"},
		{"a package one image imports", []string{"test/platform/gateway/gateway.go"}, "gateway"},
		{"that package's unit test: none", []string{"test/platform/gateway/gateway_test.go"}, ""},
		{"a Dockerfile", []string{"deploy/images/gateway/Dockerfile"}, "gateway"},
		{"a package two images import (datastorage's, run by migrations too)", []string{"test/platform/datastorage/migrate.go"}, withDataStorage},
		{"an embedded migration", []string{"test/platform/datastorage/migrations/001_audit_events.sql"}, withDataStorage},
		{"a package five images import, and every suite through e2eenv", []string{"test/platform/controller/controller.go"}, all},
		{"the suites' shared package: every suite", []string{"test/e2e/e2eenv/e2eenv.go"}, all},
		{"testbed's engine: everything", []string{"engine/run.go"}, all},
		{"testbed's engine tests: none", []string{"engine/engine_test.go"}, ""},
		{"go.sum: everything", []string{"go.sum"}, all},
		{"the workflow: everything", []string{".github/workflows/e2e.yml"}, all},
		{"the fault suite: none", []string{"test/faults/faults_test.go", "test/faults/topology.yaml"}, ""},
		{"a suite's fixture: its service", []string{"test/e2e/gateway/testdata/payload.json"}, "gateway"},
		{"a file nothing claims: everything (fail closed)", []string{"scripts/seed.sh"}, all},
		{"a package's test data: everything (it is not a test file)", []string{"test/platform/gateway/testdata/x.json"}, all},
		{"docs and an example: none (ignored)", []string{"docs/benchmarks.md", "examples/hello/cmd/web/main.go"}, ""},
		{"CI's own script: everything", []string{"tools/act.sh"}, all},
		{"two changes add up", []string{"deploy/images/gateway/Dockerfile", "test/e2e/datastorage/suite_test.go"}, "datastorage gateway"},
	}
	for _, tt := range tests {
		got := affected.Services(inputs, topo.ServiceNames(), tt.files, topo.CI.Ignore)
		names := []string{}
		for s := range got {
			names = append(names, s)
		}
		slices.Sort(names)
		if g := strings.Join(names, " "); g != tt.want {
			t.Errorf("%s: %v affects\n  %q\nwant\n  %q\nreasons: %v", tt.name, tt.files, g, tt.want, got)
		}
	}
}
