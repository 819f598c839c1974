package dpdk

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

func cpuSet(cpus []int) (unix.CPUSet, error) {
	var set unix.CPUSet
	if len(cpus) == 0 {
		return set, fmt.Errorf("dpdk: empty CPU list")
	}
	for _, c := range cpus {
		if c < 0 || c >= len(set)*64 {
			return set, fmt.Errorf("dpdk: CPU %d out of range", c)
		}
		set.Set(c)
	}
	return set, nil
}

// pinCurrentThread binds the calling OS thread to cpus. The caller must
// have locked its goroutine to the thread.
func pinCurrentThread(cpus ...int) error {
	set, err := cpuSet(cpus)
	if err != nil {
		return err
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("dpdk: pin thread to CPUs %v: %w", cpus, err)
	}
	return nil
}

// PinThreads binds every thread the process has now to cpus, the control
// cores. Threads started later inherit the CPU set of the thread that
// starts them, and the Go runtime starts its threads from its own (never
// from a thread a worker locked), so calling this before StartWorker keeps
// the scheduler, the garbage collector and the EAL's control threads off
// the worker cores. Workers then pin their own threads.
func PinThreads(cpus []int) error {
	set, err := cpuSet(cpus)
	if err != nil {
		return err
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("dpdk: list threads: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread may exit between the listing and the call: ESRCH is
		// not a failure.
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("dpdk: pin thread %d to CPUs %v: %w", tid, cpus, err)
		}
	}
	return nil
}
