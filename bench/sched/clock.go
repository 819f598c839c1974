package main

import (
	"fmt"
	"runtime"
	"time"

	"github.com/poolrelay/poolrelay/internal/cputime"
)

// A clock reads nanoseconds since it was started; the simulation drives the
// scheduler and timestamps frames with it.
type clock func() int64

// stallClock wraps a clock read once per loop iteration. An iteration does a
// few microseconds of work at most, so a gap longer than limit is the
// machine taking the core away (a neighbour, the hypervisor, an interrupt),
// not the scheduler: the wrapper removes it, advancing the clock by one
// nominal iteration instead, and counts it. On an isolated DPDK core these
// stalls do not happen; on a shared machine they would otherwise decide
// every p99. A limit of 0 keeps them.
type stallClock struct {
	read          clock
	limit         int64
	last, removed int64 // last raw reading; ns removed so far
	stalls        int
}

// newStallClock returns the clock o names (newClock) with o's stall limit,
// and the function that releases it.
func newStallClock(o options) (*stallClock, func(), error) {
	read, release, err := newClock(o.clock)
	if err != nil {
		return nil, nil, err
	}
	return &stallClock{read: read, limit: int64(o.stall)}, release, nil
}

// nominalIteration is what a removed stall counts for: about one loop
// iteration on these machines.
const nominalIteration = 500

func (c *stallClock) now() int64 {
	raw := c.read()
	if gap := raw - c.last; c.limit > 0 && gap > c.limit {
		c.stalls++
		c.removed += gap - nominalIteration
	}
	c.last = raw
	return raw - c.removed
}

// newClock returns the named clock and a function that releases it: "mono"
// is the monotonic clock (what the TSC will be in the data plane), "cpu" the
// CPU time of the calling thread, locked to it, which stands still while
// other processes hold the core (the per-frame cost is measured on it).
func newClock(name string) (clock, func(), error) {
	switch name {
	case "mono":
		start := time.Now()
		return func() int64 { return int64(time.Since(start)) }, func() {}, nil
	case "cpu":
		runtime.LockOSThread()
		if _, ok := cputime.Thread(); !ok {
			runtime.UnlockOSThread()
			return nil, nil, fmt.Errorf("clock cpu: this system has no per-thread CPU clock: use mono")
		}
		read := func() int64 {
			t, _ := cputime.Thread()
			return int64(t)
		}
		start := read()
		return func() int64 { return read() - start }, runtime.UnlockOSThread, nil
	}
	return nil, nil, fmt.Errorf("unknown clock %q: use cpu or mono", name)
}
