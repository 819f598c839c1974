package sched

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/poolrelay/poolrelay/internal/confcheck"
)

// Handle is an opaque reference to a frame: a DPDK mbuf pointer held as a
// uintptr, or any value the caller chooses (the tests use sequence numbers).
// The scheduler never dereferences it, and the garbage collector does not
// see it, so a Handle must not be the only reference to Go-managed memory.
type Handle uintptr

// Egress describes the TX queue a Scheduler feeds and the clock of its caller.
type Egress struct {
	// TicksPerSecond is the unit of every now argument: 1e9 for a
	// nanosecond clock, rte_get_tsc_hz() for the TSC (an int64 holds a
	// 3 GHz TSC for 97 years). now must not go backwards; if it does, no
	// time passes until it moves forward again.
	TicksPerSecond uint64
	// LineRate is the rate in bytes/s this TX queue drains at without
	// shaping (the link speed, divided among the port's TX queues). It is
	// the base of the strict classes' rate_percent when ShapeRate is 0.
	LineRate uint64
	// ShapeRate, when non-zero, shapes Dequeue's output to this many
	// bytes/s (the port's egress_rate_mbps divided among its TX queues), so
	// the backlog forms in the class queues and not in the NIC's TX ring.
	ShapeRate uint64
	// MaxBurst is the most frames one Dequeue hands out: the TX burst size.
	MaxBurst int
}

// ErrInvalid is matched by errors.Is for every error New returns.
var ErrInvalid = errors.New("sched: invalid parameters")

// Limits of Egress. A clock slower than 1 MHz cannot time a 1 ms maximum
// wait; below 1 Mbit/s the strict caps' fixed-point refill loses precision.
const (
	minHz       = 1_000_000
	maxHz       = 100_000_000_000
	minRate     = 125_000
	maxRate     = 1 << 40
	maxDequeue  = 4096
	floorOne    = 1 << 16 // fixed-point unit of the floor credit: 1 byte
	guardShareP = 5       // least share the max-wait guard may take, in percent
)

// how says which rule picked a run of frames: the rule decides how long the
// run goes on, and which guard counter it adds to.
type how uint8

const (
	byDRR how = iota
	byStrict
	byFloor
	byMaxWait
)

// staged is a frame handed out by the last Dequeue, kept until the next one
// in case tx_burst refuses it.
type staged struct {
	e     entry
	class Class
	how   how
}

// mark is the state Dequeue changes, taken after the buckets' refill, so
// that Requeue can rewind to it.
type mark struct {
	pos         [NumClasses]pos
	tokens      [3]int64 // Control, Priority, shaper
	cur         Class
	granted     bool
	lowSince    int64
	floorCredit int64
}

// ClassStats are one class's counters. Enqueued counts frames accepted into
// the queue; a frame offered to a full queue counts as Dropped instead, so
// offered = Enqueued + Dropped, and Enqueued = Sent + Depth at any time.
type ClassStats struct {
	EnqueuedPkts, EnqueuedBytes uint64
	// Sent counts frames handed out by Dequeue and not given back by Requeue.
	SentPkts, SentBytes uint64
	// Dropped counts frames refused by Enqueue because the queue was full.
	DroppedPkts, DroppedBytes uint64
	// Requeued counts frames tx_burst refused that went back to the queue.
	RequeuedPkts uint64
	// Depth is the number of frames queued now, DepthBytes their bytes.
	Depth      int
	DepthBytes uint64
}

// Stats are a scheduler's counters, indexed by Class.
type Stats struct {
	Class [NumClasses]ClassStats
	// FloorServed and MaxWaitServed count the Deprioritised frames that the
	// starvation guard sent ahead of their turn, by floor share and by
	// maximum wait.
	FloorServed, MaxWaitServed uint64
}

