// Package bursttest is an in-memory dpdk.IO: a worker's packet I/O with no
// DPDK, cgo or root behind it, so that the code between a receive and a
// flush (relay.Worker's action loop, egress.Port's settle and requeue)
// runs in ordinary tests, with CGO_ENABLED=0, as the real thing does on a
// dpdk.Burst. It plays the PMD too: frames received are copies of the
// test's bytes in mbufs of Go memory (dpdk.GoMbufs), frames sent are kept
// for the test to read until the next flush, and a TX buffer can be made
// to refuse frames as a full TX ring does.
//
// It checks what the real Burst cannot afford to: every mbuf a worker gets
// goes to exactly one of send, drop, punt or free, once; handing one on
// twice, or one the worker does not hold, panics. InUse counts the frames
// the worker and the queues hold, for leak checks.
package bursttest

import (
	"errors"
	"fmt"

	"github.com/poolrelay/poolrelay/dataplane/dpdk"
)

// Config is a Burst's shape. The zero value is a burst of 32 with one TX
// buffer and 1024 mbufs of dpdk.DefaultDataRoom.
type Config struct {
	// Size is the most frames one Cycle receives and each TX buffer, the
	// drop and the punt arrays hold between flushes (0: 32).
	Size int
	// Tx is the number of TX buffers (0: 1).
	Tx int
	// Mbufs is the pool's size (0: 1024) and DataRoom each mbuf's
	// (0: dpdk.DefaultDataRoom).
	Mbufs, DataRoom int
	// KeepRefused and CollectInject are dpdk.BurstConfig's.
	KeepRefused, CollectInject bool
}

// state is where one mbuf is.
type state uint8

const (
	free   state = iota // in the pool
	worker              // the worker's: received, taken back or collected
	queued              // on a TX buffer, the drop or punt array, an inject ring
	wire                // sent or punted by the last flush, readable until the next
)

// Burst is the in-memory packet I/O. Like dpdk.Burst, it belongs to one
// goroutine.
type Burst struct {
	g      *dpdk.GoMbufs
	st     []state
	pool   []*dpdk.Mbuf // free mbufs, a stack
	size   int
	rx     []*dpdk.Mbuf
	tx     []txBuf
	drop   []*dpdk.Mbuf
	punt   []*dpdk.Mbuf
	punted []*dpdk.Mbuf // the last flush's
	tsc    uint64
	keep   bool
	coll   bool
	flush  uint64
	stats  dpdk.BurstStats
}

// txBuf is one TX buffer, with its PMD and inject ring.
type txBuf struct {
	pkts   []*dpdk.Mbuf
	room   int          // frames the PMD takes per flush; -1: all
	ring   []*dpdk.Mbuf // the inject ring, oldest first
	inj    []*dpdk.Mbuf // collected (CollectInject)
	injOff int
	sent   []*dpdk.Mbuf // the last flush's
}

// ErrConfig is returned for a Config New refuses.
var ErrConfig = errors.New("bursttest: invalid config")

// New returns a Burst for cfg.
func New(cfg Config) (*Burst, error) {
	if cfg.Size == 0 {
		cfg.Size = 32
	}
	if cfg.Tx == 0 {
		cfg.Tx = 1
	}
	if cfg.Mbufs == 0 {
		cfg.Mbufs = 1024
	}
	if cfg.Size < 1 || cfg.Size > dpdk.MaxBurst || cfg.Tx < 1 || cfg.Mbufs < 1 {
		return nil, fmt.Errorf("%w: size %d (1 to %d), %d TX buffers, %d mbufs", ErrConfig, cfg.Size, dpdk.MaxBurst, cfg.Tx, cfg.Mbufs)
	}
	g, err := dpdk.NewGoMbufs(cfg.Mbufs, cfg.DataRoom)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	b := &Burst{
		g: g, st: make([]state, cfg.Mbufs), pool: make([]*dpdk.Mbuf, cfg.Mbufs), size: cfg.Size,
		rx:   make([]*dpdk.Mbuf, 0, cfg.Size),
		tx:   make([]txBuf, cfg.Tx),
		drop: make([]*dpdk.Mbuf, 0, cfg.Size), punt: make([]*dpdk.Mbuf, 0, cfg.Size),
		punted: make([]*dpdk.Mbuf, 0, cfg.Size),
		keep:   cfg.KeepRefused, coll: cfg.CollectInject,
	}
	for i := range b.pool {
		b.pool[i] = g.At(cfg.Mbufs - 1 - i)
	}
	for i := range b.tx {
		b.tx[i] = txBuf{pkts: make([]*dpdk.Mbuf, 0, cfg.Size), room: -1,
			inj: make([]*dpdk.Mbuf, 0, cfg.Size), sent: make([]*dpdk.Mbuf, 0, cfg.Size)}
	}
	return b, nil
}

