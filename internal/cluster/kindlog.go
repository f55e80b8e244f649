package cluster

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	kindlog "sigs.k8s.io/kind/pkg/log"
)

// kindLogger routes kind's user-facing messages to a step's writer, one
// line each, and ends each of kind's "✓ phase" lines with the time the
// phase took (from its "• phase ..." line): where a create's time goes,
// in every create's output.
type kindLogger struct {
	w     io.Writer
	now   func() time.Time
	mu    sync.Mutex
	start time.Time // of the phase under way; zero when none is
}

var _ kindlog.Logger = (*kindLogger)(nil)

func newKindLogger(w io.Writer) *kindLogger { return &kindLogger{w: w, now: time.Now} }

func (l *kindLogger) Warn(m string)             { l.line(m) }
func (l *kindLogger) Warnf(f string, a ...any)  { l.line(fmt.Sprintf(f, a...)) }
func (l *kindLogger) Error(m string)            { l.line(m) }
func (l *kindLogger) Errorf(f string, a ...any) { l.line(fmt.Sprintf(f, a...)) }
func (l *kindLogger) V(v kindlog.Level) kindlog.InfoLogger {
	if v > 0 {
		return kindlog.NoopInfoLogger{}
	}
	return kindInfo{l}
}

type kindInfo struct{ l *kindLogger }

func (i kindInfo) Info(m string)            { i.l.line(m) }
func (i kindInfo) Infof(f string, a ...any) { i.l.line(fmt.Sprintf(f, a...)) }
func (i kindInfo) Enabled() bool            { return true }

// line writes m without the blank line kind's own newline would add, and
// times kind's phases: " • x  ..." starts one, " ✓ x" or " ✗ x" ends it.
func (l *kindLogger) line(m string) {
	m = strings.TrimRight(m, "\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case strings.HasPrefix(m, " • "):
		l.start = l.now()
	case (strings.HasPrefix(m, " ✓ ") || strings.HasPrefix(m, " ✗ ")) && !l.start.IsZero():
		m = fmt.Sprintf("%s  %.1fs", m, l.now().Sub(l.start).Seconds())
		l.start = time.Time{}
	}
	fmt.Fprintln(l.w, m)
}
