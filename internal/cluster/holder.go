package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Holder names a process that made or claimed a cluster: its pid and its
// start time (field 22 of /proc/<pid>/stat, in clock ticks since boot), so
// that a pid the kernel has since given to another process is not taken
// for the holder.
type Holder struct {
	Pid   int
	Start string // "" when unknown (a record written before start times were)
}

var self = sync.OnceValue(func() Holder {
	start, _ := procStart(os.Getpid())
	return Holder{Pid: os.Getpid(), Start: start}
})

// Self is this process as a Holder.
func Self() Holder { return self() }

func (h Holder) String() string { return fmt.Sprintf("pid %d start %s", h.Pid, h.Start) }

// parseHolder reads a record that begins with a Holder's String
// ("pid N start S", or "pid N" of an older record); ok is false when it
// does not.
func parseHolder(s string) (h Holder, ok bool) {
	f := strings.Fields(s)
	if len(f) < 2 || f[0] != "pid" {
		return Holder{}, false
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil || pid <= 0 {
		return Holder{}, false
	}
	h.Pid = pid
	if len(f) >= 4 && f[2] == "start" {
		h.Start = f[3]
	}
	return h, true
}

// Alive reports whether the holder still runs: its pid exists and, when
// the record has one, with the same start time.
func (h Holder) Alive() bool {
	start, ok := procStart(h.Pid)
	return ok && (h.Start == "" || h.Start == start)
}

// procStart reads a process's start time from /proc; ok is false when no
// such process exists.
func procStart(pid int) (string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	// The command name, field 2, is in parentheses and may hold spaces or
	// parentheses itself: count fields from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(s[i+1:])
	const starttime = 22 - 3 // field 22; f[0] is field 3
	if len(f) <= starttime {
		return "", false
	}
	return f[starttime], true
}

// InUse reports whether another process that is still running holds the
// named cluster: the run that claimed it (a warm cluster), or the process
// that made it (a run under way). why says which, for the user. A claim
// whose holder has ended holds nothing: the cluster was left by a killed
// run.
func (s Scope) InUse(name string) (why string, inUse bool) {
	dir, err := s.StateDir(name)
	if err != nil {
		return "", false
	}
	if h, claimed := claimHolder(dir); claimed {
		if h.Pid == 0 {
			return "claimed by a run (its claim is being written)", true
		}
		if h != Self() && h.Alive() {
			return fmt.Sprintf("claimed by a run that is still running (pid %d)", h.Pid), true
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, madeRecord)); err == nil {
		if h, ok := parseHolder(string(b)); ok && h != Self() && h.Alive() {
			return fmt.Sprintf("made by a run that is still running (pid %d)", h.Pid), true
		}
	}
	return "", false
}

// claimHolder reads who claimed the cluster whose state dir is dir;
// claimed is false when nobody did, and h is zero when the claim cannot
// be read yet (being written).
func claimHolder(dir string) (h Holder, claimed bool) {
	b, err := os.ReadFile(filepath.Join(dir, claimFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Holder{}, false
	}
	h, _ = parseHolder(string(b))
	return h, true
}
