package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/egress"
	"github.com/poolrelay/poolrelay/dataplane/neigh"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/sched"
)

// WorkerConfig is what one worker reads. Everything in it is shared
// read-only with the other workers, except Counters, which is the worker's
// own.
type WorkerConfig struct {
	// ID is the worker's index, 0 to Tables.Workers()-1: it selects the
	// worker's key clones and replay windows in the Tables.
	ID int
	// Tables are the routes, hop keys and peer classes.
	Tables *Tables
	// Counters is the worker's core of the counter set; its peer dimension
	// must be at least Tables.Peers() and its reason dimension NumReasons.
	Counters *counters.Core
	// Routes is the worker's core of the per-route counters: each relayed
	// frame is counted under its route's Counter slot (a route whose slot
	// is beyond them is dropped, ReasonBadEgress). nil counts no route.
	Routes *counters.RouteCore
	// RoutesEvery is how often the route counters are published, in the
	// Burst's TSC ticks (about a millisecond's worth in the Engine): 0
	// publishes them after every burst, as the other counters are.
	RoutesEvery uint64
	// Matcher holds the UDP ports that carry POOL.
	Matcher *wire.Matcher
	// Addrs are the relay's own addresses per port, for ARP and neighbour
	// solicitations (nil: none, nothing is answered).
	Addrs *neigh.Addrs
	// Neighbors are the resolved next-hop MACs, for routes with
	// route.FlagResolveMAC (nil: none resolves).
	Neighbors *neigh.Published
	// MACs are the relay's Ethernet addresses by port index: the source of
	// ARP and neighbour answers. Port index i is TX buffer i of the Burst
	// and route.EgressPort i.
	MACs []wire.MAC
	// KeepAuth verifies the incoming hop MAC and replay window and writes a
	// fresh seq and MAC for the next hop. Turning it off forwards DATA
	// frames with their outer POOL header untouched: for benchmarks
	// measuring what hop authentication costs, never for service.
	KeepAuth bool
}

// Worker is one core's relay: it turns each received burst into sends,
// punts and drops. Its state is the worker goroutine's alone; it holds
// per-burst scratch for the largest burst so that nothing is allocated after
// NewWorker.
//
// B is its packet I/O: a *dpdk.Burst in service, dpdk/bursttest's
// in-memory Burst in the tests that run without DPDK. The Worker calls B
// only per burst (a SendBurst or an egress EnqueueBurst per port, one
// DropBurst, one PuntBurst): B's methods go through the instantiation's
// dictionary, uninlined, so the per-frame work is all in worker, which is
// not generic, on mbufs through their own accessors and on the worker's
// arrays.
type Worker[B dpdk.IO] struct {
	worker
	// eg[p] is the egress of port index p (AttachEgress), nil when frames
	// go straight to the Burst's TX buffers.
	eg []*egress.Port[B]
}

// worker is a Worker's state and per-frame work, none of which depends
// on its packet I/O.
type worker struct {
	id     int
	tables *Tables
	c      *counters.Core
	m      *wire.Matcher
	// rc are the route counters (nil: none), routeSlots their number
	// (1<<32 without them: every slot passes), rcEvery and rcAt the
	// publication period and the TSC of the last.
	rc         *counters.RouteCore
	routeSlots int64
	rcEvery    int64
	rcAt       int64
	addrs      *neigh.Addrs
	neigh      *neigh.Published
	macs       []wire.MAC
	keepAuth   bool

	// now is the Burst's TSC for the current burst, the class queues'
	// clock.
	now int64
	// egq[p] is the burst's frames for port index p, handed to its
	// egress in one egress.Port.EnqueueBurst, or to TX buffer p in one
	// SendBurst, at the end of the burst; lens[i] is frame i's length on
	// send, counted once its egress took it. drops and punts are the
	// burst's dropped and punted frames, nDrop and nPunt their number.
	egq          []egBatch
	lens         [dpdk.MaxBurst]int32
	drops, punts [dpdk.MaxBurst]*dpdk.Mbuf
	nDrop, nPunt int
	// touch keeps the prefetching loads of decide from being optimised
	// away.
	touch byte

	// seqOf is the egress key slot the worker holds seqs of, seqNext the
	// next of them and seqLeft how many are left: reserved for the rest
	// of the burst (hopmac.Sequence.Reserve), one atomic operation per
	// burst and slot instead of one per frame, and given up at the end of
	// the burst so that no seq waits long enough to fall behind a
	// receiver's window. left is the number of lookups still to relay in
	// the burst, the size of a reservation.
	seqOf   *hopSlot
	seqNext uint64
	seqLeft int
	left    int

	// nh is the next hop of the last relayed frame, made from nhOf: bursts
	// mostly carry runs of one hop session, and NewNextHop (address
	// conversions and checksum sums) measured half the cost of relaying a
	// frame without authentication.
	nh   wire.NextHop
	nhOf nextHopKey
	// nhRt and nhDst are the route (in routes, this burst's) and
	// destination MAC nh was last confirmed for: the next frame of the
	// same run of one session skips even the comparison with nhOf. decide
	// clears nhRt at each burst, whose lookups reuse routes.
	nhRt  *route.Route
	nhDst wire.MAC

	// Per-port bytes and frames queued for TX in this burst, for one
	// counters.Sent call per port.
	txPkts, txBytes []int

	// Per-burst scratch, indexed by the frame's place in the burst (res,
	// verdicts, frames), by its place among the lookups (which, ref) or
	// by its run's place among the runs of one session (ids, routes,
	// found): lookup j is frame which[j] of run ref[j].
	frames   [dpdk.MaxBurst][]byte
	res      [dpdk.MaxBurst]wire.Result
	verdicts [dpdk.MaxBurst]verdict
	ids      [dpdk.MaxBurst]route.SessionID
	which    [dpdk.MaxBurst]uint16
	ref      [dpdk.MaxBurst]uint16
	routes   [dpdk.MaxBurst]route.Route
	found    [dpdk.MaxBurst]bool
	// The hop MAC state of each lookup between the burst's passes (see
	// decide).
	hops [dpdk.MaxBurst]hopState

	// gmac and gsign are the burst's hop MAC jobs in C memory
	// (intel-ipsec-mb), to verify and to sign: one cgo call each per
	// burst, nil where the Tables keep to Go's GCM. Two batches, so that
	// the pass reading the verifications adds the signatures.
	gmac, gsign *dpdk.GMACBatch
	// charges[i] is what frame i (verdict actRelay) is charged once it is
	// handed to its egress: not before, so that nobody pays for a frame
	// a full class queue refused.
	charges [dpdk.MaxBurst]charge
	run     chargeRun
}