// Scheduler is the egress scheduler of one (egress port, TX queue) on one
// worker. It is owned by that worker's goroutine: nothing in it is safe for
// concurrent use, which is what lets the hot path run without atomics. The
// worker copies Stats into whatever it publishes to the control core.
type Scheduler struct {
	q [NumClasses]ring

	// Strict priority caps of Control and Priority, and the egress shaper.
	strict [2]bucket
	shaper bucket
	shaped bool

	// Deficit round robin: the class being visited and whether it has
	// already received its quantum for this visit.
	quantum [NumClasses]int64
	cur     Class
	granted bool

	// Starvation guard of the Deprioritised class.
	lowSince    int64  // ticks when its current head reached the head
	maxWait     int64  // ticks
	guardPerB   uint64 // ticks of wait per byte of head frame, 32.32: stretches maxWait on slow links
	floorShare  int64  // credit earned per byte sent, in 1/floorOne bytes
	floorCredit int64  // in 1/floorOne bytes
	floorDebt   int64  // lowest the credit may go, in 1/floorOne bytes

	// The last Dequeue, for Requeue: its frames, its time, the state before
	// it, and whether a frame was queued since (which forbids a rewind).
	stage    []staged
	nstaged  int
	lastNow  int64
	before   mark
	open     bool
	maxBurst int

	stats Stats
}

// New builds a scheduler for one TX queue. now is the caller's clock at
// creation, in the unit of eg.TicksPerSecond. All memory is allocated here.
func New(cfg Config, eg Egress, now int64) (*Scheduler, error) {
	errs := confcheck.New("sched")
	cfg.Validate(errs)
	if eg.TicksPerSecond < minHz || eg.TicksPerSecond > maxHz {
		errs.Addf("egress.ticks_per_second", "%d is out of range: use %d to %d", eg.TicksPerSecond, uint64(minHz), uint64(maxHz))
	}
	rate := eg.LineRate
	if eg.ShapeRate != 0 {
		rate = eg.ShapeRate
	}
	if rate < minRate || rate > maxRate || eg.ShapeRate > maxRate || eg.LineRate > maxRate {
		errs.Addf("egress.rate", "line rate %d and shape rate %d B/s: the effective one must be %d to %d", eg.LineRate, eg.ShapeRate, minRate, uint64(maxRate))
	}
	if eg.MaxBurst < 1 || eg.MaxBurst > maxDequeue {
		errs.Addf("egress.max_burst", "%d is out of range: use 1 to %d", eg.MaxBurst, maxDequeue)
	}
	if err := errs.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}

	hz := eg.TicksPerSecond
	s := &Scheduler{
		stage:    make([]staged, eg.MaxBurst),
		maxBurst: eg.MaxBurst,
		cur:      Control,
		lowSince: now,
	}
	queues := [NumClasses]int{cfg.Control.QueueFrames, cfg.Priority.QueueFrames, cfg.Normal.QueueFrames, cfg.Deprioritised.QueueFrames}
	s.quantum = [NumClasses]int64{int64(cfg.Control.QuantumBytes), int64(cfg.Priority.QuantumBytes), int64(cfg.Normal.QuantumBytes), int64(cfg.Deprioritised.QuantumBytes)}
	for c := range s.q {
		s.q[c] = newRing(queues[c])
	}
	for i, sc := range [2]StrictClassConfig{cfg.Control, cfg.Priority} {
		s.strict[i] = newBucket(rate*uint64(sc.RatePercent)/100, hz, int64(sc.BurstBytes), now)
	}
	if eg.ShapeRate != 0 {
		s.shaped = true
		// A bucket shallower than one frame still passes every frame
		// (tokens may dip below zero), so the floor only keeps it positive.
		depth := max(int64(eg.ShapeRate*uint64(cfg.ShaperBurstMicros)/1_000_000), minBurst)
		s.shaper = newBucket(eg.ShapeRate, hz, depth, now)
	}
	s.maxWait = int64(hz * uint64(cfg.MaxWaitMicros) / 1_000_000)
	s.floorShare = int64(cfg.FloorPercent) * floorOne / 100
	// Two quanta of debt: when deficit round robin already gives the class
	// more than its floor, the credit goes negative; bounding the debt means
	// the floor takes over within about two rounds once that service stops.
	s.floorDebt = -2 * s.quantum[Deprioritised] * floorOne
	guardShare := uint64(max(cfg.FloorPercent, guardShareP))
	s.guardPerB, _ = bits.Div64(hz>>32, hz<<32, rate*guardShare/100)
	return s, nil
}

