package egress

import (
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/sched"
)

// WireOverhead is what a frame costs on the wire beyond its mbuf length:
// 8 bytes of preamble and start delimiter, 12 of inter-frame gap and the
// 4-byte FCS the NIC appends. Every frame is charged PktLen plus this, so
// egress_rate_mbps is in line bits, as the link speed is: 64-byte frames
// would otherwise overshoot a shaped rate by a third.
const WireOverhead = 24

// DefaultLinkMbps is the link speed assumed when the port reports none
// (most virtual devices): it only sets the base of the strict classes'
// caps on an unshaped port.
const DefaultLinkMbps = 10_000

// AdviseTxDescriptors is the largest TX ring New accepts without a warning
// on an unshaped port. Unshaped, the backlog that the NIC's ring can hold is
// out of the scheduler's reach: 256 descriptors of 1500-byte frames are
// 3 ms at 1 Gbit/s, in arrival order whatever the class. See the package doc.
const AdviseTxDescriptors = 256

// ErrConfig is matched by errors.Is for every error New returns.
var ErrConfig = errors.New("egress: invalid configuration")

// Config is what a Port needs besides its Burst.
type Config struct {
	// Sched is the [sched] section: queues, caps, floor, maximum wait.
	Sched sched.Config
	// EgressRateMbps is the port's egress_rate_mbps (0: unshaped). The
	// port's rate is shared equally by its TxQueues TX queues, one per
	// worker, each shaped on its own (see the package doc).
	EgressRateMbps int
	// TxQueues is the number of TX queues of the port, at least 1.
	TxQueues int
	// LinkMbps is the port's link speed (dpdk.Port.Link); 0 when unknown,
	// which means DefaultLinkMbps.
	LinkMbps int
	// TxDescriptors is the port's TX ring size as the PMD set it
	// (dpdk.Port.Descriptors), for the warning about unshaped large rings;
	// 0 skips it.
	TxDescriptors int
	// TicksPerSecond is the unit of every now argument: dpdk.EAL.TSCHz for
	// dpdk.Burst.TSC, or 1e9 for a nanosecond clock.
	TicksPerSecond uint64
	// PublishMicros is how often Drain publishes the counters for readers
	// (0: every 1000 us). Publishing costs some forty atomic stores, so
	// not per burst; readers lag by at most this.
	PublishMicros int
}

// Port is the egress of one TX queue of one port on one worker: a
// sched.Scheduler in front of one TX buffer of the worker's packet I/O, B:
// a *dpdk.Burst, or an in-memory one in tests (dpdk/bursttest). The Port
// calls B once per burst for each step (settle, collect, send, drop),
// never per frame.
// The worker that owns the Burst owns the Port: Enqueue, Drain, Publish and
// Close are not safe for concurrent use (they need no lock because of it).
// Stats may be called from any goroutine.
type Port[B dpdk.IO] struct {
	s   *sched.Scheduler
	b   B
	tx  int
	out []sched.Handle // one TX buffer of handles, for Dequeue and EnqueueBurst
	// lens are EnqueueBurst's frame lengths, beside out's handles.
	lens []uint32
	// ms is a burst's frames for one call of B: Drain's to send,
	// EnqueueBurst's refused ones to drop.
	ms []*dpdk.Mbuf

	// The frames the last Drain handed to the TX buffer, and the Burst's
	// flush count then: until settle, they may still come back.
	inflight int
	gen      uint64

	injected   uint64 // control frames taken from the inject ring
	pubEvery   int64  // ticks between publications
	lastPub    int64
	published  published
	purgedFree []*dpdk.Mbuf // Close's batch for B.FreeBulk
}

