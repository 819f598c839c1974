package cputime

import (
	"runtime"
	"testing"
	"time"
)

func TestThreadTimeAdvances(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("thread CPU time is read on Linux only")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a, ok := Thread()
	if !ok {
		t.Fatal("no thread CPU time")
	}
	// Spin for 50 ms of wall time: the thread must be charged for some of
	// it, and never for more than the wall time plus clock granularity.
	start := time.Now()
	x := 0
	for time.Since(start) < 50*time.Millisecond {
		x++
	}
	b, _ := Thread()
	if d := b - a; d <= 0 || d > time.Since(start)+10*time.Millisecond {
		t.Fatalf("thread time advanced by %v over %v of spinning (%d)", d, time.Since(start), x)
	}
	// Sleeping costs no CPU.
	c, _ := Thread()
	time.Sleep(30 * time.Millisecond)
	d, _ := Thread()
	if d-c > 10*time.Millisecond {
		t.Fatalf("sleeping 30 ms was charged %v of CPU", d-c)
	}
}
