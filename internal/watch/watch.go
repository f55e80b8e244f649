// Package watch tells when the files a set of paths names change. It polls
// their modification times and sizes (no inotify watch to run out of: a
// kind node already holds about 30 instances) and reports a change once
// the files have been still for one interval, with the time of the save:
// the newest modification time among the changed files.
package watch

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/testbed-dev/testbed/internal/affected"
)

// Stamp is what tells a file changed.
type Stamp struct {
	ModTime time.Time
	Size    int64
	Mode    fs.FileMode
}

// Files maps each file (slash-separated, relative to the root) to its stamp.
type Files map[string]Stamp

// Scan lists the files under root that paths name, with their stamps. A
// path that does not exist names no file (yet).
func Scan(root string, paths []affected.Path) (Files, error) {
	out := Files{}
	for _, p := range paths {
		if err := scanPath(root, p, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func scanPath(root string, p affected.Path, out Files) error {
	abs := filepath.Join(root, filepath.FromSlash(p.Name))
	if !p.Dir {
		return stamp(out, p.Name, abs)
	}
	if !p.Recursive {
		entries, err := os.ReadDir(abs)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, e := range entries {
			if name := filepath.ToSlash(filepath.Join(p.Name, e.Name())); !e.IsDir() && p.Match(name) {
				if err := stamp(out, name, filepath.Join(abs, e.Name())); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := filepath.WalkDir(abs, func(file string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walked
		}
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, file)
		if err != nil {
			return err
		}
		return stamp(out, filepath.ToSlash(rel), file)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func stamp(out Files, name, abs string) error {
	fi, err := os.Lstat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	out[name] = Stamp{ModTime: fi.ModTime(), Size: fi.Size(), Mode: fi.Mode()}
	return nil
}

// Diff lists, sorted, the files added, removed or changed from a to b.
func Diff(a, b Files) []string {
	var out []string
	for name, sa := range a {
		if sb, ok := b[name]; !ok || sb != sa {
			out = append(out, name)
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Change is what changed since the last one reported.
type Change struct {
	Files []string
	// Saved is the newest modification time among the changed files, or
	// when the change was seen if only removals make it.
	Saved time.Time
	Seen  time.Time
}

// Poller scans its paths every Interval and reports changes. Start may
// be called again, while Next waits, to watch other paths.
type Poller struct {
	Root string
	// Interval is 50 ms when zero: a save waits for the next scan, and
	// each scan stats every watched file (about 1 ms for gateway's 32: 2 %
	// of a core while the watch idles).
	Interval time.Duration
	// Quiet is how long the files must stay as they are before a change
	// is reported: an editor's save of several files, or a write then a
	// rename, is one change. 50 ms when zero.
	Quiet time.Duration

	mu    sync.Mutex
	paths []affected.Path
	last  Files
	gen   int // counts Starts: a change seen under other paths is dropped
}

// Start watches paths, taking the scan Next reports changes from.
func (p *Poller) Start(paths []affected.Path) error {
	f, err := Scan(p.Root, paths)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paths, p.last = paths, f
	p.gen++
	return err
}

// Len is how many files the last scan found.
func (p *Poller) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.last)
}

func (p *Poller) state() ([]affected.Path, Files, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paths, p.last, p.gen
}

// Next waits for a change to the files and returns it once they have
// stayed as they are for Quiet.
func (p *Poller) Next(ctx context.Context) (Change, error) {
	every := p.Interval
	if every <= 0 {
		every = 50 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	quiet := p.Quiet
	if quiet <= 0 {
		quiet = 50 * time.Millisecond
	}
	var pending Files // the scan the files last changed in
	var since time.Time
	pendingGen := 0
	for {
		select {
		case <-ctx.Done():
			return Change{}, ctx.Err()
		case <-tick.C:
		}
		paths, last, gen := p.state()
		if gen != pendingGen {
			pending, pendingGen = nil, gen
		}
		now, err := Scan(p.Root, paths)
		if err != nil {
			return Change{}, err
		}
		switch {
		case pending == nil && len(Diff(last, now)) == 0:
			continue
		case pending == nil || len(Diff(pending, now)) > 0:
			pending, since = now, time.Now() // changed, or still changing
			continue
		case time.Since(since) < quiet:
			continue
		}
		files := Diff(last, now)
		if len(files) == 0 { // changed back
			pending = nil
			continue
		}
		c := Change{Files: files, Seen: time.Now()}
		for _, f := range files {
			if s, ok := now[f]; ok && s.ModTime.After(c.Saved) {
				c.Saved = s.ModTime
			}
		}
		if c.Saved.IsZero() {
			c.Saved = c.Seen
		}
		p.mu.Lock()
		stale := p.gen != gen
		if !stale {
			p.last = maps.Clone(now)
		}
		p.mu.Unlock()
		if stale {
			pending = nil
			continue
		}
		return c, nil
	}
}
