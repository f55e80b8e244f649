package testbed_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/testbed-dev/testbed"
	"github.com/testbed-dev/testbed/topology"
)

// A program that is not a magefile: load a topology, look at a service's
// plan. Run(ctx, "web", testbed.PartsE2E) would build, create the
// cluster, deploy and run the suite.
func Example() {
	topo, err := topology.Load("examples/hello/testbed.yaml", "examples/hello")
	if err != nil {
		log.Fatal(err)
	}
	tb := testbed.New(topo, testbed.Options{Root: "examples/hello", BuildConcurrency: 1})
	p, err := tb.Plan("web", testbed.PartsE2E)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("clusters named", topo.Name+"-<service>")
	for _, s := range p.Steps {
		fmt.Printf("%s after %v\n", s.Name, s.Needs)
	}
	// Output:
	// clusters named hello-<service>
	// build store after []
	// build web after []
	// create cluster after []
	// load store after [create cluster build store]
	// load web after [create cluster build web]
	// prepare namespace after [create cluster]
	// ready cluster DNS after [create cluster]
	// apply store after [prepare namespace load store]
	// ready store after [apply store]
	// apply web after [prepare namespace load web ready store ready cluster DNS]
	// ready web after [apply web]
	// reach host ports after [ready store ready web]
	// compile suite after []
	// suite web after [ready store ready web reach host ports compile suite]
}

// Bad input (an unknown service, a knob's bad value, an invalid topology)
// is testbed.ErrInput: nothing was started.
func ExampleErrInput() {
	topo, err := topology.Load("examples/hello/testbed.yaml", "examples/hello")
	if err != nil {
		log.Fatal(err)
	}
	tb := testbed.New(topo, testbed.Options{Root: "examples/hello"})
	_, err = tb.Run(context.Background(), "shop", testbed.PartsE2E)
	fmt.Println(errors.Is(err, testbed.ErrInput))
	fmt.Println(err)
	// Output:
	// true
	// unknown service "shop": valid services are web
}
