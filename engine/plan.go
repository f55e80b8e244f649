// Package engine runs a plan: named steps with declared needs, each started
// the moment its needs are done, with concurrency capped per resource class.
// The same plan runs in three modes so they can be compared honestly:
// dataflow (the default), phased (a barrier between phases, the design this
// project replaces) and sequential (one step at a time).
package engine

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/testbed-dev/testbed/internal/graph"
)

// Phase groups steps for phased mode: every step of a phase waits for every
// step of the phases before it.
type Phase int

// The phases of an E2E setup, in the order the phased design runs them.
const (
	PhaseBuild Phase = iota + 1
	PhaseCluster
	PhaseLoad
	PhaseApply
	PhaseWait
	PhaseTest
)

var phaseNames = map[Phase]string{
	PhaseBuild: "build", PhaseCluster: "cluster", PhaseLoad: "load",
	PhaseApply: "apply", PhaseWait: "wait", PhaseTest: "test",
}

func (p Phase) String() string {
	if n, ok := phaseNames[p]; ok {
		return n
	}
	return fmt.Sprintf("phase%d", int(p))
}

// Step is one named unit of work.
type Step struct {
	Name string
	// Needs names the steps that must be done before this one starts.
	Needs []string
	// Class names a resource class whose concurrency the plan caps
	// (Plan.Limits); empty means uncapped.
	Class string
	// Phase places the step for phased mode.
	Phase Phase
	// OnFailure marks a finally step that runs only when the plan failed or
	// was interrupted (diagnostics); OnSuccess one that runs only when it
	// passed (work for the next run, which a user who stops or fails this
	// one does not wait for). Other finally steps always run.
	OnFailure bool
	OnSuccess bool
	// Run does the work; it writes its output to w, never to a shared stdout.
	Run func(ctx context.Context, w io.Writer) error
}

// Plan is a set of steps with their needs, plus finally steps that run after
// the rest, in order, whatever happened (teardown, diagnostics).
type Plan struct {
	Name    string
	Steps   []Step
	Finally []Step
	// Limits caps the number of running steps per class; a class not listed
	// is uncapped.
	Limits map[string]int
}

// Validate reports duplicate names, unknown needs and cycles.
func (p *Plan) Validate() error {
	idx := map[string]int{}
	for i, s := range append(slices.Clone(p.Steps), p.Finally...) {
		if s.Name == "" {
			return fmt.Errorf("plan %s: step %d has no name", p.Name, i)
		}
		if _, dup := idx[s.Name]; dup {
			return fmt.Errorf("plan %s: two steps are named %q", p.Name, s.Name)
		}
		if s.Run == nil {
			return fmt.Errorf("plan %s: step %q has nothing to run", p.Name, s.Name)
		}
		idx[s.Name] = i
	}
	for _, s := range p.Steps {
		for _, n := range s.Needs {
			j, ok := idx[n]
			if !ok || j >= len(p.Steps) {
				return fmt.Errorf("plan %s: step %q needs %q, which is not a step of the plan", p.Name, s.Name, n)
			}
		}
	}
	for _, s := range p.Finally {
		if len(s.Needs) > 0 {
			return fmt.Errorf("plan %s: finally step %q cannot have needs: finally steps run in order", p.Name, s.Name)
		}
		if s.OnFailure && s.OnSuccess {
			return fmt.Errorf("plan %s: finally step %q is marked both OnFailure and OnSuccess: it would never run", p.Name, s.Name)
		}
	}
	for c, l := range p.Limits {
		if l < 1 {
			return fmt.Errorf("plan %s: class %q has limit %d; it must be at least 1", p.Name, c, l)
		}
	}
	if cyc := p.cycle(); cyc != nil {
		return fmt.Errorf("plan %s: the needs form a cycle: %s", p.Name, strings.Join(cyc, " → "))
	}
	return nil
}

// cycle returns one cycle of needs, in the order the steps would run
// (first name repeated at the end), or nil.
func (p *Plan) cycle() []string {
	needs := map[string][]string{}
	names := make([]string, 0, len(p.Steps))
	for _, s := range p.Steps {
		needs[s.Name] = s.Needs
		names = append(names, s.Name)
	}
	found := graph.Cycle(names, func(n string) []string { return needs[n] })
	// The walk goes from a step to what it needs: reverse it.
	slices.Reverse(found)
	return found
}

// effectiveNeeds returns the needs the scheduler honours for step i in mode m.
// In phased mode a need on a step of a later phase is dropped: the phased
// design applies everything before it waits for anything.
func (p *Plan) effectiveNeeds(m Mode, i int) []string {
	s := p.Steps[i]
	if m != Phased {
		return s.Needs
	}
	phase := map[string]Phase{}
	for _, t := range p.Steps {
		phase[t.Name] = t.Phase
	}
	var out []string
	for _, n := range s.Needs {
		if phase[n] <= s.Phase {
			out = append(out, n)
		}
	}
	return out
}

// Describe writes the plan as the scheduler sees it in mode m: each step with
// its class, phase and the needs it waits for.
func (p *Plan) Describe(w io.Writer, m Mode) {
	fmt.Fprintf(w, "plan %s, mode %s\n", p.Name, m)
	if len(p.Limits) > 0 {
		var ls []string
		for c, l := range p.Limits {
			ls = append(ls, fmt.Sprintf("%s=%d", c, l))
		}
		slices.Sort(ls)
		fmt.Fprintf(w, "  class limits: %s\n", strings.Join(ls, " "))
	}
	switch m {
	case Sequential:
		fmt.Fprintln(w, "  one step at a time, in this order")
	case Phased:
		fmt.Fprintln(w, "  a barrier after each phase; needs on a later phase are dropped")
	}
	for i, s := range p.Steps {
		needs := p.effectiveNeeds(m, i)
		class := s.Class
		if class == "" {
			class = "-"
		}
		n := "-"
		if len(needs) > 0 {
			n = strings.Join(needs, ", ")
		}
		fmt.Fprintf(w, "  %-28s phase=%-7s class=%-24s needs: %s\n", s.Name, s.Phase, class, n)
	}
	for _, s := range p.Finally {
		when := "always"
		switch {
		case s.OnFailure:
			when = "on failure"
		case s.OnSuccess:
			when = "on success"
		}
		fmt.Fprintf(w, "  %-28s finally (%s)\n", s.Name, when)
	}
}

// priorityOrder lists step indexes by how long a chain of steps waits on
// each (longest first), then in plan order. When several steps could start
// and a class cap lets only some, those on the longest remaining chain go
// first: a critical-path list schedule.
func (p *Plan) priorityOrder() []int {
	dependents := map[string][]string{}
	for _, s := range p.Steps {
		for _, n := range s.Needs {
			dependents[n] = append(dependents[n], s.Name)
		}
	}
	height := map[string]int{}
	var h func(string) int
	h = func(n string) int {
		if v, ok := height[n]; ok {
			return v
		}
		best := 0
		for _, d := range dependents[n] {
			best = max(best, h(d))
		}
		height[n] = best + 1
		return best + 1
	}
	order := make([]int, len(p.Steps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return h(p.Steps[b].Name) - h(p.Steps[a].Name) })
	return order
}
