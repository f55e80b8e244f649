package topology_test

import (
	"fmt"
	"log"

	"github.com/testbed-dev/testbed/topology"
)

// Load reads a topology strictly (an unknown field is an error) and
// checks it: paths exist, needs form no cycle, host ports are unique.
func ExampleLoad() {
	topo, err := topology.Load("../examples/hello/testbed.yaml", "../examples/hello")
	if err != nil {
		log.Fatal(err)
	}
	web, err := topo.Service("web")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(topo.Name, topo.Namespace)
	fmt.Println(web.Components, topo.Components["web"].Needs)
	fmt.Println(topo.ClusterOf(web).Workers, "worker(s)")
	fmt.Println(topo.ImagesOf(web))
	// Output:
	// hello hello
	// [store web] [store]
	// 1 worker(s)
	// [store web]
}
