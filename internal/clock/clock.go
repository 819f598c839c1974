// Package clock is the injected source of time, the one Clock of the
// project: every decision that depends on time (the ledger's forgiveness,
// choke grace, score decay, class ticks, cheque dates and retries; the
// handshake's cookies and rekeys; the control core's and the end node's
// timers; neighbour resolution; configuration confirmation deadlines) reads
// a Clock, so tests run on fake time and never sleep.
package clock

import (
	"sync"
	"time"
)

// Clock tells the current time.
type Clock interface {
	Now() time.Time
}

// System is the real clock.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// Fake is a manually driven clock for tests. It is safe for concurrent use;
// its zero value is not usable, build one with NewFake.
type Fake struct {
	mu  sync.Mutex
	now time.Time
}

// NewFake returns a fake clock reading start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the fake time forward by d (backward if d is negative, which
// tests use to model a wall clock stepped back).
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// Set moves the fake time to t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}