// Enqueue queues frame h of length bytes in class c at time now. It returns
// false when the class queue is full: the frame is counted as dropped and
// the caller still owns h (it frees the mbuf). c must be valid.
//
// length is what the frame is charged, against the shaper, the caps, the
// quanta and the counters: mbuf pkt_len, plus the 24 bytes of preamble,
// inter-frame gap and FCS if the shaper is meant to match bits on the wire.
func (s *Scheduler) Enqueue(now int64, c Class, h Handle, length uint32) bool {
	q := &s.q[c]
	n := q.n()
	if n >= q.limit {
		// Tail drop: the frames already queued keep their place and
		// their order, and the refused handle stays with the caller, so
		// there is no evicted handle to hand back.
		cs := &s.stats.Class[c]
		cs.DroppedPkts++
		cs.DroppedBytes += uint64(length)
		return false
	}
	if n == 0 && c == Deprioritised {
		s.lowSince = now
	}
	// Enqueued is not counted here: it is Sent + Depth, which Stats adds up.
	q.push(entry{h: h, len: length})
	s.open = false
	return true
}

// EnqueueRun is Enqueue for a run of frames of one class c, in order:
// frame hs[i] of length ls[i] (len(ls) >= len(hs)). It queues the longest
// prefix of the run that fits in the class queue and returns its length;
// the rest are refused and counted as dropped, exactly as Enqueue one by
// one would have refused them (nothing leaves the queue in between). The
// caller still owns the refused handles, hs[returned:].
//
// It checks the queue's room, updates its byte count and clears the
// Requeue window once for the run instead of once per frame: a worker's
// burst mostly carries runs of one class.
func (s *Scheduler) EnqueueRun(now int64, c Class, hs []Handle, ls []uint32) int {
	q := &s.q[c]
	ls = ls[:len(hs)]
	have := q.n()
	take := len(hs)
	if room := int64(q.limit) - int64(have); int64(take) > room {
		take = int(max(room, 0))
		cs := &s.stats.Class[c]
		for _, l := range ls[take:] {
			cs.DroppedPkts++
			cs.DroppedBytes += uint64(l)
		}
	}
	if take == 0 {
		return 0
	}
	if have == 0 && c == Deprioritised {
		s.lowSince = now
	}
	var bytes uint64
	e, mask, tail := q.e, q.mask, q.tail
	for i, h := range hs[:take] {
		l := ls[i]
		e[tail&mask] = entry{h: h, len: l}
		tail++
		bytes += uint64(l)
	}
	q.tail = tail
	q.bytes += bytes
	s.open = false
	return take
}

// Dequeue fills out with the frames to transmit now, at most
// min(len(out), Egress.MaxBurst), and returns how many it wrote. It hands
// out nothing while the shaper's tokens are spent. The frames count as sent
// unless Requeue gives some of them back.
func (s *Scheduler) Dequeue(now int64, out []Handle) int {
	s.nstaged, s.open = 0, true
	if s.backlog() == 0 {
		return 0
	}
	s.strict[Control].refill(now)
	s.strict[Priority].refill(now)
	if s.shaped {
		s.shaper.refill(now)
	}
	s.lastNow = now
	s.before = mark{
		tokens:      [3]int64{s.strict[Control].tokens, s.strict[Priority].tokens, s.shaper.tokens},
		cur:         s.cur,
		granted:     s.granted,
		lowSince:    s.lowSince,
		floorCredit: s.floorCredit,
	}
	for c := range s.q {
		s.before.pos[c] = s.q[c].pos
	}
	n := s.dequeue(now, min(len(out), s.maxBurst))
	out = out[:n]
	for i, st := range s.stage[:n] {
		out[i] = st.e.h
	}
	s.nstaged = n
	return n
}

