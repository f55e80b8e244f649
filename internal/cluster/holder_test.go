package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ended starts a process and waits for it to end: a Holder that no longer
// runs.
func ended(t *testing.T) Holder {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	start, ok := procStart(pid)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if !ok {
		start = "1" // it ended before its start could be read
	}
	return Holder{Pid: pid, Start: start}
}

// running starts a process that runs until the test ends.
func running(t *testing.T) (Holder, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	start, ok := procStart(cmd.Process.Pid)
	if !ok {
		t.Fatalf("no /proc entry for the running pid %d", cmd.Process.Pid)
	}
	return Holder{Pid: cmd.Process.Pid, Start: start}, cmd
}

func TestHolderAliveAndParse(t *testing.T) {
	if !Self().Alive() || Self().Start == "" {
		t.Fatalf("this process, %v, is not alive or has no start time", Self())
	}
	if h := ended(t); h.Alive() {
		t.Errorf("%v ended but is alive", h)
	}
	// The same pid with another start time is another process.
	if h := (Holder{Pid: Self().Pid, Start: Self().Start + "0"}); h.Alive() {
		t.Errorf("%v (a reused pid) is alive", h)
	}
	for rec, want := range map[string]Holder{
		Self().String() + " at 2026-12-05T03:00:00Z\n": Self(),
		"pid 42 at 2026-12-05T03:00:00Z\n":             {Pid: 42}, // before start times
		"42\n":                                         {},
		"":                                             {},
	} {
		h, ok := parseHolder(rec)
		if h != want || ok != (want.Pid != 0) {
			t.Errorf("parseHolder(%q) = %v, %v; want %v", rec, h, ok, want)
		}
	}
}

// TestInUseAsksWhetherTheHolderRuns: a cluster made or claimed by a
// process that runs is in use; once that process has ended, it is not.
func TestInUseAsksWhetherTheHolderRuns(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	name := testScope.Prefix() + "inuse"
	live, cmd := running(t)
	if err := testScope.RecordMadeBy(name, live); err != nil {
		t.Fatal(err)
	}
	if why, in := testScope.InUse(name); !in || !strings.Contains(why, "made by a run") {
		t.Errorf("made by the running %v: InUse = %q, %v; want in use", live, why, in)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if why, in := testScope.InUse(name); in {
		t.Errorf("made by %v, which has ended: InUse = %q, %v; want not", live, why, in)
	}

	// A claim: by a running process, then by one that ended.
	dir, _ := testScope.StateDir(name)
	claimer, cmd := running(t)
	if err := os.WriteFile(filepath.Join(dir, claimFile), []byte(claimer.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if why, in := testScope.InUse(name); !in || !strings.Contains(why, "claimed") {
		t.Errorf("claimed by the running %v: InUse = %q, %v; want in use", claimer, why, in)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if why, in := testScope.InUse(name); in {
		t.Errorf("claimed by %v, which has ended: InUse = %q, %v; want not", claimer, why, in)
	}
}

// TestWarmIsListedOnlyAfterItsPause: while the pause runs no run can see
// (and claim) the warm cluster; a pause that fails publishes nothing; a
// claim whose claimer ended is listed as abandoned.
func TestWarmIsListedOnlyAfterItsPause(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	name := testScope.WarmName("svc")
	w := Warm{Name: name, Service: "svc", Shape: "s", Made: time.Now()}
	seen := -1
	err := testScope.publishWarm(w, func() error {
		l, err := testScope.ListWarm("svc")
		seen = len(l)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != 0 {
		t.Errorf("during the pause ListWarm found %d warm clusters; want none", seen)
	}
	if l, _ := testScope.ListWarm("svc"); len(l) != 1 || l[0].Claimed {
		t.Fatalf("after the pause ListWarm = %+v; want the one, unclaimed", l)
	}

	failed := testScope.WarmName("svc")
	if err := testScope.publishWarm(Warm{Name: failed, Service: "svc"}, func() error { return errors.New("unable to freeze") }); err == nil {
		t.Error("a failed pause: publishWarm returned no error")
	}
	if l, _ := testScope.ListWarm("svc"); len(l) != 1 {
		t.Errorf("after a failed pause ListWarm = %+v; want only the first", l)
	}

	dir, _ := testScope.StateDir(name)
	if err := os.WriteFile(filepath.Join(dir, claimFile), []byte(ended(t).String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l, _ := testScope.ListWarm("svc"); len(l) != 1 || !l[0].Claimed || !l[0].Abandoned {
		t.Errorf("claimed by a process that ended: ListWarm = %+v; want claimed and abandoned", l)
	}
}

// TestClaimOfAGoneClusterIsClaimedByAnother: a warm cluster discarded or
// pruned by another process between the listing and the claim.
func TestClaimOfAGoneClusterIsClaimedByAnother(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	if _, err := testScope.Claim(testScope.WarmName("svc")); !errors.Is(err, ErrClaimed) {
		t.Errorf("claiming a cluster whose state dir is gone: %v; want ErrClaimed", err)
	}
}

// TestCreateInTheWayOfALiveRunSaysWait: a second run of a service finds
// the first one's cluster; while the first runs, the refusal tells the
// user to wait (ErrBusy), not to delete it; once it has ended, deleting is
// the remedy again.
func TestCreateInTheWayOfALiveRunSaysWait(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	name := testScope.NameFor("busy")
	live, cmd := running(t)
	if err := testScope.RecordMadeBy(name, live); err != nil {
		t.Fatal(err)
	}
	c, err := testScope.Open(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.existsError("busy")
	if !errors.Is(err, ErrExists) || !errors.Is(err, ErrBusy) || strings.Contains(err.Error(), "cluster:delete") || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", live.Pid)) {
		t.Errorf("made by the running %v: %v; want ErrExists and ErrBusy, naming the pid, no delete command", live, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	err = c.existsError("busy")
	if !errors.Is(err, ErrExists) || errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "cluster:delete busy") {
		t.Errorf("made by %v, which has ended: %v; want ErrExists with cluster:delete busy", live, err)
	}
}
