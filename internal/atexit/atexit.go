// Package atexit holds what must be undone however the process ends: a
// command layer that exits at once (a second Ctrl-C) runs these first, so
// no process group or temporary directory of a step outlives it.
package atexit

import (
	"maps"
	"slices"
	"sync"
)

var (
	mu    sync.Mutex
	next  int
	funcs = map[int]func(){}
)

// Register adds f; the returned func removes it (call it once the step has
// undone the thing itself).
func Register(f func()) (unregister func()) {
	mu.Lock()
	defer mu.Unlock()
	id := next
	next++
	funcs[id] = f
	return func() {
		mu.Lock()
		defer mu.Unlock()
		delete(funcs, id)
	}
}

// Run runs and removes every registered func, the most recent first.
func Run() {
	mu.Lock()
	ids := slices.Sorted(maps.Keys(funcs))
	fs := make([]func(), 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		fs = append(fs, funcs[ids[i]])
		delete(funcs, ids[i])
	}
	mu.Unlock()
	for _, f := range fs {
		f()
	}
}
