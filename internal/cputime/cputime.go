// Package cputime reads the calling thread's CPU time (Thread) and lets
// benchmarks report it per operation ("cpu-ns/op") beside Go's wall-clock
// ns/op (Meter): the one thread CPU clock of the tests and benchmarks. On a
// machine shared with other builds, wall time per operation includes the
// time the benchmark waited for a core; thread CPU time does not, so it is
// the figure that stays put from run to run.
package cputime

import (
	"runtime"
	"testing"
	"time"
)

// Meter measures one benchmark function's thread CPU time.
type Meter struct {
	total   time.Duration
	mark    time.Duration
	running bool
	ok      bool
}

// Start locks the calling goroutine to its thread (so the thread's CPU time
// is the benchmark's) and starts measuring. Call Report before returning.
func Start() *Meter {
	runtime.LockOSThread()
	t, ok := Thread()
	return &Meter{mark: t, running: true, ok: ok}
}

// Pause stops counting, around set-up work that b.StopTimer excludes.
func (m *Meter) Pause() {
	if m.running {
		t, _ := Thread()
		m.total += t - m.mark
		m.running = false
	}
}

// Resume counts again after Pause.
func (m *Meter) Resume() {
	if !m.running {
		m.mark, _ = Thread()
		m.running = true
	}
}

// Report adds the cpu-ns/op metric to b and unlocks the thread. Work done
// on other threads (the garbage collector's background marking) is not
// counted; the hot paths measured with it do not allocate.
func (m *Meter) Report(b *testing.B) {
	defer runtime.UnlockOSThread()
	m.Pause()
	if !m.ok || b.N == 0 {
		return
	}
	b.ReportMetric(float64(m.total)/float64(b.N), "cpu-ns/op")
}
