//go:build ignore

// `go run magefile.go <target>` runs the targets without a mage binary.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