// New returns the Port for TX buffer tx of b (an index into
// dpdk.BurstConfig.Tx). b must be made with KeepRefused and CollectInject,
// and nothing else may send on that buffer. now is the caller's clock, in cfg.TicksPerSecond. log
// receives one line describing the Port, and the warning about the TX ring.
func New[B dpdk.IO](b B, tx int, cfg Config, now int64, log zerolog.Logger) (*Port[B], error) {
	var none B
	if any(b) == any(none) || tx < 0 || b.Size() == 0 {
		return nil, fmt.Errorf("%w: no burst, or TX buffer %d", ErrConfig, tx)
	}
	if keep, collect := b.Opts(); !keep || !collect {
		return nil, fmt.Errorf("%w: the Burst needs KeepRefused and CollectInject (it has %v and %v)", ErrConfig, keep, collect)
	}
	if cfg.TxQueues < 1 || cfg.EgressRateMbps < 0 || cfg.LinkMbps < 0 || cfg.PublishMicros < 0 {
		return nil, fmt.Errorf("%w: %d TX queues, egress rate %d Mbit/s, link %d Mbit/s, publish every %d us",
			ErrConfig, cfg.TxQueues, cfg.EgressRateMbps, cfg.LinkMbps, cfg.PublishMicros)
	}
	link := cfg.LinkMbps
	if link == 0 {
		link = DefaultLinkMbps
	}
	eg := sched.Egress{
		TicksPerSecond: cfg.TicksPerSecond,
		LineRate:       mbpsToBytes(link, cfg.TxQueues),
		ShapeRate:      mbpsToBytes(cfg.EgressRateMbps, cfg.TxQueues),
		MaxBurst:       b.Size(),
	}
	s, err := sched.New(cfg.Sched, eg, now)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	pub := cfg.PublishMicros
	if pub == 0 {
		pub = 1000
	}
	p := &Port[B]{
		s:          s,
		b:          b,
		tx:         tx,
		out:        make([]sched.Handle, b.Size()),
		lens:       make([]uint32, b.Size()),
		ms:         make([]*dpdk.Mbuf, b.Size()),
		pubEvery:   int64(cfg.TicksPerSecond / 1_000_000 * uint64(pub)),
		lastPub:    now,
		purgedFree: make([]*dpdk.Mbuf, 0, b.Size()),
	}
	log.Info().Int("tx_buffer", tx).Uint64("shape_bytes_per_s", eg.ShapeRate).
		Uint64("line_bytes_per_s", eg.LineRate).Int("burst", b.Size()).Msg("egress scheduler ready")
	if eg.ShapeRate == 0 && cfg.TxDescriptors > AdviseTxDescriptors {
		log.Warn().Int("tx_descriptors", cfg.TxDescriptors).Int("advised_max", AdviseTxDescriptors).
			Msg("unshaped port with a large TX ring: the backlog forms in the NIC, out of the scheduler's reach; set egress_rate_mbps or fewer tx_descriptors")
	}
	p.Publish()
	return p, nil
}

// mbpsToBytes is one TX queue's share of a rate in Mbit/s, in bytes/s.
func mbpsToBytes(mbps, queues int) uint64 {
	return uint64(mbps) * 1_000_000 / 8 / uint64(queues)
}

// Enqueue queues m in class c at time now and reports whether it was
// queued. A full class queue drops m at the tail: it goes to the Burst's
// drop array, is freed by the next flush and counted as dropped in its
// class. Either way m is no longer the caller's. c must be a valid class.
// For a caller with one frame: a worker hands its burst to EnqueueBurst.
func (p *Port[B]) Enqueue(m *dpdk.Mbuf, c sched.Class, now int64) bool {
	if p.inflight != 0 {
		p.settle()
	}
	if p.s.Enqueue(now, c, sched.Handle(m.Handle()), uint32(m.PktLen())+WireOverhead) {
		return true
	}
	p.ms[0] = m
	p.b.DropBurst(p.ms[:1])
	return false
}