// The masks by dpdk.MaxBurst-1 (sent, enqueue) keep the index checks out
// of the loops; they need MaxBurst to be a power of two, which fails to
// compile otherwise.
var _ = [1]struct{}{}[dpdk.MaxBurst&(dpdk.MaxBurst-1)]

// egBatch is a burst's frames for one port, in order: the mbufs, their
// classes, their places in the burst, and whether the egress (or the TX
// buffer, which takes all) took each.
type egBatch struct {
	n int
	// bytes is the sum of the batch's frame lengths.
	bytes  int
	ms     [dpdk.MaxBurst]*dpdk.Mbuf
	cs     [dpdk.MaxBurst]sched.Class
	at     [dpdk.MaxBurst]uint16
	queued [dpdk.MaxBurst]bool
}

// hopState is what a lookup's frame carries from one pass of decide to
// the next: its keys (out nil: nothing to sign), its next-hop MAC, its
// ingress peer's word, the checksum sum of what the new seq and tag
// replace, its new seq, whether it came from an unauthenticated peer, and
// the pass it waits for.
type hopState struct {
	in, out *hopSlot
	dst     wire.MAC
	pass    uint8
	inOpen  bool
	peer    uint32
	oldSum  uint64
	seq     uint64
	// udp is the frame's UDP checksum update, held from its rewrite
	// (wire.RewriteHeld) to its last change, and stored once: a checksum
	// left to offload is completed there, over the final bytes.
	udp wire.UDPHeld
}

// The passes of decide a lookup waits for; 0: done or dropped.
const (
	passVerify  = 1 + iota // its MAC, to verify
	passRewrite            // verified, or nothing to verify: to rewrite
	passSign               // rewritten and given a seq: its MAC to write
)

// charge is the counting of one relayed frame: the peers it is relayed for
// and towards, its outer POOL bytes, and whether the peer it is relayed
// for gives no credit (Tables.SetCredit).
type charge struct {
	in, out, route uint32
	uncredited     bool
	bytes          int
}

// chargeRun is a run of charges between the same two peers, n frames,
// and within it the current run of one route (counter slot), rn frames:
// kept apart, so that routes interleaved between one peer pair do not cut
// the peers' run.
type chargeRun struct {
	in, out    uint32
	uncredited bool
	n, bytes   int

	route     uint32
	rn, rbyte int
}

// nextHopKey is what a wire.NextHop is made from.
type nextHopKey struct {
	src, dst         [16]byte
	srcMAC, dstMAC   wire.MAC
	srcPort, dstPort uint16
	family           route.Family
}

// action is what happens to a frame at the end of a burst.
type action uint8

const (
	actDrop     action = iota // b.Drop, counted under verdict.reason
	actSend                   // the egress of port verdict.tx, class verdict.class
	actPunt                   // the punt ring, to the control core
	actLookup                 // a relayed DATA frame waiting for its route (transient)
	actAnswerND               // a neighbour solicitation for us: answer in the mbuf's room
	actRelay                  // actSend, then charge the peers as charges[i] says
)

// verdict is a frame's fate, decided during the burst, acted on at its end.
//
// It packs into 8 bytes, one store per frame: the reason fits a byte
// (NumReasons is far below 256, checked by a test).
type verdict struct {
	act    action
	class  sched.Class
	reason reason8
	// tags is the VLAN change the frame still needs on send, which moves
	// its start: -1 pushes an 802.1Q tag with id vlan, n > 0 pops n tags.
	tags int8
	tx   uint16
	vlan uint16
}

// reason8 is a Reason in a byte.
type reason8 uint8

// ErrWorkerConfig wraps a WorkerConfig that NewWorker refuses.
var ErrWorkerConfig = errors.New("relay: invalid worker config")