// dequeue moves up to n frames into the stage and counts them as sent.
//
// Frames leave in runs: the rules pick a class, then frames follow from it
// while the same rule still allows them. Deciding once per run rather than
// per frame keeps the inner loop short and its branches predictable; the
// guard is checked between runs, which are at most one TX burst long.
func (s *Scheduler) dequeue(now int64, n int) int {
	stage := s.stage[:n]
	low := &s.q[Deprioritised]
	left := s.backlog()
	k := 0
	for k < n && left > 0 && (!s.shaped || s.shaper.tokens > 0) {
		c, by := s.next(now, low)
		q := &s.q[c]
		accrue := low.n() > 0 // the floor is earned while the class is backlogged
		first, bytes := k, int64(0)
		for {
			x := q.pop()
			l := int64(x.len)
			if c == Deprioritised {
				s.floorCredit += l*s.floorShare - l*floorOne
			} else if accrue {
				s.floorCredit += l * s.floorShare
			}
			stage[k] = staged{e: x, class: c, how: by}
			k++
			bytes += l
			if s.shaped {
				s.shaper.tokens -= l
			}
			more := false
			switch by {
			case byStrict:
				s.strict[c&1].tokens -= l
				more = s.strict[c&1].tokens > 0
			case byDRR:
				q.deficit -= l
				more = q.n() > 0 && int64(q.headLen()) <= q.deficit
			case byFloor:
				more = q.n() > 0 && s.floorCredit >= int64(q.headLen())*floorOne
			}
			if !more || k == n || q.n() == 0 || (s.shaped && s.shaper.tokens <= 0) {
				break
			}
		}

		m := k - first
		left -= uint32(m)
		cs := &s.stats.Class[c]
		cs.SentPkts += uint64(m)
		cs.SentBytes += uint64(bytes)
		switch by {
		case byFloor:
			s.stats.FloorServed += uint64(m)
		case byMaxWait:
			s.stats.MaxWaitServed += uint64(m)
		}
		if q.n() == 0 {
			// Rewinding an empty ring keeps a short queue in the same
			// few cache lines instead of walking the whole ring.
			q.deficit, q.head, q.tail = 0, 0, 0
		}
		if c == Deprioritised {
			s.lowSince = now
		}
		if s.floorCredit < s.floorDebt {
			s.floorCredit = s.floorDebt
		}
		if low.n() == 0 && s.floorCredit > 0 {
			// The floor is a share while backlogged: an idle class banks
			// nothing.
			s.floorCredit = 0
		}
	}
	return k
}

// next picks the class of the next run and the rule that picked it, in the
// order of the package doc; some class must be backlogged. low is the
// Deprioritised queue.
func (s *Scheduler) next(now int64, low *ring) (Class, how) {
	lowDue := low.n() > 0
	if lowDue {
		if w := now - s.lowSince; w >= s.maxWait && w >= s.guardWait(low.headLen()) {
			return Deprioritised, byMaxWait
		}
	}
	for c := Control; c <= Priority; c++ {
		if s.q[c].n() > 0 && s.strict[c].tokens > 0 {
			return c, byStrict
		}
	}
	if lowDue && s.floorCredit >= int64(low.headLen())*floorOne {
		return Deprioritised, byFloor
	}
	return s.drr(), byDRR
}

// guardWait is the shortest wait that lets the max-wait guard serve a head
// frame of n bytes: on a link too slow to send one such frame per maximum
// wait within the floor share (at least 5%, so also with the floor off), the
// maximum wait stretches, or the guard would hand the whole link to the
// lowest class.
func (s *Scheduler) guardWait(n uint32) int64 {
	hi, lo := bits.Mul64(uint64(n), s.guardPerB)
	return int64(hi<<32 | lo>>32)
}

// drr is deficit round robin over every backlogged class: a class gets its
// quantum once per visit and sends while its head fits in its deficit. It
// returns the class whose head fits; the caller charges the deficit.
// Control and Priority reach it only when their bucket is spent, and
// Deprioritised only when no other class has frames: below the others it
// has its floor and its maximum wait, so it is served last but never
// blocked. (Taking part in the round robin gave a heavy consumer a third
// of a congested link beside normal traffic, as much as its frames asked
// for: the simulation in package sim found freeriders served as well as
// contributors.)
func (s *Scheduler) drr() Class {
	above := s.q[Control].n() + s.q[Priority].n() + s.q[Normal].n()
	for {
		q := &s.q[s.cur]
		if q.n() > 0 && (s.cur != Deprioritised || above == 0) {
			if !s.granted {
				q.deficit += s.quantum[s.cur]
				s.granted = true
			}
			if int64(q.headLen()) <= q.deficit {
				return s.cur
			}
		}
		s.cur = (s.cur + 1) % NumClasses
		s.granted = false
	}
}

