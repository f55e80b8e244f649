// Command crasher exits at once with a message: a workload that crash-loops.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("fatal: cannot reach the database at postgresql:5432")
	os.Exit(3)
}
