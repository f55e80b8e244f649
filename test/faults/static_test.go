package faults

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository, from this package.
const repoRoot = "../.."

// TestNoShellStrings: no command line is handed to a shell; commands run
// with argument lists, so no input can be read as shell syntax.
func TestNoShellStrings(t *testing.T) {
	shell := regexp.MustCompile(`"(ba|z|da)?sh",\s*"-c"`)
	var hits []string
	err := filepath.Walk(repoRoot, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() && (info.Name() == ".git" || info.Name() == "_artifacts" || info.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if shell.Match(b) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) > 0 {
		t.Errorf("shell command strings in %v", hits)
	}
	if !shell.MatchString(`exec.Command("sh", "-c", cmd)`) {
		t.Fatal("the pattern does not catch a shell string")
	}
}
