package relay

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
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
type Worker struct {
	id       int
	tables   *Tables
	c        *counters.Core
	m        *wire.Matcher
	addrs    *neigh.Addrs
	neigh    *neigh.Published
	macs     []wire.MAC
	keepAuth bool

	// nh is the next hop of the last relayed frame, made from nhOf: bursts
	// mostly carry runs of one hop session, and NewNextHop (address
	// conversions and checksum sums) measured half the cost of relaying a
	// frame without authentication.
	nh   wire.NextHop
	nhOf nextHopKey

	// Per-port bytes and frames queued for TX in this burst, for one
	// counters.Sent call per port.
	txPkts, txBytes []int

	// Per-burst scratch, indexed by the frame's place in the burst (res,
	// verdicts, frames) or by its place among the lookups (ids, which,
	// routes, found).
	frames   [dpdk.MaxBurst][]byte
	res      [dpdk.MaxBurst]wire.Result
	verdicts [dpdk.MaxBurst]verdict
	ids      [dpdk.MaxBurst]route.SessionID
	which    [dpdk.MaxBurst]uint16
	routes   [dpdk.MaxBurst]route.Route
	found    [dpdk.MaxBurst]bool
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

// NewWorker returns the worker for cfg.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	switch {
	case cfg.Tables == nil || cfg.Counters == nil || cfg.Matcher == nil:
		return nil, errors.Join(ErrWorkerConfig, errors.New("relay: worker needs tables, counters and a matcher"))
	case cfg.ID < 0 || cfg.ID >= cfg.Tables.Workers():
		return nil, errors.Join(ErrWorkerConfig, errors.New("relay: worker id beyond the tables' workers"))
	case len(cfg.MACs) == 0:
		return nil, errors.Join(ErrWorkerConfig, errors.New("relay: worker needs the MAC of every port"))
	}
	return &Worker{
		id: cfg.ID, tables: cfg.Tables, c: cfg.Counters, m: cfg.Matcher,
		addrs: cfg.Addrs, neigh: cfg.Neighbors, macs: cfg.MACs, keepAuth: cfg.KeepAuth,
		txPkts: make([]int, len(cfg.MACs)), txBytes: make([]int, len(cfg.MACs)),
	}, nil
}

