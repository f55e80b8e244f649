// Command heavywork is the work of a heavy image build (bench:setup
// heavy): it runs in a Dockerfile's build stage and keeps every core busy
// for a fixed amount of work, as a compiler does, then writes /result.
// WORK_GIB (default 1) is the amount: GiB hashed with SHA-256, split
// across the cores. It needs no shell, so the stage can be FROM scratch.
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

func main() {
	gib := 1.0
	if v := os.Getenv("WORK_GIB"); v != "" {
		var err error
		if gib, err = strconv.ParseFloat(v, 64); err != nil || gib <= 0 {
			fmt.Fprintf(os.Stderr, "heavywork: WORK_GIB=%q: want a positive number\n", v)
			os.Exit(2)
		}
	}
	out := "/result"
	if len(os.Args) > 1 {
		out = os.Args[1]
	}
	t0 := time.Now()
	n := runtime.NumCPU()
	blocks := int(gib * 1024) // 1 MiB blocks
	sums := make([][32]byte, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			buf := make([]byte, 1<<20)
			h := sha256.New()
			for i := w; i < blocks; i += n {
				buf[0], buf[1] = byte(i), byte(i>>8)
				h.Write(buf)
			}
			copy(sums[w][:], h.Sum(nil))
		})
	}
	wg.Wait()
	f := sha256.New()
	for _, s := range sums {
		f.Write(s[:])
	}
	msg := fmt.Sprintf("%x: %.1f GiB on %d cores in %s\n", f.Sum(nil), gib, n, time.Since(t0).Round(time.Millisecond))
	if err := os.WriteFile(out, []byte(msg), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "heavywork:", err)
		os.Exit(1)
	}
	fmt.Print(msg)
}
