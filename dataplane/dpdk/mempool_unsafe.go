//go:build linux && cgo

package dpdk

// #include <stdlib.h>
// #include <rte_mempool.h>
// #include "shim.h"
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// Mempool is a DPDK packet-buffer pool (rte_pktmbuf_pool_create) on one
// NUMA socket. Threads with an lcore id (the main thread of the EAL and
// registered workers) take and return mbufs through a per-core cache;
// others go to the shared ring.
type Mempool struct {
	e        *EAL
	c        *C.struct_rte_mempool
	name     string
	socket   int
	size     int
	dataRoom int
}

// NewMempool creates a pool of n mbufs (2^k-1 uses the ring best) with a
// per-core cache of cache mbufs and dataRoom bytes of buffer each (Headroom
// included; DefaultDataRoom when 0) on socket (-1: any). The name must be
// unique in the process and at most 25 bytes.
func (e *EAL) NewMempool(name string, n, cache, dataRoom, socket int) (*Mempool, error) {
	if dataRoom == 0 {
		dataRoom = DefaultDataRoom
	}
	if n < 1 || cache < 0 || cache > 512 || dataRoom <= Headroom || dataRoom > 65535 {
		return nil, fmt.Errorf("dpdk: mempool %s: bad size (n=%d cache=%d data room=%d)", name, n, cache, dataRoom)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkLocked(); err != nil {
		return nil, err
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var rc C.int
	c := C.pr_pool_create(cname, C.uint(n), C.uint(cache), C.uint16_t(dataRoom), C.int(socket), &rc)
	if c == nil {
		return nil, rteError(fmt.Sprintf("create mempool %s (%d mbufs on socket %d)", name, n, socket), rc)
	}
	p := &Mempool{e: e, c: c, name: name, socket: socket, size: n, dataRoom: dataRoom}
	e.pools = append(e.pools, p)
	return p, nil
}

// Name returns the pool's name.
func (p *Mempool) Name() string { return p.name }

// Socket returns the NUMA socket the pool was created on (-1: any).
func (p *Mempool) Socket() int { return p.socket }

// Size returns the number of mbufs in the pool.
func (p *Mempool) Size() int { return p.size }

// DataRoom returns the buffer size of each mbuf, Headroom included.
func (p *Mempool) DataRoom() int { return p.dataRoom }

// Avail returns how many mbufs are free (in the ring or a core's cache).
func (p *Mempool) Avail() int { return int(C.rte_mempool_avail_count(p.c)) }

// InUse returns how many mbufs are handed out.
func (p *Mempool) InUse() int { return int(C.rte_mempool_in_use_count(p.c)) }

// AllocBulk fills ms with freshly reset mbufs, all or none: it returns an
// error wrapping ErrNoMbufs, and leaves ms untouched, when the pool cannot
// supply len(ms). Back ms with an MbufVec on a hot path: a Go slice works
// but costs cgo's pointer check on every call.
func (p *Mempool) AllocBulk(ms []*Mbuf) error {
	if len(ms) == 0 {
		return nil
	}
	if rc := C.pr_pool_alloc_bulk(p.c, mbufArray(ms), C.uint(len(ms))); rc != 0 {
		return fmt.Errorf("%w: %s cannot supply %d mbufs (%d free)", ErrNoMbufs, p.name, len(ms), p.Avail())
	}
	return nil
}

func (p *Mempool) freeLocked() {
	C.rte_mempool_free(p.c)
	p.c = nil
}

// FreeBulk returns mbufs to their pools (rte_pktmbuf_free_bulk) in one
// call. nil entries are skipped.
func FreeBulk(ms []*Mbuf) {
	if len(ms) != 0 {
		C.pr_free_bulk(mbufArray(ms), C.uint(len(ms)))
	}
}

// Free returns m to its pool. Prefer FreeBulk, or Burst.Drop on a worker:
// this is a cgo call for one mbuf.
func (m *Mbuf) Free() { C.pr_free((*C.struct_rte_mbuf)(unsafe.Pointer(m))) }

func mbufArray(ms []*Mbuf) **C.struct_rte_mbuf {
	return (**C.struct_rte_mbuf)(unsafe.Pointer(unsafe.SliceData(ms)))
}

// MbufVec is an array of mbuf pointers in C memory. Passing it to DPDK
// costs no cgo pointer check (a Go slice of pointers is scanned on every
// call, which the binding's probes measured at ~30% of a burst's cost), so
// bulk allocation, freeing and ring transfers on a hot path should use one.
type MbufVec struct {
	c unsafe.Pointer
	s []*Mbuf
}

// NewMbufVec returns a zeroed vector of n mbuf pointers. Close frees it.
func NewMbufVec(n int) (*MbufVec, error) {
	if n < 1 || n > 1<<20 {
		return nil, fmt.Errorf("dpdk: mbuf vector of %d entries: use 1 to 1048576", n)
	}
	p := C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(uintptr(0))))
	if p == nil {
		return nil, fmt.Errorf("dpdk: mbuf vector of %d entries: out of memory", n)
	}
	return &MbufVec{c: p, s: unsafe.Slice((**Mbuf)(p), n)}, nil
}

// Mbufs returns the whole vector as a slice over the C memory.
func (v *MbufVec) Mbufs() []*Mbuf { return v.s }

// Close frees the vector (not the mbufs in it).
func (v *MbufVec) Close() {
	if v.c != nil {
		C.free(v.c)
		v.c, v.s = nil, nil
	}
}

// Pools hands out one mempool per NUMA socket, created on first use, so a
// port's RX queues take buffers from memory near the port.
type Pools struct {
	e                  *EAL
	name               string
	n, cache, dataRoom int
	mu                 sync.Mutex
	bySocket           map[int]*Mempool
}

// NewPools returns a per-socket pool set; each pool is named name_s<socket>
// and holds n mbufs (see NewMempool for the parameters).
func (e *EAL) NewPools(name string, n, cache, dataRoom int) *Pools {
	return &Pools{e: e, name: name, n: n, cache: cache, dataRoom: dataRoom, bySocket: map[int]*Mempool{}}
}

// For returns the pool of socket, creating it on first use. Socket -1 (a
// virtual device has no socket) means the first socket of the machine.
func (p *Pools) For(socket int) (*Mempool, error) {
	if socket < 0 {
		socket = int(C.pr_first_socket())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if mp := p.bySocket[socket]; mp != nil {
		return mp, nil
	}
	mp, err := p.e.NewMempool(fmt.Sprintf("%s_s%d", p.name, socket), p.n, p.cache, p.dataRoom, socket)
	if err != nil {
		return nil, err
	}
	p.bySocket[socket] = mp
	return mp, nil
}
