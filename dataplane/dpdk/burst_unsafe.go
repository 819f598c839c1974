//go:build linux && cgo

package dpdk

// #include "shim.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// BurstConfig describes a worker's Burst.
type BurstConfig struct {
	// Size is the most frames one Cycle receives, 1 to MaxBurst (32 is
	// DPDK's usual burst). Every TX buffer holds Size frames.
	Size int
	// Tx are the TX queues the worker sends on; the index into Tx is the
	// tx argument of Send. A worker owns its TX queues: no other thread
	// may send on them.
	Tx []Queue
	// Inject optionally gives TX buffer i an inject ring (nil entries and
	// a shorter slice mean none): each flush tops the buffer up from it,
	// so frames the control core builds go out on the worker's own queue.
	Inject []*Ring
	// Punt is the ring Punt hands frames to (nil: punted frames are freed
	// and counted as PuntFull).
	Punt *Ring
	// Socket is the NUMA socket for the Burst's arrays (-1: any); use the
	// worker core's socket.
	Socket int
}

// Burst is one worker's packet I/O: the mbuf arrays, in DPDK memory, that
// RX fills and TX drains, and the per-frame decisions the worker records
// between bursts. All of DPDK's work happens in Cycle (or Flush), one cgo
// call per burst that sends the pending frames, frees the dropped ones in
// bulk, enqueues the punted ones and receives the next burst; Send, Drop
// and Punt only store a pointer.
//
// A Burst belongs to one worker goroutine; it is not safe for concurrent
// use. Every mbuf that Cycle returns goes to exactly one of Send,
// SendBurst, Drop or Punt, or stays with the worker, which then frees it
// itself; the next Cycle reuses the RX array, not the mbufs. Each of the
// TX, drop and punt arrays holds Size frames, so a whole RX burst always
// fits; queueing more between two flushes is a programming error and
// panics.
type Burst struct {
	c      *C.struct_pr_burst
	addr   C.uintptr_t // c as an integer, for the per-burst calls (see shim.h)
	rx     []*Mbuf
	drop   []*Mbuf
	punt   []*Mbuf
	tx     []txBuf
	nDrop  int     // frames queued in drop
	nPunt  int     // frames queued in punt
	rings  []*Ring // the inject and punt rings, kept alive with the Burst
	closed bool
	final  BurstStats // Stats once closed
}

// txBuf is the Go view of one pr_txbuf. n is kept on the Go side and
// written to the C struct once per flush, so that Send is a store and an
// increment.
type txBuf struct {
	c    *C.struct_pr_txbuf
	pkts []*Mbuf
	n    int
}

