package testbed

import (
	"context"
	"fmt"
	"sync"

	"github.com/testbed-dev/testbed/internal/images"
)

// processOnce is what the runs of one process do once between them,
// whichever run asks first: e2e:all builds datastorage's image once for
// seven environments, bakes a node image once, creates its one cluster
// once and loads each image into it once.
type processOnce struct {
	images onceMap[images.Built] // images built and node images baked
	steps  onceMap[struct{}]     // one clusters created, images loaded into them
}

// initOnce gives a Testbed not made by New its processOnce, before its
// runs start (All and Warm call it; a lone run makes its own).
func (t *Testbed) initOnce() {
	if t.once == nil {
		t.once = &processOnce{}
	}
}

// onceMap runs a function once per key and hands its result to every
// later caller. A call that failed or was canceled is not remembered: a
// later caller tries again.
type onceMap[V any] struct {
	mu    sync.Mutex
	calls map[string]*onceCall[V]
}

type onceCall[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// do runs fn for key once; later callers wait for its result and get it
// too (reused is true for them).
func (m *onceMap[V]) do(ctx context.Context, key string, fn func() (V, error)) (v V, reused bool, err error) {
	m.mu.Lock()
	if m.calls == nil {
		m.calls = map[string]*onceCall[V]{}
	}
	if c, ok := m.calls[key]; ok {
		m.mu.Unlock()
		select {
		case <-c.done:
			if c.err == nil {
				return c.val, true, nil
			}
			return m.do(ctx, key, fn)
		case <-ctx.Done():
			return v, false, ctx.Err()
		}
	}
	c := &onceCall[V]{done: make(chan struct{})}
	m.calls[key] = c
	m.mu.Unlock()
	// Every path closes done, a panicking fn too (the panic goes on to
	// the engine, which makes it the step's error): the other callers
	// would wait for it forever.
	defer func() {
		if c.err != nil {
			m.mu.Lock()
			delete(m.calls, key)
			m.mu.Unlock()
		}
		close(c.done)
	}()
	c.err = fmt.Errorf("%s panicked", key) // until fn returns
	c.val, c.err = fn()
	return c.val, false, c.err
}

// forget drops what key's call returned (not a call in flight): the next
// caller runs fn again. e2e:watch forgets an image whose inputs changed.
func (m *onceMap[V]) forget(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.calls[key]; ok {
		select {
		case <-c.done:
			delete(m.calls, key)
		default:
		}
	}
}

// lazy is a value made on first use outside any lock, so that a slow make
// (a ping, a docker exec) holds up no other step: two callers at once may
// both make one, and the one that comes second is discarded. A failed make
// is not remembered.
type lazy[T any] struct {
	mu  sync.Mutex
	set bool
	v   T
}

// get returns the value, made by mk on first use; discard (when not nil)
// gets a value made by a caller that lost the race.
func (l *lazy[T]) get(mk func() (T, error), discard func(T)) (T, error) {
	if v, ok := l.peek(); ok {
		return v, nil
	}
	v, err := mk()
	if err != nil {
		return v, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.set {
		if discard != nil {
			discard(v)
		}
		return l.v, nil
	}
	l.v, l.set = v, true
	return v, nil
}

// peek returns the value if it was made.
func (l *lazy[T]) peek() (T, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.v, l.set
}

// put sets the value, as if made.
func (l *lazy[T]) put(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.v, l.set = v, true
}
