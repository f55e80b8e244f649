// Command sleeper runs until it is told to stop: a workload that becomes
// Ready. `sleeper --version` exits at once, for exec probes; `sleeper
// --unless FILE` fails while FILE exists (a probe a test can break).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println("sleeper 1")
		return
	}
	if len(os.Args) > 2 && os.Args[1] == "--unless" {
		if _, err := os.Stat(os.Args[2]); err == nil {
			fmt.Println(os.Args[2], "exists")
			os.Exit(1)
		}
		return
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, os.Interrupt)
	<-c
}
