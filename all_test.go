package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAllPrinterShowsProgressAndWholeBlocks drives the printer of e2e:all as
// two services running at once do: their step lines come out as they are
// written, prefixed by the service, and each service's output comes out
// whole when it ends; under GitHub Actions, as one group per service.
func TestAllPrinterShowsProgressAndWholeBlocks(t *testing.T) {
	for _, github := range []bool{false, true} {
		var out bytes.Buffer
		p := &allPrinter{w: &out, github: github}
		a, b := p.progress("a"), p.progress("b")
		fmt.Fprint(a, "▶ build a\n")
		fmt.Fprint(b, "▶ create ")        // a partial line is held
		fmt.Fprint(a, "✓ build a (1s)\n") // until its end comes
		fmt.Fprint(b, "cluster\n")
		p.block("a", "line 1\nline 2\n", true, 2*time.Second)
		fmt.Fprint(b, "✗ create cluster (3s): boom\n")
		p.block("b", "only line\n", false, 3*time.Second)
		want := "[a] ▶ build a\n[a] ✓ build a (1s)\n[b] ▶ create cluster\n" +
			"┌ a\n│ line 1\n│ line 2\n└ ✓ a (2s)\n" +
			"[b] ✗ create cluster (3s): boom\n" +
			"┌ b\n│ only line\n└ ✗ b (3s)\n"
		if github {
			want = "[a] ▶ build a\n[a] ✓ build a (1s)\n[b] ▶ create cluster\n" +
				"::group::✓ a (2s)\nline 1\nline 2\n::endgroup::\n" +
				"[b] ✗ create cluster (3s): boom\n" +
				"::group::✗ b (3s)\nonly line\n::endgroup::\n"
		}
		if out.String() != want {
			t.Errorf("github=%v:\n%s\nwant:\n%s", github, out.String(), want)
		}
	}
}

// TestAllPrinterLinesNeverInterleave writes many lines from many services at
// once, in pieces: every printed line is one whole line of one service.
func TestAllPrinterLinesNeverInterleave(t *testing.T) {
	var out bytes.Buffer
	p := &allPrinter{w: &out}
	var wg sync.WaitGroup
	for s := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := fmt.Sprint("svc", s)
			w := p.progress(svc)
			for i := range 100 {
				fmt.Fprintf(w, "step %s-%d", svc, i)
				fmt.Fprint(w, " ends\n")
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		var svc, rest string
		if _, err := fmt.Sscanf(l, "[%s %s", &svc, &rest); err != nil || !strings.HasPrefix(l, "["+strings.TrimSuffix(svc, "]")+"] step "+strings.TrimSuffix(svc, "]")+"-") || !strings.HasSuffix(l, " ends") {
			t.Fatalf("mixed line %q", l)
		}
	}
}

// TestEachServiceStartsTheNextWhenASuiteEnds: with one slot, the second
// service starts once the first releases its slot (its suite ended),
// while the first is still tearing down; and no more than one is ever
// between start and release.
func TestEachServiceStartsTheNextWhenASuiteEnds(t *testing.T) {
	started := make(chan string, 3)
	teardown := make(chan struct{})
	var mu sync.Mutex
	active, most := 0, 0
	done := make(chan error, 1)
	go func() {
		done <- eachService(context.Background(), []string{"a", "b", "c"}, 1, func(ctx context.Context, i int, svc string, release func()) error {
			mu.Lock()
			active++
			most = max(most, active)
			mu.Unlock()
			started <- svc
			mu.Lock()
			active--
			mu.Unlock()
			release() // the suite ended
			if svc == "a" {
				<-teardown // a's teardown outlasts b's start
			}
			return nil
		})
	}()
	for _, want := range []string{"a", "b", "c"} {
		select {
		case got := <-started:
			if got != want {
				t.Fatalf("started %s, want %s", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not start while a was tearing down: the slot is held until the run returns", want)
		}
	}
	close(teardown)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if most != 1 {
		t.Errorf("%d services between start and suite end at once, want at most 1", most)
	}
}

func TestEachServiceFailingFastStartsNoMore(t *testing.T) {
	var n atomic.Int32
	err := eachService(context.Background(), []string{"a", "b", "c"}, 1, func(ctx context.Context, i int, svc string, release func()) error {
		n.Add(1)
		return errors.New(svc + " failed")
	})
	if err == nil || n.Load() != 1 {
		t.Errorf("err %v, %d started: want a's failure and nothing started after it", err, n.Load())
	}
}
