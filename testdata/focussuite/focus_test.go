// Package focussuite is a plain-Go suite for the suite step's tests: each
// test says it ran, and reads a file beside it (as go test runs a test
// binary in its package's directory).
package focussuite

import (
	"os"
	"testing"
)

func check(t *testing.T) {
	if _, err := os.ReadFile("testdata.txt"); err != nil {
		t.Fatalf("not run in the package's directory: %v", err)
	}
	t.Logf("ran %s with E2E_NAMESPACE=%s", t.Name(), os.Getenv("E2E_NAMESPACE"))
}

func TestAlpha(t *testing.T) { check(t) }
func TestBeta(t *testing.T)  { check(t) }