// Requeue tells the scheduler that tx_burst took only the first sent frames
// of the last Dequeue. It leaves the scheduler exactly as if that Dequeue
// had handed out those sent frames alone: the others are back at the head of
// their class queues, in their order, never dropped, and the shaper, the
// caps, the round robin, the floor and the counters are as they would have
// been. It works by rewinding to the state before the Dequeue, whose popped
// frames are still in place, and dequeuing sent frames again at the same
// time, which picks the same frames.
//
// So it must come after the Dequeue and before any Enqueue (one refused at a
// full queue changes nothing and does not count); sent equal to what Dequeue
// returned is a no-op at any time. Anything else (sent out of range, or
// refused frames handed back after new ones were queued) is a programming
// error that panics: the frames could no longer be put back.
func (s *Scheduler) Requeue(sent int) {
	if sent == s.nstaged {
		return
	}
	if sent < 0 || sent > s.nstaged || !s.open {
		panic(fmt.Sprintf("sched: Requeue(%d) after a Dequeue of %d frames (Enqueue since: %v)", sent, s.nstaged, !s.open))
	}
	for _, st := range s.stage[:s.nstaged] {
		cs := &s.stats.Class[st.class]
		cs.SentPkts--
		cs.SentBytes -= uint64(st.e.len)
		switch st.how {
		case byFloor:
			s.stats.FloorServed--
		case byMaxWait:
			s.stats.MaxWaitServed--
		}
	}
	for _, st := range s.stage[sent:s.nstaged] {
		s.stats.Class[st.class].RequeuedPkts++
	}
	b := &s.before
	for c := range s.q {
		s.q[c].pos = b.pos[c]
	}
	s.strict[Control].tokens, s.strict[Priority].tokens, s.shaper.tokens = b.tokens[0], b.tokens[1], b.tokens[2]
	s.cur, s.granted, s.lowSince, s.floorCredit = b.cur, b.granted, b.lowSince, b.floorCredit
	s.nstaged = s.dequeue(s.lastNow, sent)
}

// Purge empties every queue, handing each queued frame to free, class by
// class in queue order, and counts them as dropped: what a worker does with
// its backlog when it stops. It ends any Dequeue's chance of a Requeue.
func (s *Scheduler) Purge(free func(Handle)) int {
	n := 0
	for c := range s.q {
		q := &s.q[c]
		cs := &s.stats.Class[c]
		for i := q.head; i != q.tail; i++ {
			free(q.e[i&q.mask].h)
		}
		cs.DroppedPkts += uint64(q.n())
		cs.DroppedBytes += q.bytes
		n += int(q.n())
		q.pos = pos{}
	}
	s.floorCredit, s.nstaged, s.open = 0, 0, false
	return n
}

// Room returns how many more frames class c's queue accepts now. A caller
// that must not drop a class's frames (the control core's, which can wait
// in their inject ring instead) takes only this many. c must be valid.
func (s *Scheduler) Room(c Class) int { return int(s.q[c].limit - s.q[c].n()) }

// Backlog returns the number of frames queued in all classes.
func (s *Scheduler) Backlog() int { return int(s.backlog()) }

func (s *Scheduler) backlog() uint32 {
	return s.q[Control].n() + s.q[Priority].n() + s.q[Normal].n() + s.q[Deprioritised].n()
}

// Stats returns a copy of the counters, with the current queue depths.
func (s *Scheduler) Stats() Stats {
	st := s.stats
	for c := range s.q {
		cs := &st.Class[c]
		cs.Depth = int(s.q[c].n())
		cs.DepthBytes = s.q[c].bytes
		cs.EnqueuedPkts = cs.SentPkts + uint64(cs.Depth)
		cs.EnqueuedBytes = cs.SentBytes + cs.DepthBytes
	}
	return st
}
