//go:build !linux

package dpdk

func pinCurrentThread(cpus ...int) error { return ErrNoDPDK }

// PinThreads binds the process's threads to cpus; outside Linux it returns
// ErrNoDPDK.
func PinThreads(cpus []int) error { return ErrNoDPDK }