// NewBurst allocates a Burst for cfg.
func (e *EAL) NewBurst(cfg BurstConfig) (*Burst, error) {
	if cfg.Size < 1 || cfg.Size > MaxBurst {
		return nil, fmt.Errorf("dpdk: burst size %d: use 1 to %d", cfg.Size, MaxBurst)
	}
	if len(cfg.Tx) > 1024 || len(cfg.Inject) > len(cfg.Tx) {
		return nil, fmt.Errorf("dpdk: burst with %d TX queues and %d inject rings", len(cfg.Tx), len(cfg.Inject))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkLocked(); err != nil {
		return nil, err
	}
	c := C.pr_burst_new(C.uint16_t(cfg.Size), C.uint16_t(len(cfg.Tx)), C.int(cfg.Socket))
	if c == nil {
		return nil, fmt.Errorf("dpdk: burst of %d with %d TX queues: out of DPDK memory", cfg.Size, len(cfg.Tx))
	}
	b := &Burst{
		c:    c,
		addr: C.uintptr_t(uintptr(unsafe.Pointer(c))),
		rx:   unsafe.Slice((**Mbuf)(unsafe.Pointer(c.rx)), cfg.Size),
		drop: unsafe.Slice((**Mbuf)(unsafe.Pointer(c.drop)), cfg.Size),
		punt: unsafe.Slice((**Mbuf)(unsafe.Pointer(c.punt)), cfg.Size),
		tx:   make([]txBuf, len(cfg.Tx)),
	}
	if cfg.Punt != nil {
		c.punt_ring = cfg.Punt.c
		b.rings = append(b.rings, cfg.Punt)
	}
	ctx := unsafe.Slice(c.tx, len(cfg.Tx))
	for i, q := range cfg.Tx {
		t := &ctx[i]
		t.port, t.queue = C.uint16_t(q.Port), C.uint16_t(q.ID)
		if i < len(cfg.Inject) && cfg.Inject[i] != nil {
			t.inject = cfg.Inject[i].c
			b.rings = append(b.rings, cfg.Inject[i])
		}
		b.tx[i] = txBuf{c: t, pkts: unsafe.Slice((**Mbuf)(unsafe.Pointer(t.pkts)), cfg.Size)}
	}
	e.bursts = append(e.bursts, b)
	return b, nil
}

// Cycle settles the previous burst (see Flush) and receives up to Size
// frames from q, in one cgo call. The returned slice views the Burst's RX
// array: it is valid until the next Cycle, and the worker owns its mbufs.
func (b *Burst) Cycle(q Queue) []*Mbuf {
	b.sync()
	b.c.rx_port, b.c.rx_queue = C.uint16_t(q.Port), C.uint16_t(q.ID)
	return b.rx[:C.pr_burst_cycle(b.addr)]
}

// sync hands the counts of queued frames to the C side, which sends,
// frees or enqueues them all.
func (b *Burst) sync() {
	for i := range b.tx {
		t := &b.tx[i]
		t.c.n = C.uint16_t(t.n)
		t.n = 0
	}
	b.c.n_drop, b.c.n_punt = C.uint16_t(b.nDrop), C.uint16_t(b.nPunt)
	b.nDrop, b.nPunt = 0, 0
}

// Flush sends the frames pending on every TX buffer (topped up from its
// inject ring), freeing the ones the PMD refuses, frees the dropped frames
// and enqueues the punted ones, in one cgo call. Cycle does this itself;
// call Flush when a worker stops.
func (b *Burst) Flush() {
	b.sync()
	C.pr_burst_flush(b.addr)
}

// Send queues m for TX buffer tx (an index into BurstConfig.Tx); the next
// Cycle or Flush sends it. A buffer holds Size frames, so every frame of
// one RX burst can always be sent; queueing more than Size frames on one
// buffer between flushes is a programming error and panics (a generator
// sending its own frames calls Flush every Size frames). The check keeps
// Send small enough to inline: a store and an increment per frame.
func (b *Burst) Send(tx int, m *Mbuf) {
	t := &b.tx[tx]
	if t.n >= len(t.pkts) {
		panic("dpdk: Burst.Send: more than Size frames queued on one TX buffer without a Flush")
	}
	t.pkts[t.n] = m
	t.n++
}

// SendBurst queues all of ms on TX buffer tx, in order: Send for frames
// that all go the same way, in one copy instead of a store per frame. It
// panics, queueing nothing, if the buffer has no room for them all.
func (b *Burst) SendBurst(tx int, ms []*Mbuf) {
	t := &b.tx[tx]
	if len(ms) > len(t.pkts)-t.n {
		panic("dpdk: Burst.SendBurst: more than Size frames queued on one TX buffer without a Flush")
	}
	t.n += copy(t.pkts[t.n:], ms)
}

// Drop queues m to be freed, in bulk, by the next Cycle or Flush. Like
// Send, it panics beyond Size frames between flushes.
func (b *Burst) Drop(m *Mbuf) {
	if b.nDrop >= len(b.drop) {
		panic("dpdk: Burst.Drop: more than Size frames dropped without a Flush")
	}
	b.drop[b.nDrop] = m
	b.nDrop++
}

// Punt queues m for the punt ring; the next Cycle or Flush enqueues it, or
// frees it if the ring is full. Like Send, it panics beyond Size frames
// between flushes.
func (b *Burst) Punt(m *Mbuf) {
	if b.nPunt >= len(b.punt) {
		panic("dpdk: Burst.Punt: more than Size frames punted without a Flush")
	}
	b.punt[b.nPunt] = m
	b.nPunt++
}

// Pending returns how many frames wait on TX buffer tx for the next flush.
func (b *Burst) Pending(tx int) int { return b.tx[tx].n }

// Stats returns the Burst's cumulative counters, final ones once closed.
func (b *Burst) Stats() BurstStats {
	if b.closed {
		return b.final
	}
	s := BurstStats{
		Rx:       uint64(b.c.rx_total),
		Dropped:  uint64(b.c.dropped),
		Punted:   uint64(b.c.punted),
		PuntFull: uint64(b.c.punt_full),
	}
	for _, t := range b.tx {
		s.Tx += uint64(t.c.sent)
		s.TxUnsent += uint64(t.c.unsent)
		s.Injected += uint64(t.c.injected)
	}
	return s
}

// Close flushes what is pending and frees the Burst's arrays; EAL.Close
// closes the Bursts left open. Only Stats may be called afterwards. Frames
// received by the last Cycle and not yet handed on stay the caller's. Call
// it from the worker that owns the Burst, or once that worker has stopped.
func (b *Burst) Close() {
	if b.closed {
		return
	}
	b.Flush()
	b.final = b.Stats()
	b.closed = true
	C.pr_burst_free(b.c)
	b.c, b.rx, b.drop, b.punt, b.tx = nil, nil, nil, nil, nil
}
