//go:build ignore

// Zero-install entry point: `go run magefile.go <target>` runs the targets
// in magefiles/ without a mage binary; `mage <target>` works where it is
// installed.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
