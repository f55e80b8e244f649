package testbed

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/testbed-dev/testbed/internal/images"
)

func TestOnceMapRunsOnceForConcurrentCallers(t *testing.T) {
	var m onceMap[images.Built]
	var calls atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]images.Built, 5)
	shared := make([]bool, 5)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], shared[i], _ = m.do(context.Background(), "datastorage", func() (images.Built, error) {
				calls.Add(1)
				<-release
				return images.Built{Ref: "testbed/datastorage:abc"}, nil
			})
		}()
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("built %d times", calls.Load())
	}
	nShared := 0
	for i := range 5 {
		if results[i].Ref != "testbed/datastorage:abc" {
			t.Errorf("caller %d got %+v", i, results[i])
		}
		if shared[i] {
			nShared++
		}
	}
	if nShared != 4 {
		t.Errorf("%d callers shared the build, want 4", nShared)
	}
}

func TestOnceMapForgetsFailures(t *testing.T) {
	var m onceMap[images.Built]
	_, _, err := m.do(context.Background(), "x", func() (images.Built, error) { return images.Built{}, errors.New("compile error") })
	if err == nil {
		t.Fatal("want the failure")
	}
	res, shared, err := m.do(context.Background(), "x", func() (images.Built, error) { return images.Built{Ref: "ok"}, nil })
	if err != nil || shared || res.Ref != "ok" {
		t.Errorf("retry after failure: %+v %v %v", res, shared, err)
	}
}

// TestOnceMapSurvivesAPanickingCall: a build that panics (the engine
// turns a step's panic into its error) still releases the callers waiting
// for it, who then build for themselves.
func TestOnceMapSurvivesAPanickingCall(t *testing.T) {
	var m onceMap[images.Built]
	started := make(chan struct{})
	go func() {
		defer func() { _ = recover() }()
		_, _, _ = m.do(context.Background(), "x", func() (images.Built, error) {
			close(started)
			time.Sleep(50 * time.Millisecond) // the second caller waits meanwhile
			panic("compiler crashed")
		})
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, shared, err := m.do(ctx, "x", func() (images.Built, error) { return images.Built{Ref: "ok"}, nil })
	if err != nil || shared || res.Ref != "ok" {
		t.Errorf("after a panicking build: %+v shared=%v %v (want its own build)", res, shared, err)
	}
}