// EnqueueBurst is Enqueue for a burst's frames towards this Port, in
// order: ms[i] in class cs[i] (valid classes; len(cs) >= len(ms), at most
// the Burst's Size frames) at time now. It sets queued[i] (len(queued) >=
// len(ms)) to whether ms[i] was queued, and returns how many were. The
// refused frames go to the Burst's drop array together, as with Enqueue;
// either way no frame of ms is the caller's any more. One call per burst
// and port: the last Drain is settled once, not checked per frame.
func (p *Port[B]) EnqueueBurst(ms []*dpdk.Mbuf, cs []sched.Class, now int64, queued []bool) int {
	if p.inflight != 0 {
		p.settle()
	}
	cs, queued = cs[:len(ms)], queued[:len(ms)]
	drops := p.ms[:0:len(ms)] // panics, as the Burst would, beyond its Size
	hs, ls := p.out[:len(ms)], p.lens[:len(ms)]
	// The scheduler takes each run of one class in one call; the run's
	// handles and lengths are gathered while finding its end.
	for i := 0; i < len(ms); {
		c, j := cs[i], i
		for ; j < len(ms) && cs[j] == c; j++ {
			m := ms[j]
			hs[j], ls[j] = sched.Handle(m.Handle()), uint32(m.PktLen())+WireOverhead
		}
		k := i + p.s.EnqueueRun(now, c, hs[i:j], ls[i:j])
		for x := i; x < k; x++ {
			queued[x] = true
		}
		for x := k; x < j; x++ {
			queued[x] = false
		}
		if k < j {
			drops = append(drops, ms[k:j]...)
		}
		i = j
	}
	if len(drops) != 0 {
		p.b.DropBurst(drops)
	}
	return len(ms) - len(drops)
}

// Drain hands the TX buffer what the scheduler releases now: first it
// takes back what the last flush refused (at the head of its class queue,
// as if never sent), then queues the control core's frames from the inject
// ring in class Control, then moves at most the buffer's free room into it.
// Call it once per burst, before the Cycle that sends. It returns the
// number of frames handed to the buffer.
func (p *Port[B]) Drain(now int64) int {
	b := p.b
	if p.inflight != 0 {
		p.settle()
	}
	// Take no more than the Control queue holds, so that control frames
	// are never dropped here: the rest waits in the inject ring, and a
	// full ring pushes back on the control core.
	if room := p.s.Room(sched.Control); room > 0 {
		for _, m := range b.TakeInjected(p.tx, room) {
			p.s.Enqueue(now, sched.Control, sched.Handle(m.Handle()), uint32(m.PktLen())+WireOverhead)
			p.injected++
		}
	}
	free := b.Size() - b.Pending(p.tx)
	n := p.s.Dequeue(now, p.out[:free])
	if n != 0 {
		ms := p.ms[:n]
		for i, h := range p.out[:n] {
			ms[i] = dpdk.MbufAt(uintptr(h))
		}
		b.SendBurst(p.tx, ms)
		p.inflight, p.gen = n, b.Flushes()
	}
	if now-p.lastPub >= p.pubEvery {
		p.lastPub = now
		p.Publish()
	}
	return n
}

// settle accounts for the frames the last Drain handed to the TX buffer.
// If the Burst has flushed since, the refused ones are the buffer's pending
// frames (KeepRefused keeps them there, and this Port is the buffer's only
// sender): they come off the buffer and go back to the scheduler. If it
// has not (an Enqueue between Drain and Cycle), all of them do.
func (p *Port[B]) settle() {
	n := p.inflight
	p.inflight = 0
	refused := n
	if p.b.Flushes() != p.gen {
		refused = p.b.Pending(p.tx)
		if refused > n {
			panic(fmt.Sprintf("egress: %d frames pending on TX buffer %d after a flush of the Port's %d: another sender, or a Burst without CollectInject", refused, p.tx, n))
		}
	}
	if refused != 0 {
		p.b.Unsend(p.tx, refused)
		p.s.Requeue(n - refused)
	}
}

// Injected returns how many control frames Drain has taken from the inject
// ring so far. For the owning worker, like Drain.
func (p *Port[B]) Injected() uint64 { return p.injected }

// Backlog returns the frames queued in the Port's class queues.
func (p *Port[B]) Backlog() int { return p.s.Backlog() }

// Close settles the last Drain, frees every frame still queued (counted as
// dropped in its class) and publishes the final counters. Call it from the
// owning worker after its last Drain and Flush, and before the Burst's
// Close.
func (p *Port[B]) Close() {
	if p.inflight != 0 {
		p.settle()
	}
	p.s.Purge(func(h sched.Handle) {
		p.purgedFree = append(p.purgedFree, dpdk.MbufAt(uintptr(h)))
		if len(p.purgedFree) == cap(p.purgedFree) {
			p.b.FreeBulk(p.purgedFree)
			p.purgedFree = p.purgedFree[:0]
		}
	})
	p.b.FreeBulk(p.purgedFree)
	p.purgedFree = p.purgedFree[:0]
	p.Publish()
}
