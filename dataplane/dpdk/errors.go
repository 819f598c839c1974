package dpdk

import (
	"errors"
	"syscall"
)

// Sentinel errors for the conditions callers test with errors.Is.
var (
	// ErrNoDPDK is returned by every entry point of a build without cgo or
	// outside Linux, where DPDK cannot be reached.
	ErrNoDPDK = errors.New("dpdk: built without cgo or not on Linux: DPDK is not available")
	// ErrClosed is returned by methods called after the EAL (or the object
	// itself) was closed.
	ErrClosed = errors.New("dpdk: closed")
	// ErrNotSupported marks a DPDK call that the PMD does not implement
	// (ENOTSUP). Port setup logs it as a warning for optional features.
	ErrNotSupported = errors.New("dpdk: not supported by the device")
	// ErrNoMbufs is returned when a mempool cannot hand out the mbufs asked
	// for: it is exhausted, or what is left sits in other cores' caches.
	ErrNoMbufs = errors.New("dpdk: mempool exhausted")
	// ErrNoPort is returned when a device string names no DPDK port, even
	// after probing it.
	ErrNoPort = errors.New("dpdk: no such port")
	// ErrWorkersRunning is returned by EAL.Close while workers still run:
	// ports may only stop once no worker polls them.
	ErrWorkersRunning = errors.New("dpdk: workers still running")
	// ErrTooLarge is returned when bytes do not fit in an mbuf's data room.
	ErrTooLarge = errors.New("dpdk: data does not fit in the mbuf")
)

// Error is a failed DPDK call: what was being done, the errno DPDK reported
// and its rte_strerror text. errors.Is matches it against the syscall.Errno
// (for example syscall.ENOTSUP) and, for ENOTSUP, against ErrNotSupported.
type Error struct {
	// Op names the operation, e.g. "port net_null0: set MTU 1500".
	Op string
	// Errno is the positive error number DPDK returned.
	Errno syscall.Errno
	// Text is rte_strerror(Errno): DPDK's own description, which also
	// covers its private error numbers above __ELASTERROR.
	Text string
}

// Error implements error.
func (e *Error) Error() string { return "dpdk: " + e.Op + ": " + e.Text }

// Unwrap exposes the errno, so errors.Is(err, syscall.EINVAL) works.
func (e *Error) Unwrap() error { return e.Errno }

// Is maps ENOTSUP onto ErrNotSupported.
func (e *Error) Is(target error) bool {
	return target == ErrNotSupported && e.Errno == syscall.ENOTSUP
}

// ErrNoGMAC is returned by GMACEngine, NewGMACKey and NewGMACBatch when
// intel-ipsec-mb has no AES-NI code path on this CPU, or the build has no
// cgo: hop MACs then stay with crypto/hopmac in Go.
var ErrNoGMAC = errors.New("dpdk: no intel-ipsec-mb AES-NI path for hop MACs (CPU without AES-NI, or a build without cgo)")
