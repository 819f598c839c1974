package dpdktest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func TestTwoCPUs(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	main, work, err := TwoCPUs(false)
	if err != nil {
		t.Fatal(err)
	}
	if !set.IsSet(main) || !set.IsSet(work) || main > work {
		t.Fatalf("TwoCPUs = %d, %d: not the first two of the affinity mask", main, work)
	}
	if set.Count() >= 2 && main == work {
		t.Fatalf("TwoCPUs = %d twice with %d CPUs allowed", main, set.Count())
	}
	if _, _, err := TwoCPUs(true); (err == nil) != (set.Count() >= 2) {
		t.Fatalf("TwoCPUs(distinct) with %d CPUs: %v", set.Count(), err)
	}
}

func TestLeftovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "poolrelay_dpdktest_x")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if left := Leftovers(dir, "poolrelay_dpdktest_x"); len(left) != 1 || left[0] != dir {
		t.Fatalf("Leftovers = %q, want the runtime directory", left)
	}
	os.Remove(dir)
	if left := Leftovers(dir, "poolrelay_dpdktest_x"); len(left) != 0 {
		t.Fatalf("Leftovers = %q after removal", left)
	}
}

// TestSweepStale leaves the runtime directory of a dead process and of this
// one under a prefix and expects the sweep to remove only the dead one's.
func TestSweepStale(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: " + RuntimeRoot + " is root's")
	}
	const prefix = "poolrelay_dpdktest_sweep_"
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(RuntimeRoot, prefix+strconv.Itoa(cmd.Process.Pid))
	live := filepath.Join(RuntimeRoot, prefix+strconv.Itoa(os.Getpid()))
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
	}
	SweepStale(prefix)
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Fatalf("a dead process's runtime directory survived the sweep: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("the sweep removed a live process's runtime directory: %v", err)
	}
}