// NewWorker returns the worker for cfg, on packet I/O of type B.
func NewWorker[B dpdk.IO](cfg WorkerConfig) (*Worker[B], error) {
	switch {
	case cfg.Tables == nil || cfg.Counters == nil || cfg.Matcher == nil:
		return nil, errors.Join(ErrWorkerConfig, errors.New("relay: worker needs tables, counters and a matcher"))
	case cfg.ID < 0 || cfg.ID >= cfg.Tables.Workers():
		return nil, errors.Join(ErrWorkerConfig, errors.New("relay: worker id beyond the tables' workers"))
	case len(cfg.MACs) == 0:
		return nil, errors.Join(ErrWorkerConfig, errors.New("relay: worker needs the MAC of every port"))
	}
	w := &Worker[B]{worker: worker{
		id: cfg.ID, tables: cfg.Tables, c: cfg.Counters, m: cfg.Matcher,
		addrs: cfg.Addrs, neigh: cfg.Neighbors, macs: cfg.MACs, keepAuth: cfg.KeepAuth,
		txPkts: make([]int, len(cfg.MACs)), txBytes: make([]int, len(cfg.MACs)),
		rc: cfg.Routes, routeSlots: 1 << 32, rcEvery: int64(min(cfg.RoutesEvery, 1<<62)),
		egq: make([]egBatch, len(cfg.MACs)),
	}}
	if w.rc != nil {
		w.routeSlots = int64(w.rc.Slots())
	}
	if cfg.KeepAuth && cfg.Tables.gmac {
		var err error
		if w.gmac, err = dpdk.NewGMACBatch(dpdk.MaxBurst); err != nil {
			return nil, err
		}
		if w.gsign, err = dpdk.NewGMACBatch(dpdk.MaxBurst); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Burst relays one received burst: rx are the frames Cycle just returned
// for port (a port index). Each frame goes to exactly one of the egress
// (or b's TX buffers), b's drop or b's punt array; nothing is left with the
// caller. The counters are published once, at the end.
//
// It makes no cgo call, takes no lock, logs nothing and allocates nothing:
// the mbuf accessors are plain loads and stores, and b is called once per
// burst for each destination, which only copies pointers until its next
// Cycle.
func (w *Worker[B]) Burst(b B, port int, rx []*dpdk.Mbuf) {
	if len(rx) == 0 {
		// An idle worker still publishes what its route counters hold.
		if w.rc != nil && w.rc.Pending() {
			w.now = int64(b.TSC())
			w.publishRoutes()
		}
		return
	}
	w.now = int64(b.TSC())
	// Only DPDK's mbufs go to intel-ipsec-mb: a fake's are Go memory.
	w.burst(port, rx, b.InDPDKMemory())
	w.handOver(b)
}

// handOver gives b and the egress the burst's frames, a call per
// destination, and counts them.
func (w *Worker[B]) handOver(b B) {
	for tx := range w.egq {
		q := &w.egq[tx]
		n := q.n
		if n == 0 {
			continue
		}
		q.n = 0
		took := n
		if w.eg != nil {
			took = w.eg[tx].EnqueueBurst(q.ms[:n], q.cs[:n], w.now, q.queued[:n])
		} else {
			b.SendBurst(tx, q.ms[:n])
		}
		w.taken(tx, n, took)
	}
	if w.nDrop != 0 {
		b.DropBurst(w.drops[:w.nDrop])
		w.nDrop = 0
	}
	if w.nPunt != 0 {
		b.PuntBurst(w.punts[:w.nPunt])
		w.nPunt = 0
	}
	w.flushCharge()
	w.publish()
}

// burst decides the frames of rx and sorts them into the burst's batches
// per port, drops and punts (inDPDK: rx are DPDK's mbufs, which the hop
// MACs may take to intel-ipsec-mb).
func (w *worker) burst(port int, rx []*dpdk.Mbuf, inDPDK bool) {
	// pool_relay trace: one atomic load per burst when no trace runs.
	if t := w.tables.trace.Load(); t != nil {
		t.capture(port, rx)
	}
	// The frames' views, and in the same pass over the mbufs a load of
	// the first two cache lines of every frame (the headers through the
	// POOL session, seq and MAC) before decide classifies any: the loads
	// are independent, so the cache misses of the whole burst overlap
	// instead of stalling each frame's Classify in turn (the first load
	// of a frame was 28% of Classify's time, perf annotate). Go has no
	// prefetch instruction; a load whose value is kept is the portable
	// one. One pass instead of two saves a walk over the burst's mbufs.
	//
	// Only two lines, with hop authentication too: touching every line of
	// 1500-byte frames (48 KB a burst, more than L1) measured slower at
	// 1500 B, and the MACs read the rest sequentially, which the hardware
	// prefetcher follows.
	frames := w.frames[:len(rx)]
	var touch byte
	for i, m := range rx {
		if m.Segments() != 1 {
			frames[i] = nil
			continue
		}
		f := m.Data()
		if len(f) > 64 {
			touch |= f[0] ^ f[64]
		}
		frames[i] = f
	}
	w.touch = touch
	if inDPDK {
		w.decide(port, rx, frames)
	} else {
		w.decide(port, nil, frames)
	}
	w.act(port, rx, frames)
}

// act sorts the decided frames of rx (frames their views) into the burst's
// batches per port, drops and punts, doing what their verdicts say on the
// way: VLAN tags, neighbour answers.
func (w *worker) act(port int, rx []*dpdk.Mbuf, frames [][]byte) {
	// At rx's length, checked once here rather than per frame.
	frames, verdicts := frames[:len(rx)], w.verdicts[:len(rx)]
	for i, m := range rx {
		v := &verdicts[i]
		switch v.act {
		case actSend, actRelay:
			n := len(frames[i])
			if v.tags != 0 {
				if n = retag(m, v); n < 0 {
					w.c.Dropped(int(ReasonBadEgress))
					w.drop(m)
					break
				}
			}
			w.send(i, int(v.tx), v.class, m, n)
		case actPunt:
			w.punts[w.nPunt&(dpdk.MaxBurst-1)] = m
			w.nPunt++
		case actAnswerND:
			// The advertisement can be longer than the solicitation:
			// answer in the mbuf's whole data room, then trim to it.
			n := m.Len()
			full := m.SetLen(n + m.Tailroom())
			if l, ok := wire.AnswerND(full[:n], &w.res[i], w.macs[port]); ok {
				m.SetLen(l)
				w.send(i, port, sched.Control, m, l)
			} else {
				m.SetLen(n)
				w.c.Dropped(int(wire.DropBadND))
				w.drop(m)
			}
		default:
			w.c.Dropped(int(v.reason))
			w.drop(m)
		}
		frames[i] = nil // no reference into an mbuf outlives the burst
	}
}

// drop adds m to the burst's dropped frames.
func (w *worker) drop(m *dpdk.Mbuf) {
	w.drops[w.nDrop&(dpdk.MaxBurst-1)] = m
	w.nDrop++
}

// charge counts a relayed frame. A burst mostly carries runs of one hop
// session: a run is summed here and counted once (flushCharge), which
// spares the counters a read-modify-write chain through the same two rows
// per frame.
func (w *worker) charge(ch *charge) {
	r := &w.run
	if r.n != 0 && (ch.in != r.in || ch.out != r.out || ch.uncredited != r.uncredited) {
		w.flushCharge()
	}
	if r.rn != 0 && ch.route != r.route {
		w.flushRoute()
	}
	r.in, r.out, r.route, r.uncredited = ch.in, ch.out, ch.route, ch.uncredited
	r.n++
	r.bytes += ch.bytes
	r.rn++
	r.rbyte += ch.bytes
}

// flushCharge counts the run of charges summed so far.
func (w *worker) flushCharge() {
	r := &w.run
	if r.n != 0 {
		w.c.RelayedFor(r.in, r.n, r.bytes)
		w.c.RelayedTowards(r.out, r.n, r.bytes)
		if r.uncredited {
			w.c.RelayedUncredited(r.out, r.n, r.bytes)
		}
		r.n, r.bytes = 0, 0
	}
	w.flushRoute()
}

// flushRoute counts the run of one route summed so far.
func (w *worker) flushRoute() {
	r := &w.run
	if r.rn != 0 && w.rc != nil {
		w.rc.Add(r.route, r.rn, r.rbyte)
	}
	r.rn, r.rbyte = 0, 0
}

// retag pushes or pops VLAN tags as v says, moving the Ethernet addresses
// (12 bytes) rather than the frame, and returns the new length, or -1 when
// the mbuf has no headroom for a tag (never for a frame a PMD received:
// they come with dpdk.Headroom bytes of it).
func retag(m *dpdk.Mbuf, v *verdict) int {
	if v.tags < 0 {
		d := m.Prepend(wire.VLANTagLen)
		if d == nil {
			return -1
		}
		copy(d[:12], d[wire.VLANTagLen:wire.VLANTagLen+12])
		e := wire.Ethernet(d)
		e.SetEtherType(wire.EtherTypeVLAN)
		binary.BigEndian.PutUint16(d[14:], v.vlan&0x0fff)
		return len(d)
	}
	n := int(v.tags) * wire.VLANTagLen
	d := m.Data()
	copy(d[n:n+12], d[:12])
	return len(m.Adj(n))
}

// send is the egress step for frame i of the burst: it adds m, n bytes
// long, to the burst's batch for port index tx with the frame's scheduler
// class, handed at the end of the burst to the port's egress (its class
// queues) when the Worker has one (AttachEgress), else to TX buffer tx.
func (w *worker) send(i, tx int, class sched.Class, m *dpdk.Mbuf, n int) {
	q := &w.egq[tx]
	k := q.n & (dpdk.MaxBurst - 1)
	// queued is the egress's to set (EnqueueBurst); a TX buffer takes
	// all, which taken knows without it.
	q.ms[k], q.cs[k], q.at[k] = m, class, uint16(i)
	q.n++
	q.bytes += n
	w.lens[i&(dpdk.MaxBurst-1)] = int32(n)
}

// taken counts the n frames of port index tx's batch once its egress (or
// TX buffer) had them, took of them: sent, or dropped by a full class
// queue (which the egress counts in its class, and the worker under
// ReasonEgressFull). When all were taken, the usual case, the port's
// frames and bytes are added once for the batch and only the relayed
// frames' charges are left per frame.
func (w *worker) taken(tx, n, took int) {
	q := &w.egq[tx]
	bytes := q.bytes
	q.bytes = 0
	if took == n {
		w.txPkts[tx] += n
		w.txBytes[tx] += bytes
		r := &w.run
		for _, i := range q.at[:n] {
			if i &= dpdk.MaxBurst - 1; w.verdicts[i].act != actRelay {
				continue
			}
			// A frame that continues the run (rn != 0 implies n != 0)
			// is summed here; charge, too large to inline, starts a
			// new one.
			ch := &w.charges[i]
			if r.rn != 0 && ch.in == r.in && ch.out == r.out && ch.route == r.route {
				r.n++
				r.bytes += ch.bytes
				r.rn++
				r.rbyte += ch.bytes
				continue
			}
			w.charge(ch)
		}
		return
	}
	for k, ok := range q.queued[:n] {
		i := int(q.at[k])
		if ok {
			w.sent(i, tx, int(w.lens[i&(dpdk.MaxBurst-1)]))
		} else {
			w.c.Dropped(int(ReasonEgressFull))
		}
	}
}

// sent counts frame i, n bytes, as taken for port index tx, and charges
// its peers if it was relayed: not before, so that nobody pays for a
// frame a full class queue refused.
func (w *worker) sent(i, tx, n int) {
	w.txPkts[tx]++
	w.txBytes[tx] += n
	if i &= dpdk.MaxBurst - 1; w.verdicts[i].act == actRelay {
		w.charge(&w.charges[i])
	}
}

// ErrEgress wraps an AttachEgress the worker refuses.
var ErrEgress = errors.New("relay: egress ports do not match the worker's ports")

// AttachEgress puts eg[p], the class queues of port index p, between the
// worker and TX buffer p of its Burst: from then on every frame the worker
// sends (relayed in its ingress peer's class, ARP and neighbour answers in
// class Control) is queued there, and the caller runs Drain before each
// Cycle and CloseEgress when it stops. eg must have one Port per port of
// WorkerConfig.MACs, each made (egress.New) on the Burst the worker is
// given, with KeepRefused and CollectInject. Call it before the first
// Burst, from the worker's goroutine.
func (w *Worker[B]) AttachEgress(eg []*egress.Port[B]) error {
	if len(eg) != len(w.macs) {
		return fmt.Errorf("%w: %d egress ports for %d ports", ErrEgress, len(eg), len(w.macs))
	}
	for p, e := range eg {
		if e == nil {
			return fmt.Errorf("%w: no egress for port %d", ErrEgress, p)
		}
	}
	w.eg = eg
	return nil
}

// Drain hands b's TX buffers what each port's class queues release now
// (egress.Port.Drain, which also takes the control core's injected frames
// into class Control), at the TSC of b's last Cycle. Call it before each
// Cycle, which sends. Without an egress it does nothing.
func (w *Worker[B]) Drain(b B) {
	now := int64(b.TSC())
	for _, e := range w.eg {
		e.Drain(now)
	}
}

// Backlog returns the frames waiting in the worker's egress class queues
// (0 without an egress).
func (w *Worker[B]) Backlog() int {
	n := 0
	for _, e := range w.eg {
		n += e.Backlog()
	}
	return n
}

// closeRounds bounds CloseEgress's Drain and Flush rounds: each sends up to
// a burst per port, so 64 rounds send 2048 control frames a port, a CLOSE
// to every peer of a full relay, without waiting long on a shaped port.
const closeRounds = 64

// CloseEgress is the worker's orderly stop on b: rounds of Drain and the
// Burst's Flush until the class queues are empty and the inject rings gave
// nothing more (at most closeRounds), then each port's Close, which frees
// what the class queues still hold (counted as dropped in their class) and
// publishes the final counters. Call b.Close after it.
//
// The rounds matter because a Flush only collects injected frames, which
// the Drain after it takes: a single Drain and Flush left the frames the
// control core injected after the worker's last Cycle unsent, among them
// the CLOSE a stopping relay sends each peer, so its peers kept it up until
// peer_timeout. Without an egress the Flushes top the TX buffers up from
// the rings themselves.
func (w *Worker[B]) CloseEgress(b B) {
	for round := 0; round < closeRounds; round++ {
		before := w.injected()
		w.Drain(b)
		b.Flush()
		// Nothing taken by this Drain means the previous Flush collected
		// nothing: the rings are empty, and with the queues empty too
		// everything went out.
		if round > 0 && w.injected() == before && w.Backlog() == 0 {
			break
		}
	}
	if w.rc != nil {
		w.rc.Publish()
	}
	for _, e := range w.eg {
		e.Close()
	}
}

// injected is the control frames the worker's egress took so far.
func (w *Worker[B]) injected() uint64 {
	var n uint64
	for _, e := range w.eg {
		n += e.Injected()
	}
	return n
}

// publish counts the burst's sends per port and publishes the counters.
func (w *worker) publish() {
	for p, n := range w.txPkts {
		if n != 0 {
			w.c.Sent(uint16(p), n, w.txBytes[p])
			w.txPkts[p], w.txBytes[p] = 0, 0
		}
	}
	w.c.Publish()
	w.publishRoutes()
}

// publishRoutes publishes the route counters once RoutesEvery ticks have
// passed since the last time: two atomic stores per route counted since,
// which per burst were 8 ns a frame for bursts of 32 distinct routes.
func (w *worker) publishRoutes() {
	if w.rc != nil && w.now-w.rcAt >= w.rcEvery {
		w.rc.Publish()
		w.rcAt = w.now
	}
}

// decide classifies the burst received on port, answers ARP in place,
// relays DATA (authentication, rewrite, new seq and MAC) and leaves each
// frame's fate in w.verdicts. A nil frame is a multi-segment mbuf. It counts
// the burst as received, and counts drops only through the verdicts, which
// the caller acts on.
//
// rx are the frames' mbufs: with them, and Tables that chose
// intel-ipsec-mb, the hop MACs of the whole burst are verified in one cgo
// call and written in another (dpdk.GMACBatch); without (nil: the tests'
// frames in Go memory), crypto/hopmac computes them in Go, frame by frame,
// at the same points of the burst.
func (w *worker) decide(port int, rx []*dpdk.Mbuf, frames [][]byte) {
	if len(frames) > dpdk.MaxBurst {
		panic("relay: burst larger than dpdk.MaxBurst")
	}
	// burst has loaded the first two cache lines of every frame already.
	bytes, lookups, uniq := 0, 0, 0
	for i, f := range frames {
		bytes += len(f)
		v := &w.verdicts[i]
		*v = verdict{act: actDrop}
		if f == nil {
			v.reason = reason8(ReasonSegmented)
			continue
		}
		r := &w.res[i]
		wire.Classify(f, w.m, r)
		if r.Drop != wire.DropNone {
			v.reason = reason8(r.Drop)
			continue
		}
		switch r.Kind {
		case wire.KindPoolUDP4, wire.KindPoolUDP6, wire.KindPoolIP4, wire.KindPoolIP6:
			switch {
			case r.Type != wire.TypeData || r.Channel == wire.ChannelRelayControl:
				v.act = actPunt
			case r.Channel != wire.ChannelData:
				v.reason = reason8(ReasonBadChannel)
			default:
				// uniq <= lookups <= i < MaxBurst: the masks change
				// nothing but spare the bounds checks. A frame of the
				// same session as the lookup before it (bursts mostly
				// carry runs of one hop session) shares its route:
				// one lookup per run, not per frame.
				if uniq == 0 || !sameSession(&r.Session, &w.ids[(uniq-1)&(dpdk.MaxBurst-1)]) {
					w.ids[uniq&(dpdk.MaxBurst-1)] = route.SessionID(r.Session)
					uniq++
				}
				w.ref[lookups&(dpdk.MaxBurst-1)] = uint16(uniq - 1)
				w.which[lookups&(dpdk.MaxBurst-1)] = uint16(i)
				lookups++
				v.act = actLookup
			}
		case wire.KindARP:
			w.arp(port, f, r, v)
		case wire.KindND:
			w.nd(port, f, r, v)
		}
	}
	w.c.Received(uint16(port), len(frames), bytes)
	if lookups == 0 {
		return
	}
	w.tables.routes.LookupBurst(w.ids[:uniq], w.routes[:uniq], w.found[:uniq])
	w.nhRt = nil // routes holds this burst's lookups now
	var nt *neigh.Table
	if w.neigh != nil {
		nt = w.neigh.Load()
	}
	// Three passes over the lookups, so that the hop MACs of the burst are
	// computed together (one cgo call each with intel-ipsec-mb): checks
	// and window, then verify; the verdicts, accept, rewrite and seq, then
	// sign; then the checksums over the new tags.
	vb, sb := w.gmac, w.gsign
	if rx == nil {
		vb, sb = nil, nil
	}
	// Views of the scratch at the lookups' length: indexing them by j
	// needs no further bounds check in the loops. A frame's place i
	// (< len(frames) <= MaxBurst) indexes the per-frame arrays masked by
	// MaxBurst-1, which changes nothing but spares their bounds checks.
	// A lookup's route is routes[ref[j]], found[ref[j]] (its run's),
	// ref[j] < uniq <= MaxBurst, masked alike.
	which, ref, hops := w.which[:lookups], w.ref[:lookups], w.hops[:lookups]
	res, verdicts, routes, found := &w.res, &w.verdicts, &w.routes, &w.found
	if !w.keepAuth {
		// Without hop auth no frame waits for a MAC (check leaves each at
		// passRewrite or dropped, rewrite gives none a seq): one pass,
		// check then rewrite while the frame and its route are still in
		// registers and L1, instead of the three below.
		//
		// Without hop auth check reads nothing of the frame: its outcome
		// is the route's, and a frame of the same run as the one before
		// (same lookup) that passed takes that frame's (the next hop's
		// MAC and the peer's state, read once per run of the burst as
		// the route is).
		var passed *hopState
		for j := range hops {
			i := int(which[j]) & (dpdk.MaxBurst - 1)
			h := &hops[j]
			h.pass = 0
			u := int(ref[j]) & (dpdk.MaxBurst - 1)
			if !found[u] {
				verdicts[i] = verdict{act: actDrop, reason: reason8(ReasonNoRoute)}
				passed = nil
				continue
			}
			r, rt, v := &res[i], &routes[u], &verdicts[i]
			if passed != nil && j > 0 && ref[j-1] == ref[j] {
				*v = verdict{act: actDrop}
				h.in, h.out, h.inOpen = nil, nil, false
				h.dst, h.peer, h.pass = passed.dst, passed.peer, passRewrite
			} else {
				passed = nil
				w.check(frames[i], r, rt, nt, v, h)
				if h.pass != passRewrite {
					continue
				}
				passed = h
			}
			w.rewrite(i, frames[i], r, rt, v, h)
		}
		return
	}
	// A frame of the same run as the one before (same lookup) whose
	// route passed the route's checks takes that frame's outcome of them
	// (next-hop MAC, peer state, key slots: read once per run of the
	// burst, as the route is) and only has its own checked (checkFrame).
	var passed *hopState
	for j := range hops {
		i := int(which[j]) & (dpdk.MaxBurst - 1)
		h := &hops[j]
		h.pass = 0
		u := int(ref[j]) & (dpdk.MaxBurst - 1)
		if !found[u] {
			verdicts[i] = verdict{act: actDrop, reason: reason8(ReasonNoRoute)}
			passed = nil
			continue
		}
		r := &res[i]
		if passed != nil && j > 0 && ref[j-1] == ref[j] {
			verdicts[i] = verdict{act: actDrop}
			h.dst, h.peer, h.in, h.out, h.inOpen = passed.dst, passed.peer, passed.in, passed.out, passed.inOpen
			w.checkFrame(frames[i], r, &verdicts[i], h)
		} else {
			passed = nil
			if w.check(frames[i], r, &routes[u], nt, &verdicts[i], h) {
				passed = h
			}
		}
		if h.pass == passVerify && vb != nil {
			vb.Add(rx[i], r.PoolOff, r.PayloadOff+r.PayloadLen-r.PoolOff, h.in.rxC)
		}
	}
	if vb != nil {
		vb.Verify()
	}
	// The verdicts of the MACs (the batch's jobs are the lookups at
	// passVerify, in order), the window, then the rewrite of each frame
	// that passed, in one pass.
	// goSums counts the frames whose signature (Go's GCM) or checksum
	// (not held for C: UDPHeld.Pending) the last pass does.
	job, signs, goSums := 0, 0, 0
	for j := range hops {
		h := &hops[j]
		i := int(which[j]) & (dpdk.MaxBurst - 1)
		r := &res[i]
		if h.pass == passVerify {
			var ok bool
			if vb != nil {
				ok = vb.OK(job)
				job++
			} else {
				ok = h.in.rx[w.id].Verify(frames[i][r.PoolOff : int(r.PayloadOff)+int(r.PayloadLen)])
			}
			// The window: in order within its top word (inlined), or
			// Accept's general case.
			win := &h.in.win[w.id].w
			switch {
			case !ok:
				h.pass = 0
				verdicts[i] = verdict{act: actDrop, reason: reason8(ReasonBadMAC)}
			case !win.AcceptInOrder(r.Seq) && !win.Accept(r.Seq):
				h.pass = 0
				verdicts[i] = verdict{act: actDrop, reason: reason8(ReasonReplay)}
			default:
				h.pass = passRewrite
			}
		}
		if h.pass != passRewrite {
			continue
		}
		w.left = lookups - j
		w.rewrite(i, frames[i], r, &routes[int(ref[j])&(dpdk.MaxBurst-1)], &verdicts[i], h)
		if h.pass != passSign {
			continue
		}
		if sb == nil {
			goSums++
			continue
		}
		off, n := r.PoolOff, r.PayloadOff+r.PayloadLen-r.PoolOff
		// The UDP checksum goes with the MAC into C where it can: the
		// update held from the rewrite plus the seq's change (the old
		// tag's sum is in oldSum, the new tag's C adds), stored after
		// the tag. A checksum left to offload is completed here after
		// signing (the last pass).
		// (The seq is an even distance from the tag: its sums go with
		// the tag's.)
		// (Add and SetChecksum inline: a few stores into the job.)
		sb.Add(rx[i], off, n, h.out.txC)
		switch csum, old, new, ok := h.udp.Pending(int(off) + hopmac.MACOffset); {
		case !ok:
			goSums++
		case csum == 0: // no checksum to update
			h.pass = 0
		default:
			sb.SetChecksum(rx[i], csum, old+h.oldSum, new+seqSum(h.seq))
			h.pass = 0
		}
		signs++
	}
	if vb != nil {
		vb.Reset()
	}
	w.seqOf, w.seqLeft = nil, 0
	if sb != nil && signs != 0 {
		sb.Sign()
		sb.Reset()
	}
	if goSums == 0 {
		return
	}
	for j := range hops {
		h := &hops[j]
		if h.pass != passSign {
			continue
		}
		h.pass = 0
		i := int(which[j]) & (dpdk.MaxBurst - 1)
		f, r := frames[i], &res[i]
		if sb == nil {
			h.out.tx[w.id].Sign(f[r.PoolOff : int(r.PayloadOff)+int(r.PayloadLen)])
		}
		// The UDP checksum, once for the frame: the rewrite's held
		// update plus the sums of the values at hand over the span from
		// the seq to the tag (the bytes between do not change). An
		// unauthenticated peer's frame also had its MAC field's second
		// half cleared (rewrite): its old sum is in oldSum, its new one
		// 0. A checksum left to offload is completed instead.
		if !h.udp.NotReady() {
			tag := int(r.PoolOff) + hopmac.MACOffset
			h.udp.Add(int(r.PoolOff)+4, h.oldSum, seqSum(h.seq)+sum16(f[tag:tag+hopmac.TagSize]))
		}
		applyChecksum(w, f, r, h)
	}
}

// applyChecksum stores the frame's UDP checksum once its bytes are final
// (after the rewrite, and the new seq and MAC when it gets them): one
// incremental update, or for a checksum left to offload (an incremental
// update would have kept the partial sum partial) the whole checksum,
// counted.
func applyChecksum(w *worker, f []byte, r *wire.Result, h *hopState) {
	if h.udp.NotReady() {
		w.c.Event(int(EventChecksumCompleted))
	}
	h.udp.Apply(f, r)
}

// arp answers a request for one of our addresses in place, back out of the
// port it came from, and punts replies (the control core's resolver learns
// from them). Requests for other addresses are dropped: on a shared LAN
// they are everybody's broadcasts, and the control core learns nothing
// from them that it needs.
func (w *worker) arp(port int, f []byte, r *wire.Result, v *verdict) {
	a := wire.ARP(f[r.L3Off:])
	if a.Op() != wire.ARPOpRequest {
		v.act = actPunt
		return
	}
	if w.addrs == nil || !w.addrs.Mine(uint16(port), netip.AddrFrom4(a.TargetIP())) || !wire.AnswerARP(f, r, w.macs[port]) {
		v.reason = reason8(ReasonNotMine)
		return
	}
	*v = verdict{act: actSend, tx: uint16(port), class: sched.Control}
}

// nd marks a neighbour solicitation for one of our addresses to be answered
// (the answer may need more room than the frame has: the caller provides
// it) and punts advertisements to the resolver.
func (w *worker) nd(port int, f []byte, r *wire.Result, v *verdict) {
	m := wire.ND(f[r.L4Off:])
	if m.Type() != wire.ICMPv6NeighborSolicit {
		v.act = actPunt
		return
	}
	if w.addrs == nil || !w.addrs.Mine(uint16(port), m.TargetAddr()) {
		v.reason = reason8(ReasonNotMine)
		return
	}
	v.act = actAnswerND
}

// check takes a DATA frame whose route rt was found through the checks
// that need no MAC, in the order that charges nobody for what it drops:
// it leaves the frame in h at passVerify (hop auth: keys found, the seq
// inside the window), at passRewrite (no hop auth, or an unauthenticated
// peer's frame), or dropped in v. It reports whether the route's part of
// the checks (all but checkFrame's) passed, which holds for every frame of
// the same run in the burst.
func (w *worker) check(f []byte, r *wire.Result, rt *route.Route, nt *neigh.Table, v *verdict, h *hopState) bool {
	*v = verdict{act: actDrop}
	t := w.tables
	switch {
	case rt.Flags&route.FlagDisabled != 0:
		v.reason = reason8(ReasonDisabled)
		return false
	case int(rt.EgressPort) >= len(w.macs) || int64(rt.IngressPeer) >= int64(len(t.peers)) ||
		int64(rt.EgressPeer) >= int64(len(t.peers)) || int64(rt.Counter) >= w.routeSlots:
		v.reason = reason8(ReasonBadEgress)
		return false
	}
	h.dst = wire.MAC(rt.DstMAC)
	if rt.Flags&route.FlagResolveMAC != 0 {
		if nt == nil {
			v.reason = reason8(ReasonUnresolved)
			return false
		}
		mac, ok := nt.Lookup16(rt.EgressPort, rt.DstIP)
		if !ok {
			v.reason = reason8(ReasonUnresolved)
			return false
		}
		h.dst = mac
	}
	h.peer = t.peers[rt.IngressPeer].Load()
	if h.peer&1 != 0 {
		v.reason = reason8(ReasonDebt)
		return false
	}
	h.in, h.out, h.inOpen = nil, nil, false
	if !w.keepAuth {
		h.pass = passRewrite
		return true
	}
	var in, out *hopSlot
	if int64(rt.IngressKey) < int64(len(t.keys)) {
		in = t.keys[rt.IngressKey].Load()
	}
	if int64(rt.EgressKey) < int64(len(t.keys)) {
		out = t.keys[rt.EgressKey].Load()
	}
	// An open slot is an unauthenticated lab peer's
	// (Tables.SetUnauthenticated): nothing to verify from it, nothing to
	// sign towards it.
	if in == nil || out == nil || (in.rx == nil && !in.open) || (out.tx == nil && !out.open) {
		v.reason = reason8(ReasonNoKey)
		return false
	}
	h.in, h.inOpen = in, in.open
	h.out = nil
	if !out.open {
		h.out = out
	}
	w.checkFrame(f, r, v, h)
	return true
}

// checkFrame does check's checks of the frame itself, once the route's
// passed and left its keys in h.
func (w *worker) checkFrame(f []byte, r *wire.Result, v *verdict, h *hopState) {
	in := h.in
	// The sum of what the new seq and tag replace, for the UDP checksum,
	// read before anything writes the MAC field. Its last 16 bytes are
	// zero (verification checks; a frame from an open slot has them
	// cleared by rewrite, which adds their sum) and stay.
	pool := f[r.PoolOff : int(r.PayloadOff)+int(r.PayloadLen)]
	h.oldSum = seqSum(r.Seq) + sum16(pool[hopmac.MACOffset:hopmac.MACOffset+hopmac.TagSize])
	if in.open {
		h.pass = passRewrite
		return
	}
	// The window first, so that a replay is told from a forgery and costs
	// no MAC; then the MAC (verify); then the window takes the seq (what
	// hopmac.Key.Accept does, without its second Check).
	if !in.win[w.id].w.Check(r.Seq) {
		v.reason = reason8(ReasonReplay)
		return
	}
	h.pass = passVerify
}

// rewrite readies a frame that passed check (and verification) for the
// next hop: addresses, VLAN, and with an egress key a fresh seq, leaving
// the frame at passSign for its MAC.
func (w *worker) rewrite(i int, f []byte, r *wire.Result, rt *route.Route, v *verdict, h *hopState) {
	h.pass = 0
	dst := h.dst
	// Field by field: the compiler inlines these compares, where == on the
	// whole struct calls memequal (3% of a relayed frame, measured).
	k := &w.nhOf
	if rt == w.nhRt && dst == w.nhDst {
		// The frame before's route and MAC: nh is right.
	} else if k.src != rt.SrcIP || k.dst != rt.DstIP || k.dstMAC != dst || k.srcMAC != rt.SrcMAC ||
		k.srcPort != rt.SrcPort || k.dstPort != rt.DstPort || k.family != rt.Family {
		nh, err := wire.NewNextHop(rt.SrcMAC, dst,
			netip.AddrPortFrom(rt.SrcAddr(), rt.SrcPort), netip.AddrPortFrom(rt.DstAddr(), rt.DstPort))
		if err != nil {
			v.reason = reason8(ReasonBadEgress)
			return
		}
		w.nh = nh
		*k = nextHopKey{src: rt.SrcIP, dst: rt.DstIP, srcMAC: rt.SrcMAC, dstMAC: dst, srcPort: rt.SrcPort, dstPort: rt.DstPort, family: rt.Family}
		w.nhRt, w.nhDst = rt, dst
	} else {
		w.nhRt, w.nhDst = rt, dst
	}
	// The UDP checksum's update is held (and a checksum the sender left
	// to offload recognised) until the frame's bytes are final.
	if d := wire.RewriteHeld(f, r, &w.nh, &h.udp); d != wire.DropNone {
		v.reason = reason8(d)
		return
	}
	// The class of the peer the frame is relayed for, lowered by the
	// deprioritised mark; a frame deprioritised for a peer that gives no
	// credit leaves marked (sched.Relayed). Setting the mark is the one
	// header change, in the rare case (a freerider's frame at its first
	// hop), and the hop MAC written below covers it.
	class, mark := sched.Relayed(sched.Class(h.peer&peerClassChoked>>1), h.peer&peerUncredited == 0, r.Flags&wire.FlagDeprioritised != 0)
	if mark && r.Flags&wire.FlagDeprioritised == 0 {
		markDeprioritised(f, r, h)
	}
	var tags int8
	switch {
	case rt.VLAN != 0 && r.VLANs != 0:
		// Retag in place: the outermost tag gets the route's VLAN id and
		// keeps its priority and drop eligibility.
		e := wire.Ethernet(f)
		tag := e.Tag(0)
		tag.TCI = tag.TCI&^0x0fff | rt.VLAN&0x0fff
		e.SetTag(0, tag)
	case rt.VLAN != 0:
		tags = -1 // push one tag: the frame grows, which the mbuf does
	case r.VLANs != 0:
		tags = int8(r.VLANs) // pop them all: the route sends untagged
	}
	pool := f[r.PoolOff : int(r.PayloadOff)+int(r.PayloadLen)]
	if out := h.out; out != nil {
		if out != w.seqOf || w.seqLeft == 0 {
			first, got := out.seq.Reserve(w.left)
			if got == 0 {
				v.reason = reason8(ReasonSeqExhausted)
				return
			}
			w.seqOf, w.seqNext, w.seqLeft = out, first, got
		}
		h.seq = w.seqNext
		w.seqNext++
		w.seqLeft--
		wire.Header(pool).SetSeq(h.seq)
		if h.inOpen {
			// An unauthenticated peer's frame may carry anything in the
			// MAC field's second half, which must be zero under a MAC:
			// its sum goes with the old values (the checksum's span then
			// covers it), and signing clears it.
			h.oldSum += wire.Sum(pool[hopmac.MACOffset+hopmac.TagSize : hopmac.MACOffset+hopmac.MACSize])
		}
		h.pass = passSign
	}
	if h.pass != passSign {
		// Final now; with a MAC to write, after signing (decide's last
		// pass).
		applyChecksum(w, f, r, h)
	}
	// Charged bytes are the outer POOL frame (header and payload), not the
	// Ethernet frame: the unit both ends of a hop can count whatever the
	// encapsulation (a peer on a UDP socket never sees its L2 or IP bytes,
	// and VLAN tags or IPv6 would otherwise make honest counts disagree by
	// more than the ledger's band).
	// Field by field, as v below: a composite literal is built on the
	// stack with narrow stores and copied with 16-byte loads that wait for
	// them (perf annotate put 44% of this function's samples on that
	// copy).
	ch := &w.charges[i&(dpdk.MaxBurst-1)]
	ch.in, ch.out, ch.route = rt.IngressPeer, rt.EgressPeer, rt.Counter
	ch.uncredited, ch.bytes = h.peer&peerUncredited != 0, len(pool)
	// Field by field, not *v = verdict{...}: the compiler builds a
	// composite on the stack with narrow stores and copies it with one
	// 8-byte load, which the CPU cannot forward from them; the stall was
	// half of this function's time (perf annotate).
	v.act, v.tx, v.class, v.tags, v.vlan = actRelay, rt.EgressPort, class, tags, rt.VLAN
}

// markDeprioritised sets the deprioritised mark in the frame's POOL flags
// and folds the change into the held UDP checksum update.
func markDeprioritised(f []byte, r *wire.Result, h *hopState) {
	fl := r.Flags | wire.FlagDeprioritised
	wire.Header(f[r.PoolOff:]).SetFlags(fl)
	h.udp.Add(int(r.PoolOff)+2, uint64(r.Flags), uint64(fl))
}

// seqSum is the sum of a seq's four big-endian 16-bit words, as wire.Sum
// of its header bytes would give.
func seqSum(seq uint64) uint64 {
	return seq>>48 + seq>>32&0xffff + seq>>16&0xffff + seq&0xffff
}

// sum16 is the partial sum of 16 bytes as big-endian 16-bit words (two
// 32-bit halves of each 8 bytes, congruent to their words' sum modulo
// 0xffff, which is all the checksum update sees), inlined where wire.Sum
// is a call and a loop: it was 4% of a relayed frame with hop auth.
func sum16(b []byte) uint64 {
	_ = b[15]
	v0 := binary.BigEndian.Uint64(b)
	v1 := binary.BigEndian.Uint64(b[8:])
	return v0>>32 + v0&0xffffffff + v1>>32 + v1&0xffffffff
}

// sameSession reports whether a and b are the same session ID, in two
// 8-byte compares of the arrays where they are (== on the converted
// values copied one to the stack first).
func sameSession(a *wire.SessionID, b *route.SessionID) bool {
	return binary.LittleEndian.Uint64(a[0:8]) == binary.LittleEndian.Uint64(b[0:8]) &&
		binary.LittleEndian.Uint64(a[8:16]) == binary.LittleEndian.Uint64(b[8:16])
}