// Burst relays one received burst: rx are the frames Cycle just returned
// for port (a port index). Each frame goes to exactly one of the egress,
// b.Punt or b.Drop; nothing is left with the caller. The counters are
// published once, at the end.
//
// It makes no cgo call, takes no lock, logs nothing and allocates nothing:
// the mbuf accessors are plain loads and stores, and the Burst only records
// pointers until its next Cycle.
func (w *Worker) Burst(b *dpdk.Burst, port int, rx []*dpdk.Mbuf) {
	if len(rx) == 0 {
		return
	}
	frames := w.frames[:len(rx)]
	for i, m := range rx {
		if m.Segments() == 1 {
			frames[i] = m.Data()
		} else {
			frames[i] = nil
		}
	}
	w.decide(port, frames)
	for i, m := range rx {
		v := &w.verdicts[i]
		switch v.act {
		case actSend:
			n := len(frames[i])
			if v.tags != 0 {
				if n = retag(m, v); n < 0 {
					w.c.Dropped(int(ReasonBadEgress))
					b.Drop(m)
					break
				}
			}
			w.send(b, int(v.tx), v.class, m, n)
		case actPunt:
			b.Punt(m)
		case actAnswerND:
			// The advertisement can be longer than the solicitation:
			// answer in the mbuf's whole data room, then trim to it.
			n := m.Len()
			full := m.SetLen(n + m.Tailroom())
			if l, ok := wire.AnswerND(full[:n], &w.res[i], w.macs[port]); ok {
				m.SetLen(l)
				w.send(b, port, sched.Control, m, l)
			} else {
				m.SetLen(n)
				w.c.Dropped(int(wire.DropBadND))
				b.Drop(m)
			}
		default:
			w.c.Dropped(int(v.reason))
			b.Drop(m)
		}
		frames[i] = nil // no reference into an mbuf outlives the burst
	}
	w.publish()
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

// send is the egress step: it hands m, n bytes long, to TX buffer tx
// (port index tx) with the frame's scheduler class. Today that is the
// worker's own TX queue of the port, directly; the class is carried so that
// the class queues of dataplane/egress can be put here without touching the
// rest of the worker.
func (w *Worker) send(b *dpdk.Burst, tx int, class sched.Class, m *dpdk.Mbuf, n int) {
	_ = class
	w.txPkts[tx]++
	w.txBytes[tx] += n
	b.Send(tx, m)
}

// publish counts the burst's sends per port and publishes the counters.
func (w *Worker) publish() {
	for p, n := range w.txPkts {
		if n != 0 {
			w.c.Sent(uint16(p), n, w.txBytes[p])
			w.txPkts[p], w.txBytes[p] = 0, 0
		}
	}
	w.c.Publish()
}

// decide classifies the burst received on port, answers ARP in place,
// relays DATA (authentication, rewrite, new seq and MAC) and leaves each
// frame's fate in w.verdicts. A nil frame is a multi-segment mbuf. It counts
// the burst as received, and counts drops only through the verdicts, which
// the caller acts on.
func (w *Worker) decide(port int, frames [][]byte) {
	if len(frames) > dpdk.MaxBurst {
		panic("relay: burst larger than dpdk.MaxBurst")
	}
	bytes, lookups := 0, 0
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
				w.ids[lookups] = route.SessionID(r.Session)
				w.which[lookups] = uint16(i)
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
	w.tables.routes.LookupBurst(w.ids[:lookups], w.routes[:lookups], w.found[:lookups])
	var nt *neigh.Table
	if w.neigh != nil {
		nt = w.neigh.Load()
	}
	for j := range lookups {
		i := w.which[j]
		if !w.found[j] {
			w.verdicts[i] = verdict{act: actDrop, reason: reason8(ReasonNoRoute)}
			continue
		}
		w.relay(frames[i], &w.res[i], &w.routes[j], nt, &w.verdicts[i])
	}
}

// arp answers a request for one of our addresses in place, back out of the
// port it came from, and punts replies (the control core's resolver learns
// from them). Requests for other addresses are dropped: on a shared LAN
// they are everybody's broadcasts, and the control core learns nothing
// from them that it needs.
func (w *Worker) arp(port int, f []byte, r *wire.Result, v *verdict) {
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
func (w *Worker) nd(port int, f []byte, r *wire.Result, v *verdict) {
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

// relay takes a DATA frame whose route rt was found through every check,
// in the order that charges nobody for what it drops, and readies it for
// the next hop.
func (w *Worker) relay(f []byte, r *wire.Result, rt *route.Route, nt *neigh.Table, v *verdict) {
	*v = verdict{act: actDrop}
	t := w.tables
	switch {
	case rt.Flags&route.FlagDisabled != 0:
		v.reason = reason8(ReasonDisabled)
		return
	case int(rt.EgressPort) >= len(w.macs) || int64(rt.IngressPeer) >= int64(len(t.peers)) ||
		int64(rt.EgressPeer) >= int64(len(t.peers)):
		v.reason = reason8(ReasonBadEgress)
		return
	}
	dst := wire.MAC(rt.DstMAC)
	if rt.Flags&route.FlagResolveMAC != 0 {
		if nt == nil {
			v.reason = reason8(ReasonUnresolved)
			return
		}
		mac, ok := nt.Lookup16(rt.EgressPort, rt.DstIP)
		if !ok {
			v.reason = reason8(ReasonUnresolved)
			return
		}
		dst = mac
	}
	peer := t.peers[rt.IngressPeer].Load()
	if peer&1 != 0 {
		v.reason = reason8(ReasonDebt)
		return
	}
	pool := f[r.PoolOff : int(r.PayloadOff)+int(r.PayloadLen)]
	var out *hopSlot
	if w.keepAuth {
		var in *hopSlot
		if int64(rt.IngressKey) < int64(len(t.keys)) {
			in = t.keys[rt.IngressKey].Load()
		}
		if int64(rt.EgressKey) < int64(len(t.keys)) {
			out = t.keys[rt.EgressKey].Load()
		}
		if in == nil || in.rx == nil || out == nil || out.tx == nil {
			v.reason = reason8(ReasonNoKey)
			return
		}
		// Check first so that a replay is told from a forgery: Accept
		// says no to both, and consults the window before the MAC anyway.
		win := &in.win[w.id].w
		if !win.Check(r.Seq) {
			v.reason = reason8(ReasonReplay)
			return
		}
		if !in.rx[w.id].Accept(pool, win) {
			v.reason = reason8(ReasonBadMAC)
			return
		}
	}
	// Field by field: the compiler inlines these compares, where == on the
	// whole struct calls memequal (3% of a relayed frame, measured).
	k := &w.nhOf
	if k.src != rt.SrcIP || k.dst != rt.DstIP || k.dstMAC != dst || k.srcMAC != rt.SrcMAC ||
		k.srcPort != rt.SrcPort || k.dstPort != rt.DstPort || k.family != rt.Family {
		nh, err := wire.NewNextHop(rt.SrcMAC, dst,
			netip.AddrPortFrom(rt.SrcAddr(), rt.SrcPort), netip.AddrPortFrom(rt.DstAddr(), rt.DstPort))
		if err != nil {
			v.reason = reason8(ReasonBadEgress)
			return
		}
		w.nh = nh
		*k = nextHopKey{src: rt.SrcIP, dst: rt.DstIP, srcMAC: rt.SrcMAC, dstMAC: dst, srcPort: rt.SrcPort, dstPort: rt.DstPort, family: rt.Family}
	}
	if d := wire.Rewrite(f, r, &w.nh); d != wire.DropNone {
		v.reason = reason8(d)
		return
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
	if out != nil {
		seq, ok := out.seq.Next()
		if !ok {
			v.reason = reason8(ReasonSeqExhausted)
			return
		}
		var p wire.UDPPatch
		p.Begin(f, r, int(r.PoolOff)+4, wire.HeaderLen-4) // seq through MAC
		wire.Header(pool).SetSeq(seq)
		out.tx[w.id].Sign(pool)
		p.End(f)
	}
	// Charged bytes are the outer POOL frame (header and payload), not the
	// Ethernet frame: the unit both ends of a hop can count whatever the
	// encapsulation (a peer on a UDP socket never sees its L2 or IP bytes,
	// and VLAN tags or IPv6 would otherwise make honest counts disagree by
	// more than the ledger's band).
	w.c.Relayed(rt.IngressPeer, rt.EgressPeer, len(pool))
	*v = verdict{act: actSend, tx: rt.EgressPort, class: sched.Class(peer >> 1), tags: tags, vlan: rt.VLAN}
}
