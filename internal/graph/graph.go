// Package graph holds the one cycle finder the plan and the topology share.
package graph

import "slices"

// Cycle returns one cycle among nodes, walked from a node to what it needs,
// the first name repeated at the end (a → b → a: a needs b, b needs a), or
// nil. Nodes are visited in the order given, so the answer is deterministic.
// Needs naming unknown nodes are followed like any other.
func Cycle(nodes []string, needs func(string) []string) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack, found []string
	var visit func(string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, m := range needs(n) {
			switch color[m] {
			case grey:
				found = append(slices.Clone(stack[slices.Index(stack, m):]), m)
				return true
			case white:
				if visit(m) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range nodes {
		if color[n] == white && visit(n) {
			return found
		}
	}
	return nil
}
