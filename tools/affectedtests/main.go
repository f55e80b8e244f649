// Command affectedtests prints the packages whose tests the changes on
// HEAD since a base commit can change, for go test: the workflow's test
// job runs these on a pull request (every package on main and in the
// merge queue).
//
//	go run ./tools/affectedtests BASE
//
// It prints the import paths on one line, or ./... when a changed file is
// one it cannot place (go.mod, a workflow, a manifest, a README: fail
// closed), or nothing when no package's tests can change; why, to stderr.
package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"

	"github.com/testbed-dev/testbed/internal/affected"
)

// buildsModule: the packages whose tests build the module's commands
// themselves (go run magefile.go): any change to a package's sources can
// change what they test. TestBuildsModuleNamesEveryPackageThatRunsGo keeps
// the list whole.
var buildsModule = []string{"internal/citest"}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./tools/affectedtests BASE (a commit, branch or tag this clone has)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, ".", os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "affectedtests:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, root, base string) error {
	files, err := affected.ChangedFiles(ctx, root, base)
	if err != nil {
		return err
	}
	pkgs, err := affected.ListPackages(ctx, root, buildsModule...)
	if err != nil {
		return err
	}
	fmt.Println(choose(pkgs, files, base, os.Stderr))
	return nil
}

// choose is the line to print, with why written to why.
func choose(pkgs []affected.Package, files []string, base string, why io.Writer) string {
	run, all := affected.Tests(pkgs, files)
	if all != "" {
		fmt.Fprintf(why, "every package: %s is not a Go source, embedded file or test data of a package (fail closed)\n", all)
		return "./..."
	}
	names := slices.Sorted(maps.Keys(run))
	for _, p := range names {
		fmt.Fprintf(why, "%s: %s\n", p, run[p])
	}
	if len(names) == 0 {
		fmt.Fprintf(why, "no package's tests can change with the %d files changed since %s\n", len(files), base)
	}
	return strings.Join(names, " ")
}
