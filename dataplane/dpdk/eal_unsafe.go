//go:build linux && cgo

package dpdk

// /* DPDK is built with -O3; shim.c holds its inlined fast paths, so it
//    is compiled the same way. */
// #cgo pkg-config: libdpdk
// #cgo CFLAGS: -O3
// #include <stdlib.h>
// #include <rte_eal.h>
// #include "shim.h"
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane"
)

// EAL is the initialised DPDK environment of the process. Everything DPDK
// (ports, mempools, rings, bursts, workers) is created through it, so none
// of it can exist before Init succeeded, and Close tears it down in order.
type EAL struct {
	log        zerolog.Logger
	args       []string
	cores      []int
	prefix     string
	runtimeDir string

	// workers counts running workers; Close refuses while it is not zero.
	workers atomic.Int32

	// mu guards the fields below: the control core's calls may come
	// from several goroutines.
	mu     sync.Mutex
	closed bool
	bursts []*Burst
	ports  []*Port
	pools  []*Mempool
	rings  []*Ring
}

// initState is the process's one EAL: DPDK can initialise only once per
// process (a second rte_eal_init fails, even after rte_eal_cleanup).
var initState struct {
	once sync.Once
	eal  *EAL
	err  error
}

// Init starts the EAL for cfg with the given port devices (PCI addresses go
// to the EAL as -a, anything else as --vdev; see Args). It runs once per
// process: every later call returns the first call's result, whatever its
// arguments, because DPDK cannot be initialised twice.
//
// log receives the binding's own messages (port warnings, shutdown); the
// EAL itself logs to stderr at cfg.LogLevel.
func Init(cfg dataplane.EALConfig, devices []string, log zerolog.Logger) (*EAL, error) {
	initState.once.Do(func() {
		initState.eal, initState.err = initEAL(cfg, devices, log)
	})
	return initState.eal, initState.err
}

func initEAL(cfg dataplane.EALConfig, devices []string, log zerolog.Logger) (*EAL, error) {
	args, err := Args(cfg, devices)
	if err != nil {
		return nil, err
	}
	cores, err := dataplane.ParseCoreList(cfg.Cores)
	if err != nil {
		return nil, fmt.Errorf("dpdk: %w", err)
	}
	// The argument strings are never freed: the EAL may keep pointers
	// into argv, and this happens once per process.
	argv := unsafe.Slice((**C.char)(C.calloc(C.size_t(len(args)+1), C.size_t(unsafe.Sizeof((*C.char)(nil))))), len(args)+1)
	for i, a := range args {
		argv[i] = C.CString(a)
	}
	// rte_eal_init pins the calling thread to the main lcore and gives it
	// that lcore id for good. Run it on a thread of its own that dies with
	// its goroutine (it stays locked), so no Go thread carrying that
	// affinity and identity goes back to the scheduler.
	res := make(chan C.int)
	go func() {
		runtime.LockOSThread()
		res <- C.pr_eal_init(C.int(len(args)), &argv[0])
	}()
	if rc := <-res; rc < 0 {
		// A failed init can leave its runtime directory behind and
		// cannot be cleaned up through DPDK: remove the directory here.
		removeRuntimeDir(C.GoString(C.rte_eal_get_runtime_dir()), cfg.FilePrefix)
		return nil, fmt.Errorf("%w (arguments %q)", rteError("EAL init", rc), args)
	}
	e := &EAL{
		log:        log,
		args:       args,
		cores:      cores,
		prefix:     cfg.FilePrefix,
		runtimeDir: C.GoString(C.rte_eal_get_runtime_dir()),
	}
	log.Info().Strs("args", args).Str("runtime_dir", e.runtimeDir).Msg("EAL initialised")
	return e, nil
}

// rteError builds the Error for a negative DPDK return code.
func rteError(op string, rc C.int) error {
	if rc >= 0 {
		rc = -C.int(syscall.EIO)
	}
	return &Error{Op: op, Errno: syscall.Errno(-rc), Text: C.GoString(C.pr_strerror(rc))}
}

// Args returns the arguments the EAL was started with, argv[0] included.
func (e *EAL) Args() []string { return append([]string(nil), e.args...) }

// Cores returns the EAL core list: the main core first, then the cores
// left for workers.
func (e *EAL) Cores() []int { return append([]int(nil), e.cores...) }

// TSCHz returns the frequency of the time stamp counter Burst.TSC reads,
// in ticks per second (rte_get_tsc_hz: the invariant TSC on x86, measured
// by the EAL at start). Call it once; it is a cgo call.
func (e *EAL) TSCHz() uint64 { return uint64(C.pr_tsc_hz()) }

// RuntimeDir returns the EAL's runtime directory (/var/run/dpdk/<prefix>
// for root), which Close removes.
func (e *EAL) RuntimeDir() string { return e.runtimeDir }

// check returns ErrClosed once Close has run. Callers hold e.mu.
func (e *EAL) checkLocked() error {
	if e.closed {
		return ErrClosed
	}
	return nil
}

// Close shuts DPDK down: it stops and closes the ports opened through e,
// frees the rings and mempools, runs rte_eal_cleanup and removes the EAL's
// runtime directory, so that nothing is left in /var/run/dpdk or the
// hugetlbfs mount. It returns ErrWorkersRunning, changing nothing, while a
// worker still runs: a port must never stop under a worker polling it.
// Nothing of DPDK may be used after Close; a second Close returns nil.
func (e *EAL) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	if n := e.workers.Load(); n > 0 {
		return fmt.Errorf("%w: %d", ErrWorkersRunning, n)
	}
	e.closed = true
	var errs []error
	// Bursts first: flushing one sends on its ports. Then ports, which
	// return their queued mbufs; rings, which free the mbufs in them; and
	// the pools last, when every mbuf is back.
	for _, b := range e.bursts {
		b.Close()
	}
	for _, p := range e.ports {
		errs = append(errs, p.closeLocked())
	}
	for _, r := range e.rings {
		r.freeLocked()
	}
	for _, p := range e.pools {
		p.freeLocked()
	}
	if rc := C.pr_eal_cleanup(); rc < 0 {
		errs = append(errs, rteError("EAL cleanup", rc))
	}
	if err := removeRuntimeDir(e.runtimeDir, e.prefix); err != nil {
		errs = append(errs, err)
	}
	e.log.Info().Msg("EAL closed")
	return errors.Join(errs...)
}

// removeRuntimeDir removes the EAL runtime directory dir. DPDK leaves its
// config and fbarray files there after rte_eal_cleanup; the directory
// belongs to this process alone when its name is the file prefix (a second
// primary process with the same prefix cannot start), so it is removed
// only then.
func removeRuntimeDir(dir, prefix string) error {
	if dir == "" || filepath.Base(dir) != prefix {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("dpdk: remove runtime directory: %w", err)
	}
	return nil
}
