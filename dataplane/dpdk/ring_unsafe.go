//go:build linux && cgo

package dpdk

// #include <stdlib.h>
// #include <rte_ring.h>
// #include "shim.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// Ring is an rte_ring of mbuf pointers: the lock-free hand-over between a
// worker and the control core. A worker's Burst enqueues punts and
// dequeues injections inside its one cgo call per burst; the control core
// uses EnqueueBurst and DequeueBurst.
type Ring struct {
	c    *C.struct_rte_ring
	name string
	size int
}

// NewRing creates a ring that holds exactly size mbufs (size > 0) on
// socket (-1: any). The name must be unique in the process and at most 28
// bytes.
func (e *EAL) NewRing(name string, size, socket int, mode RingMode) (*Ring, error) {
	if size < 1 || size > 1<<28 {
		return nil, fmt.Errorf("dpdk: ring %s: size %d out of range", name, size)
	}
	flags := C.uint(C.RING_F_EXACT_SZ)
	switch mode {
	case RingSPSC:
		flags |= C.RING_F_SP_ENQ | C.RING_F_SC_DEQ
	case RingMPMC:
	default:
		return nil, fmt.Errorf("dpdk: ring %s: unknown mode %d", name, mode)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkLocked(); err != nil {
		return nil, err
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var rc C.int
	c := C.pr_ring_create(cname, C.uint(size), C.int(socket), flags, &rc)
	if c == nil {
		return nil, rteError(fmt.Sprintf("create ring %s of %d", name, size), rc)
	}
	r := &Ring{c: c, name: name, size: size}
	e.rings = append(e.rings, r)
	return r, nil
}

// Name returns the ring's name.
func (r *Ring) Name() string { return r.name }

// Size returns how many mbufs the ring holds.
func (r *Ring) Size() int { return r.size }

// Count returns how many mbufs are in the ring now.
func (r *Ring) Count() int { return int(C.pr_ring_count(r.c)) }

// EnqueueBurst puts as many of ms as fit into the ring, in order, and
// returns how many it took; the ring owns those, the caller keeps the rest.
func (r *Ring) EnqueueBurst(ms []*Mbuf) int {
	if len(ms) == 0 {
		return 0
	}
	return int(C.pr_ring_enqueue_burst(r.c, mbufArray(ms), C.uint(len(ms))))
}

// DequeueBurst takes up to len(ms) mbufs from the ring into ms and returns
// how many; the caller owns them.
func (r *Ring) DequeueBurst(ms []*Mbuf) int {
	if len(ms) == 0 {
		return 0
	}
	return int(C.pr_ring_dequeue_burst(r.c, mbufArray(ms), C.uint(len(ms))))
}

// freeLocked frees the ring and any mbufs still in it. Called by EAL.Close.
func (r *Ring) freeLocked() {
	var v [32]*C.struct_rte_mbuf
	for {
		n := C.pr_ring_dequeue_burst(r.c, &v[0], C.uint(len(v)))
		if n == 0 {
			break
		}
		C.pr_free_bulk(&v[0], n)
	}
	C.rte_ring_free(r.c)
	r.c = nil
}