// move checks that m is the Burst's and in state from, and puts it in to.
func (b *Burst) move(m *dpdk.Mbuf, from, to state, op string) {
	i := b.g.Index(m)
	if i < 0 {
		panic(fmt.Sprintf("bursttest: %s of an mbuf that is not the Burst's", op))
	}
	if b.st[i] != from {
		panic(fmt.Sprintf("bursttest: %s of mbuf %d, which is %s, not %s", op, i, b.st[i], from))
	}
	b.st[i] = to
}

func (s state) String() string {
	switch s {
	case free:
		return "free"
	case worker:
		return "the worker's"
	case queued:
		return "queued"
	}
	return "on the wire"
}

// alloc takes a fresh mbuf holding a copy of f; it panics when the pool
// is empty or f does not fit.
func (b *Burst) alloc(f []byte, to state) *dpdk.Mbuf {
	if len(b.pool) == 0 {
		panic("bursttest: out of mbufs: frames leak, or Config.Mbufs is too small")
	}
	m := b.pool[len(b.pool)-1]
	b.pool = b.pool[:len(b.pool)-1]
	b.move(m, free, to, "alloc")
	b.g.Reset(m)
	if err := m.CopyFrom(f); err != nil {
		panic(fmt.Sprintf("bursttest: frame of %d bytes: %v", len(f), err))
	}
	return m
}

// release returns m to the pool.
func (b *Burst) release(m *dpdk.Mbuf, from state, op string) {
	b.move(m, from, free, op)
	b.pool = append(b.pool, m)
}

// Cycle is dpdk.Burst.Cycle with the test as the PMD: it flushes, then
// receives frames (at most Size), each copied into a fresh mbuf. The
// returned slice is valid until the next Cycle; the mbufs are the
// caller's.
func (b *Burst) Cycle(frames ...[]byte) []*dpdk.Mbuf {
	if len(frames) > b.size {
		panic(fmt.Sprintf("bursttest: Cycle of %d frames on a Burst of %d", len(frames), b.size))
	}
	b.Flush()
	b.rx = b.rx[:0]
	for _, f := range frames {
		b.rx = append(b.rx, b.alloc(f, worker))
	}
	b.stats.Rx += uint64(len(frames))
	return b.rx
}

// Flush is dpdk.Burst.Flush: the frames the previous flush sent or punted
// go back to the pool; each TX buffer collects from its inject ring
// (CollectInject) or is topped up from it, and its PMD takes what its
// room allows, the rest freed or, with KeepRefused, kept at the head;
// dropped frames are freed; punted ones go to Punted.
func (b *Burst) Flush() {
	for _, m := range b.punted {
		b.release(m, wire, "flush")
	}
	b.punted = b.punted[:0]
	for i := range b.tx {
		b.flushTx(&b.tx[i])
	}
	for _, m := range b.drop {
		b.release(m, queued, "drop")
	}
	b.stats.Dropped += uint64(len(b.drop))
	b.drop = b.drop[:0]
	for _, m := range b.punt {
		b.move(m, queued, wire, "punt")
		b.punted = append(b.punted, m)
	}
	b.stats.Punted += uint64(len(b.punt))
	b.punt = b.punt[:0]
	b.flush++
}

func (b *Burst) flushTx(t *txBuf) {
	for _, m := range t.sent {
		b.release(m, wire, "flush")
	}
	t.sent = t.sent[:0]
	if b.coll {
		if len(t.inj) == 0 {
			n := min(len(t.ring), b.size)
			t.inj = append(t.inj, t.ring[:n]...)
			t.ring = append(t.ring[:0], t.ring[n:]...)
			b.stats.Injected += uint64(n)
		}
	} else if room := b.size - len(t.pkts); room > 0 {
		n := min(len(t.ring), room)
		t.pkts = append(t.pkts, t.ring[:n]...)
		t.ring = append(t.ring[:0], t.ring[n:]...)
		b.stats.Injected += uint64(n)
	}
	n := len(t.pkts)
	if t.room >= 0 {
		n = min(n, t.room)
	}
	for _, m := range t.pkts[:n] {
		b.move(m, queued, wire, "send")
		t.sent = append(t.sent, m)
	}
	b.stats.Tx += uint64(n)
	left := len(t.pkts) - n
	switch {
	case left == 0:
	case b.keep:
		b.stats.TxRefused += uint64(left)
		copy(t.pkts, t.pkts[n:])
	default:
		b.stats.TxUnsent += uint64(left)
		for _, m := range t.pkts[n:] {
			b.release(m, queued, "unsent")
		}
	}
	if b.keep {
		t.pkts = t.pkts[:left]
	} else {
		t.pkts = t.pkts[:0]
	}
}

// Sent returns the frames the last flush sent on TX buffer tx, in order:
// readable until the next flush, which returns them to the pool.
func (b *Burst) Sent(tx int) []*dpdk.Mbuf { return b.tx[tx].sent }

// Punted returns the frames the last flush punted, as Sent.
func (b *Burst) Punted() []*dpdk.Mbuf { return b.punted }

