//go:build linux && cgo

package dpdk

// #include "shim.h"
import "C"

import (
	"fmt"
	"unsafe"
)

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
	c       *C.struct_pr_burst
	addr    C.uintptr_t // c as an integer, for the per-burst calls (see shim.h)
	rx      []*Mbuf
	drop    []*Mbuf
	punt    []*Mbuf
	tx      []txBuf
	nDrop   int     // frames queued in drop
	nPunt   int     // frames queued in punt
	rings   []*Ring // the inject and punt rings, kept alive with the Burst
	keep    bool    // BurstConfig.KeepRefused: read the kept counts back
	collect bool    // BurstConfig.CollectInject
	flushes uint64  // flushes (Cycle or Flush calls) so far
	closed  bool
	final   BurstStats // Stats once closed
}

// txBuf is the Go view of one pr_txbuf. n is kept on the Go side and
// written to the C struct once per flush, so that Send is a store and an
// increment.
type txBuf struct {
	c      *C.struct_pr_txbuf
	pkts   []*Mbuf
	n      int
	inj    []*Mbuf // collected inject frames (CollectInject)
	injOff int     // how many of c.n_inj the worker took
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
		c:       c,
		addr:    C.uintptr_t(uintptr(unsafe.Pointer(c))),
		rx:      unsafe.Slice((**Mbuf)(unsafe.Pointer(c.rx)), cfg.Size),
		drop:    unsafe.Slice((**Mbuf)(unsafe.Pointer(c.drop)), cfg.Size),
		punt:    unsafe.Slice((**Mbuf)(unsafe.Pointer(c.punt)), cfg.Size),
		tx:      make([]txBuf, len(cfg.Tx)),
		keep:    cfg.KeepRefused,
		collect: cfg.CollectInject,
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
		if cfg.KeepRefused {
			t.keep = 1
		}
		if cfg.CollectInject {
			t.collect = 1
		}
		b.tx[i] = txBuf{c: t, pkts: unsafe.Slice((**Mbuf)(unsafe.Pointer(t.pkts)), cfg.Size),
			inj: unsafe.Slice((**Mbuf)(unsafe.Pointer(t.inj)), cfg.Size)}
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
	n := C.pr_burst_cycle(b.addr)
	b.settle()
	return b.rx[:n]
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

// settle follows a flush: with KeepRefused the refused frames are pending
// again.
func (b *Burst) settle() {
	b.flushes++
	if b.keep {
		for i := range b.tx {
			b.tx[i].n = int(b.tx[i].c.n)
		}
	}
}

// Flush sends the frames pending on every TX buffer (topped up from its
// inject ring, unless CollectInject), freeing the ones the PMD refuses
// (keeping them with KeepRefused), frees the dropped frames and enqueues
// the punted ones, in one cgo call. Cycle does this itself; call Flush when
// a worker stops.
func (b *Burst) Flush() {
	b.sync()
	C.pr_burst_flush(b.addr)
	b.settle()
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

// DropBurst queues all of ms to be freed by the next Cycle or Flush: Drop
// for a burst's dropped frames at once. It panics, queueing nothing, beyond
// Size frames between flushes.
func (b *Burst) DropBurst(ms []*Mbuf) {
	if len(ms) > len(b.drop)-b.nDrop {
		panic("dpdk: Burst.DropBurst: more than Size frames dropped without a Flush")
	}
	b.nDrop += copy(b.drop[b.nDrop:], ms)
}

// PuntBurst queues all of ms for the punt ring: Punt for a burst's punted
// frames at once. It panics, queueing nothing, beyond Size frames between
// flushes.
func (b *Burst) PuntBurst(ms []*Mbuf) {
	if len(ms) > len(b.punt)-b.nPunt {
		panic("dpdk: Burst.PuntBurst: more than Size frames punted without a Flush")
	}
	b.nPunt += copy(b.punt[b.nPunt:], ms)
}

// FreeBulk frees ms now (FreeBulk, one cgo call): for frames a layer above
// took off every queue, such as what a closing egress still holds.
func (b *Burst) FreeBulk(ms []*Mbuf) { FreeBulk(ms) }

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

// Pending returns how many frames wait on TX buffer tx for the next flush:
// those queued since the last flush and, with KeepRefused, those the PMD
// refused in it, which come first.
func (b *Burst) Pending(tx int) int { return b.tx[tx].n }

// Unsend takes the last n frames pending on TX buffer tx off it, without
// freeing them: they are the caller's again (it queued them, or with
// KeepRefused they are the refused ones right after a flush). It is how a
// caller with its own queues requeues refused frames there. n beyond Pending
// is a programming error and panics.
func (b *Burst) Unsend(tx, n int) {
	t := &b.tx[tx]
	if n < 0 || n > t.n {
		panic(fmt.Sprintf("dpdk: Burst.Unsend(%d, %d) with %d frames pending", tx, n, t.n))
	}
	t.n -= n
}

// TakeInjected returns up to max frames the last flushes collected from
// TX buffer tx's inject ring (BurstConfig.CollectInject), oldest first;
// they are the caller's. The slice views the Burst's memory and is valid
// until the next Cycle or Flush. Frames not taken stay for the next call,
// and the ring is not read again until all were taken, so a worker that
// takes fewer leaves the control core's ring to fill (Ring.EnqueueBurst
// then takes fewer): back pressure instead of loss.
func (b *Burst) TakeInjected(tx, max int) []*Mbuf {
	t := &b.tx[tx]
	have := int(t.c.n_inj)
	from := t.injOff
	to := min(have, from+max)
	if to <= from {
		return nil
	}
	if to == have {
		t.c.n_inj, t.injOff = 0, 0
	} else {
		t.injOff = to
	}
	return t.inj[from:to]
}

// Opts returns the Burst's KeepRefused and CollectInject settings, for a
// layer that relies on them to check.
func (b *Burst) Opts() (keepRefused, collectInject bool) { return b.keep, b.collect }

// InDPDKMemory returns true: a Burst's mbufs come from DPDK's mempools.
func (b *Burst) InDPDKMemory() bool { return true }

// Size returns the Burst's size: the most frames one Cycle receives and
// one TX buffer holds.
func (b *Burst) Size() int { return len(b.rx) }

// Flushes returns how many flushes (Cycle and Flush calls) the Burst made:
// a layer above can tell whether frames it queued went through one.
func (b *Burst) Flushes() uint64 { return b.flushes }

// TSC returns the CPU's time stamp counter (rte_rdtsc) read at the end of
// the last Cycle, after the receive, or Flush: the worker's clock for the
// burst, in ticks of EAL.TSCHz, at the cost of one instruction inside the
// call the burst makes anyway. 0 before the first.
func (b *Burst) TSC() uint64 { return uint64(b.c.tsc) }

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
		s.TxRefused += uint64(t.c.refused)
		s.Injected += uint64(t.c.injected)
	}
	return s
}

// Close flushes what is pending and frees the Burst's arrays; EAL.Close
// closes the Bursts left open. Only Stats may be called afterwards. Frames
// received by the last Cycle and not yet handed on stay the caller's;
// refused frames still kept after the last flush are freed (and counted as
// TxUnsent), and so are collected inject frames nobody took. Call it from
// the worker that owns the Burst, or once that worker has stopped.
func (b *Burst) Close() {
	if b.closed {
		return
	}
	b.Flush()
	b.sync() // kept frames are in the C counts again; discard frees them
	for i := range b.tx {
		// Collected frames the worker took are its own: only the rest,
		// moved to the front, are discard's to free.
		t := &b.tx[i]
		if t.injOff != 0 {
			n := copy(t.inj, t.inj[t.injOff:t.c.n_inj])
			t.c.n_inj, t.injOff = C.uint16_t(n), 0
		}
	}
	C.pr_burst_discard(b.c)
	b.final = b.Stats()
	b.closed = true
	C.pr_burst_free(b.c)
	b.c, b.rx, b.drop, b.punt, b.tx = nil, nil, nil, nil, nil
}
