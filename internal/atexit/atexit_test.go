package atexit

import (
	"slices"
	"testing"
)

func TestRunRunsTheRegisteredMostRecentFirstOnce(t *testing.T) {
	var got []string
	Register(func() { got = append(got, "a") })
	drop := Register(func() { got = append(got, "dropped") })
	Register(func() { got = append(got, "c") })
	drop()
	Run()
	Run()
	if want := []string{"c", "a"}; !slices.Equal(got, want) {
		t.Errorf("ran %v, want %v", got, want)
	}
}
