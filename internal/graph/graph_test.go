package graph

import (
	"slices"
	"testing"
)

func TestCycle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []string
		needs map[string][]string
		want  []string
	}{
		{"none", []string{"a", "b", "c"}, map[string][]string{"a": {"b"}, "b": {"c"}}, nil},
		{"two", []string{"a", "b"}, map[string][]string{"a": {"b"}, "b": {"a"}}, []string{"a", "b", "a"}},
		{"self", []string{"a"}, map[string][]string{"a": {"a"}}, []string{"a", "a"}},
		{"behind a tail", []string{"x", "a", "b", "c"}, map[string][]string{"x": {"a"}, "a": {"b"}, "b": {"c"}, "c": {"a"}}, []string{"a", "b", "c", "a"}},
		{"diamond", []string{"a", "b", "c", "d"}, map[string][]string{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Cycle(tc.nodes, func(n string) []string { return tc.needs[n] })
			if !slices.Equal(got, tc.want) {
				t.Errorf("Cycle = %v, want %v", got, tc.want)
			}
		})
	}
}
