//go:build !linux

package cputime

import "time"

// Thread is not available here: it reports false, and benchmarks report
// wall time only.
func Thread() (time.Duration, bool) { return 0, false }
