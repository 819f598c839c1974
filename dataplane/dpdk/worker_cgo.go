//go:build linux && cgo

package dpdk

// #include "shim.h"
import "C"

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

// Worker is a data-plane goroutine locked to an OS thread that is pinned to
// one core and registered with the EAL, so that it has an lcore id and
// with it a per-core mempool cache (without one, the binding's probes ran
// ~35% slower: every mbuf went through the pool's shared ring).
type Worker struct {
	core  int
	lcore int
	stop  atomic.Bool
	done  chan struct{}
	err   error
}

// StartWorker runs fn on a new goroutine that locks its OS thread, pins it
// to core and registers it with rte_thread_register. It returns once the
// thread is set up, with the error if that failed (fn then never runs).
//
// fn should loop until w.Stopping() and return; its error is Wait's.
// When fn returns the thread is unregistered and, still locked, ends with
// the goroutine: a thread pinned to a worker core with an lcore id must
// not go back to the Go scheduler.
//
// The core should be one of the EAL's worker cores, and no other worker's:
// two spinning workers on one core halve each other. See TuneRuntime and
// PinThreads for the runtime settings workers are meant to run with.
func (e *EAL) StartWorker(core int, fn func(w *Worker) error) (*Worker, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkLocked(); err != nil {
		return nil, err
	}
	w := &Worker{core: core, lcore: -1, done: make(chan struct{})}
	ready := make(chan error, 1)
	e.workers.Add(1)
	go func() {
		defer close(w.done)
		defer e.workers.Add(-1)
		runtime.LockOSThread()
		// No UnlockOSThread, on purpose: see the function comment.
		if err := pinCurrentThread(core); err != nil {
			ready <- fmt.Errorf("dpdk: worker on core %d: %w", core, err)
			return
		}
		if rc := C.pr_thread_register(); rc < 0 {
			ready <- rteError(fmt.Sprintf("worker on core %d: register thread", core), rc)
			return
		}
		defer func() {
			// The thread's mempool caches would strand their mbufs
			// until another thread got the same lcore id.
			e.mu.Lock()
			for _, p := range e.pools {
				C.pr_pool_flush_cache(p.c)
			}
			e.mu.Unlock()
			C.pr_thread_unregister()
		}()
		w.lcore = int(C.pr_lcore_id())
		ready <- nil
		w.err = fn(w)
	}()
	if err := <-ready; err != nil {
		<-w.done
		return nil, err
	}
	return w, nil
}

// Core returns the CPU the worker is pinned to.
func (w *Worker) Core() int { return w.core }

// Lcore returns the lcore id the EAL gave the worker's thread.
func (w *Worker) Lcore() int { return w.lcore }

// Stopping reports whether Stop was called; the worker's loop checks it
// once per burst (an atomic load).
func (w *Worker) Stopping() bool { return w.stop.Load() }

// Stop asks the worker to return; Wait waits for it.
func (w *Worker) Stop() { w.stop.Store(true) }

// Done is closed when the worker has returned and its thread is gone from
// the EAL.
func (w *Worker) Done() <-chan struct{} { return w.done }

// Wait waits for the worker to return and returns fn's error.
func (w *Worker) Wait() error {
	<-w.done
	return w.err
}
