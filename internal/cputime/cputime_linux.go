package cputime

import (
	"time"

	"golang.org/x/sys/unix"
)

// Thread returns the CPU time the calling OS thread has used, user and
// system, and whether the clock could be read. Lock the goroutine to its
// thread (runtime.LockOSThread) around what it measures. It reads
// CLOCK_THREAD_CPUTIME_ID, which counts in nanoseconds (getrusage's thread
// figures are coarser).
func Thread() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
