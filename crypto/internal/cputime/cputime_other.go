//go:build !linux

package cputime

import "time"

// threadTime is not available here; benchmarks report wall time only.
func threadTime() (time.Duration, bool) { return 0, false }