// SetTxRoom makes TX buffer tx's PMD take at most n frames per flush, as a
// full TX ring would (n < 0: all, the default).
func (b *Burst) SetTxRoom(tx, n int) { b.tx[tx].room = n }

// SetTSC sets what TSC returns.
func (b *Burst) SetTSC(t uint64) { b.tsc = t }

// Inject puts a copy of frame on TX buffer tx's inject ring, as the
// control core would.
func (b *Burst) Inject(tx int, frame []byte) {
	t := &b.tx[tx]
	t.ring = append(t.ring, b.alloc(frame, queued))
}

// InUse returns the mbufs the worker or a queue holds: neither free nor
// sent or punted by the last flush.
func (b *Burst) InUse() int {
	n := 0
	for _, s := range b.st {
		if s == worker || s == queued {
			n++
		}
	}
	return n
}

// Stats returns the Burst's cumulative counters.
func (b *Burst) Stats() dpdk.BurstStats { return b.stats }

// Size returns the Burst's size.
func (b *Burst) Size() int { return b.size }

// TSC returns the clock SetTSC set.
func (b *Burst) TSC() uint64 { return b.tsc }

// Flushes returns the number of flushes (Cycle and Flush calls) so far.
func (b *Burst) Flushes() uint64 { return b.flush }

// InDPDKMemory returns false: its mbufs are Go memory (dpdk.GoMbufs).
func (b *Burst) InDPDKMemory() bool { return false }

// Opts returns the KeepRefused and CollectInject settings.
func (b *Burst) Opts() (keepRefused, collectInject bool) { return b.keep, b.coll }

// SendBurst queues ms on TX buffer tx; beyond Size frames pending it
// panics, as dpdk.Burst.SendBurst does.
func (b *Burst) SendBurst(tx int, ms []*dpdk.Mbuf) { b.queue(&b.tx[tx].pkts, ms, "SendBurst") }

// DropBurst queues ms to be freed by the next flush; beyond Size frames
// it panics, as dpdk.Burst.DropBurst does.
func (b *Burst) DropBurst(ms []*dpdk.Mbuf) { b.queue(&b.drop, ms, "DropBurst") }

// PuntBurst queues ms for Punted; beyond Size frames it panics, as
// dpdk.Burst.PuntBurst does.
func (b *Burst) PuntBurst(ms []*dpdk.Mbuf) { b.queue(&b.punt, ms, "PuntBurst") }

// queue hands ms from the worker to the list q, which the next flush
// empties and which holds at most Size frames until then; op names the
// caller in the panics.
func (b *Burst) queue(q *[]*dpdk.Mbuf, ms []*dpdk.Mbuf, op string) {
	if len(ms) > b.size-len(*q) {
		panic("bursttest: " + op + ": more than Size frames queued without a Flush")
	}
	for _, m := range ms {
		b.move(m, worker, queued, op)
	}
	*q = append(*q, ms...)
}

// Pending returns the frames waiting on TX buffer tx.
func (b *Burst) Pending(tx int) int { return len(b.tx[tx].pkts) }

// Unsend gives the last n frames pending on TX buffer tx back to the
// worker; n beyond Pending panics.
func (b *Burst) Unsend(tx, n int) {
	t := &b.tx[tx]
	if n < 0 || n > len(t.pkts) {
		panic(fmt.Sprintf("bursttest: Unsend(%d, %d) with %d frames pending", tx, n, len(t.pkts)))
	}
	k := len(t.pkts) - n
	for _, m := range t.pkts[k:] {
		b.move(m, queued, worker, "Unsend")
	}
	t.pkts = t.pkts[:k]
}

// TakeInjected returns up to max frames collected from TX buffer tx's
// inject ring, oldest first; they are the caller's.
func (b *Burst) TakeInjected(tx, max int) []*dpdk.Mbuf {
	t := &b.tx[tx]
	to := min(len(t.inj), t.injOff+max)
	if to <= t.injOff {
		return nil
	}
	out := t.inj[t.injOff:to]
	for _, m := range out {
		b.move(m, queued, worker, "TakeInjected")
	}
	if to == len(t.inj) {
		t.inj, t.injOff = t.inj[:0], 0
	} else {
		t.injOff = to
	}
	return out
}

// FreeBulk returns ms to the pool now.
func (b *Burst) FreeBulk(ms []*dpdk.Mbuf) {
	for _, m := range ms {
		b.release(m, worker, "FreeBulk")
	}
}

var _ dpdk.IO = (*Burst)(nil)

// SetSegments makes m, a frame the last Cycle received, claim n segments,
// as a PMD's scattered receive would (the views still cover the one
// segment there is): for tests of how a worker refuses them.
func (b *Burst) SetSegments(m *dpdk.Mbuf, n int) {
	b.move(m, worker, worker, "SetSegments")
	b.g.SetSegments(m, n)
}
