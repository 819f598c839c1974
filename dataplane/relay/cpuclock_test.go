package relay

import (
	"time"

	"github.com/poolrelay/poolrelay/internal/cputime"
)

// threadCPU returns the CPU time the calling OS thread has used.
func threadCPU() (time.Duration, bool) { return cputime.Thread() }
