package engine

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Analysis is what a timeline says about the limit: the plan's critical path
// (the longest chain of needs, weighted by the measured step durations) and
// the lower bound on the makespan under the class limits.
type Analysis struct {
	CriticalPath []string      `json:"critical_path"`
	PathLength   time.Duration `json:"critical_path_ns"`
	// ClassWork is the total work of each capped class divided by its limit.
	ClassWork map[string]time.Duration `json:"class_work_ns,omitempty"`
	// Bound is the larger of PathLength and every ClassWork: no schedule of
	// this plan with these durations can finish sooner.
	Bound time.Duration `json:"lower_bound_ns"`
	// Efficiency is Bound divided by the run's makespan.
	Efficiency float64 `json:"efficiency"`
}

// Analyze computes the critical path and lower bound from the plan's needs
// (as in dataflow mode, whatever mode ran) and the measured durations.
func (r *Result) Analyze() Analysis {
	a := Analysis{ClassWork: map[string]time.Duration{}}
	idx := map[string]int{}
	for i, s := range r.Steps {
		if !s.Finally {
			idx[s.Name] = i
		}
	}
	// Longest path ending at each step, memoised.
	best := map[string]time.Duration{}
	prev := map[string]string{}
	var longest func(string) time.Duration
	longest = func(n string) time.Duration {
		if d, ok := best[n]; ok {
			return d
		}
		s := r.Steps[idx[n]]
		var top time.Duration
		from := ""
		for _, m := range s.Needs {
			if d := longest(m); from == "" || d > top {
				top, from = d, m
			}
		}
		prev[n] = from
		best[n] = top + s.Duration()
		return best[n]
	}
	var end string
	for _, s := range r.Steps {
		if s.Finally {
			continue
		}
		if d := longest(s.Name); d > a.PathLength || end == "" {
			a.PathLength, end = d, s.Name
		}
	}
	for n := end; n != ""; n = prev[n] {
		a.CriticalPath = append([]string{n}, a.CriticalPath...)
	}
	a.Bound = a.PathLength
	for class, limit := range r.Limits {
		var sum time.Duration
		for _, s := range r.Steps {
			if s.Class == class && !s.Finally {
				sum += s.Duration()
			}
		}
		if sum == 0 {
			continue
		}
		w := sum / time.Duration(limit)
		a.ClassWork[class] = w
		if w > a.Bound {
			a.Bound = w
		}
	}
	if r.Makespan > 0 {
		a.Efficiency = float64(a.Bound) / float64(r.Makespan)
	}
	return a
}

// WriteGantt prints the timeline as text bars, then the analysis.
func (r *Result) WriteGantt(w io.Writer) {
	const width = 50
	total := r.Total
	if total <= 0 {
		total = 1
	}
	name := 0
	for _, s := range r.Steps {
		name = max(name, len([]rune(s.Name)))
	}
	fmt.Fprintf(w, "timeline of %s (mode %s)\n", r.Plan, r.Mode)
	for _, s := range r.Steps {
		from := int(int64(width) * int64(s.Start) / int64(total))
		to := int(int64(width) * int64(s.End) / int64(total))
		if to <= from {
			to = from + 1
		}
		to = min(to, width)
		from = min(from, to-1)
		bar := strings.Repeat(" ", from) + strings.Repeat("█", to-from) + strings.Repeat(" ", width-to)
		if s.State == Skipped {
			bar = strings.Repeat(" ", width)
		}
		fmt.Fprintf(w, "  %-*s |%s| %s %7s\n", name, s.Name, bar, s.State.Symbol(), fmtDur(s.Duration()))
	}
	a := r.Analyze()
	fmt.Fprintf(w, "  makespan %s, total with finally steps %s\n", fmtDur(r.Makespan), fmtDur(r.Total))
	fmt.Fprintf(w, "  critical path %s: %s\n", fmtDur(a.PathLength), strings.Join(a.CriticalPath, " → "))
	for _, c := range slices.Sorted(maps.Keys(a.ClassWork)) {
		fmt.Fprintf(w, "  class %s: work %s at limit %d\n", c, fmtDur(a.ClassWork[c]), r.Limits[c])
	}
	fmt.Fprintf(w, "  lower bound %s, efficiency %.2f\n", fmtDur(a.Bound), a.Efficiency)
}

// WriteJSON writes the timeline and its analysis.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*Result
		Analysis Analysis `json:"analysis"`
	}{r, r.Analyze()})
}

// WriteSVG draws the timeline as a Gantt chart.
func (r *Result) WriteSVG(w io.Writer) error {
	const (
		left, barW, rowH, top = 260, 640, 22, 30
	)
	total := r.Total
	if total <= 0 {
		total = 1
	}
	colors := map[State]string{Done: "#4c9a2a", Failed: "#c62828", Canceled: "#9e9e9e", Skipped: "#e0e0e0"}
	crit := map[string]bool{}
	for _, n := range r.Analyze().CriticalPath {
		crit[n] = true
	}
	h := top + rowH*len(r.Steps) + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="monospace" font-size="12">`+"\n", left+barW+90, h)
	fmt.Fprintf(&b, `<text x="4" y="18">%s — mode %s — makespan %s</text>`+"\n", html.EscapeString(r.Plan), r.Mode, fmtDur(r.Makespan))
	for i, s := range r.Steps {
		y := top + i*rowH
		x := left + int(int64(barW)*int64(s.Start)/int64(total))
		bw := max(1, int(int64(barW)*int64(s.Duration())/int64(total)))
		stroke := ""
		if crit[s.Name] {
			stroke = ` stroke="#000" stroke-width="2"`
		}
		fmt.Fprintf(&b, `<text x="4" y="%d">%s</text>`+"\n", y+15, html.EscapeString(s.Name))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"%s><title>%s %s %s</title></rect>`+"\n",
			x, y+3, bw, rowH-6, colors[s.State], stroke, html.EscapeString(s.Name), s.State, fmtDur(s.Duration()))
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x+bw+4, y+15, fmtDur(s.Duration()))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Save writes timeline.json and timeline.svg into dir and returns their paths.
func (r *Result) Save(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{{"timeline.json", r.WriteJSON}, {"timeline.svg", r.WriteSVG}} {
		name, write := f.name, f.write
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			return nil, err
		}
		werr := write(f)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, fmt.Errorf("writing %s: %w", p, werr)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// WriteMermaid writes the timeline as a mermaid gantt chart (GitHub renders
// it in a step summary); steps on the critical path are marked crit.
func (r *Result) WriteMermaid(w io.Writer) {
	crit := map[string]bool{}
	for _, n := range r.Analyze().CriticalPath {
		crit[n] = true
	}
	fmt.Fprintf(w, "```mermaid\ngantt\n  title %s (%s), makespan %s\n  dateFormat x\n  axisFormat %%M:%%S\n  section steps\n", r.Plan, r.Mode, fmtDur(r.Makespan))
	for _, s := range r.Steps {
		if s.State == Skipped {
			continue
		}
		tags := []string{}
		switch {
		case s.State == Failed:
			tags = append(tags, "crit")
		case crit[s.Name]:
			tags = append(tags, "active")
		default:
			tags = append(tags, "done")
		}
		name := strings.NewReplacer(":", " ", "#", " ").Replace(s.Name)
		fmt.Fprintf(w, "  %s :%s, %d, %d\n", name, strings.Join(tags, ","), s.Start.Milliseconds(), max(s.End.Milliseconds(), s.Start.Milliseconds()+1))
	}
	fmt.Fprintln(w, "```")
}
