package suiteenv_test

import (
	"fmt"

	"github.com/testbed-dev/testbed/suiteenv"
)

// A suite reads the host address of each port of its service by the
// port's name in the topology.
func ExampleURLVar() {
	fmt.Println(suiteenv.URLVar("holmesgpt-api"))
	// Output: E2E_HOLMESGPT_API_URL
}

// Inside an environment a missing variable is an error, never a reason to
// skip.
func ExampleURL() {
	if !suiteenv.InEnvironment() {
		fmt.Println("outside an environment: skip")
		return
	}
	url, err := suiteenv.URL("web")
	if err != nil {
		panic(err) // a suite fails here: t.Fatal(err)
	}
	fmt.Println(url)
}
