// Command remediationorchestrator runs the remediationorchestrator controller.
package main

import (
	"github.com/testbed-dev/testbed/test/platform/controller"
	"github.com/testbed-dev/testbed/test/platform/pipeline"
)

func main() { controller.Main(pipeline.Orchestrator) }
