package dpdk

import (
	"os"
	"runtime"
	"runtime/debug"
)

// GCPercent is the GOGC value TuneRuntime sets. Workers never allocate, so
// the collector is paced only by the control core's garbage; each cycle
// still costs the workers two stop-the-world pauses (tens of microseconds,
// which a 1024-descriptor RX ring at 14 Mpps covers) and write barriers on
// their mbuf array stores while marking. Four times the live heap between
// cycles makes them rarer at a modest memory cost: the largest heap object
// is the route table, which holds no pointers and is never scanned.
const GCPercent = 400

// TuneRuntime sets the Go runtime up for a data-plane process that runs on
// the given number of cores (the EAL core list: the main core and the
// worker cores) and returns a function that restores the previous
// settings. It changes nothing the operator set through the GOMAXPROCS or
// GOGC environment variables.
//
// GOMAXPROCS becomes cores, with at least two: every worker goroutine spins
// on its own P for good, and the control core needs one P left for the
// control goroutines, the garbage collector's background work and the
// scheduler hand-off that brings a worker back after the runtime preempts
// it (it does so every 10 ms even when nothing else waits). Fewer Ps would
// leave a preempted worker waiting for a whole scheduling quantum; more
// would only time-share the control core, since PinThreads keeps the
// runtime's threads off the worker cores.
func TuneRuntime(cores int) (restore func()) {
	prevProcs, prevGC := -1, -1
	if os.Getenv("GOMAXPROCS") == "" {
		prevProcs = runtime.GOMAXPROCS(max(cores, 2))
	}
	if os.Getenv("GOGC") == "" {
		prevGC = debug.SetGCPercent(GCPercent)
	}
	return func() {
		if prevProcs > 0 {
			runtime.GOMAXPROCS(prevProcs)
		}
		if prevGC != -1 {
			debug.SetGCPercent(prevGC)
		}
	}
}
