package cputime

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadTime returns the user and system CPU time of the calling thread.
func threadTime() (time.Duration, bool) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
