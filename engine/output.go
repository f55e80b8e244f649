package engine

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// Style chooses how step output is framed.
type Style int

const (
	// Plain prints a line when a step starts and its whole block when it ends.
	Plain Style = iota
	// GitHub puts each block inside ::group::/::endgroup:: (GitHub Actions).
	GitHub
	// Live keeps a status line of the running steps at the bottom of a terminal.
	Live
)

// Symbol is the one-character mark of a state.
func (s State) Symbol() string {
	switch s {
	case Done:
		return "✓"
	case Failed:
		return "✗"
	case Canceled:
		return "⊘"
	}
	return "·"
}

// stepBuffer is a step's own writer; steps may write from several goroutines.
type stepBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *stepBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *stepBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

// printer writes whole blocks to one writer so that parallel steps never
// interleave, and under Live redraws a status line of the running steps.
type printer struct {
	mu      sync.Mutex
	w       io.Writer
	style   Style
	now     func() time.Time
	bufs    map[string]*stepBuffer
	started map[string]time.Time
	stop    chan struct{}
	stopped chan struct{}
	status  bool // a status line is on screen
	// progress gets a line per step start and end (Options.Progress).
	progress io.Writer
}

func newPrinter(w io.Writer, style Style, now func() time.Time) *printer {
	if w == nil {
		w = io.Discard
	}
	p := &printer{w: w, style: style, now: now, bufs: map[string]*stepBuffer{}, started: map[string]time.Time{}}
	if style == Live {
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		go p.tick()
	}
	return p
}

func (p *printer) tick() {
	defer close(p.stopped)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.redraw()
			p.mu.Unlock()
		}
	}
}

func (p *printer) close() {
	if p.stop != nil {
		close(p.stop)
		<-p.stopped
		p.mu.Lock()
		p.clearStatus()
		p.mu.Unlock()
	}
}

// redraw replaces the status line; the caller holds mu.
func (p *printer) redraw() {
	names := make([]string, 0, len(p.started))
	for n := range p.started {
		names = append(names, n)
	}
	slices.Sort(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %s", n, fmtDur(p.now().Sub(p.started[n]))))
	}
	p.clearStatus()
	if len(parts) > 0 {
		fmt.Fprintf(p.w, "⋯ running: %s", strings.Join(parts, " · "))
		p.status = true
	}
}

func (p *printer) clearStatus() {
	if p.status {
		fmt.Fprint(p.w, "\r\033[K")
		p.status = false
	}
}

func (p *printer) begin(name string, at time.Time) io.Writer {
	b := &stepBuffer{}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bufs[name] = b
	p.started[name] = at
	if p.progress != nil {
		fmt.Fprintf(p.progress, "▶ %s\n", name)
	}
	switch p.style {
	case Live:
		p.redraw()
	default:
		fmt.Fprintf(p.w, "▶ %s\n", name)
	}
	return b
}

func (p *printer) end(name string, st State, d time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	body := p.bufs[name].take()
	delete(p.bufs, name)
	delete(p.started, name)
	p.clearStatus()
	head := fmt.Sprintf("%s %s (%s)", st.Symbol(), name, fmtDur(d))
	if st != Done && err != nil {
		head += ": " + FirstLine(err.Error())
	}
	if p.progress != nil {
		fmt.Fprintln(p.progress, head)
	}
	body = strings.TrimRight(body, "\n")
	if p.style == GitHub {
		if body == "" {
			fmt.Fprintln(p.w, head)
		} else {
			fmt.Fprintf(p.w, "::group::%s\n%s\n::endgroup::\n", head, body)
		}
	} else {
		fmt.Fprintf(p.w, "┌ %s\n", name)
		if body != "" {
			for _, l := range strings.Split(body, "\n") {
				fmt.Fprintf(p.w, "│ %s\n", l)
			}
		}
		fmt.Fprintf(p.w, "└ %s\n", head)
	}
	if st == Failed && err != nil && strings.Contains(err.Error(), "\n") {
		fmt.Fprintf(p.w, "%s\n", err)
	}
	if p.style == Live {
		p.redraw()
	}
}

// FirstLine is s up to its first newline, marked " …" when cut.
func FirstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func fmtDur(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// skip reports a finally step that did not run, and why.
func (p *printer) skip(name, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearStatus()
	fmt.Fprintf(p.w, "%s %s: %s\n", Skipped.Symbol(), name, why)
	if p.style == Live {
		p.redraw()
	}
}
