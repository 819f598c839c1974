// Package counters holds the data plane's per-core packet and byte counters:
// per peer slot, per drop reason and per port (Set), and per route counter
// slot (Routes).
//
// Each worker core owns a Core and is its only writer. During a burst the
// worker adds to plain, core-private accumulators (no atomic operation, no
// lock per packet) and remembers which rows it touched; at the end of the
// burst Publish copies those rows' cumulative values to their published
// copies with atomic stores. A reader on another core (the control core: the
// ledger, heartbeats, metrics) loads the published copies of every core and
// sums them, at any time, without stopping the workers. Values are
// cumulative and never reset: consumers work on differences between
// snapshots, which survive any number of missed reads.
//
// Everything a writer writes is padded away from what other writers write,
// so cores never share a cache line they both modify (false sharing). The
// only line traffic left is the one a reader causes on the published copies
// it reads.
//
// Cost: counting a frame is two plain additions per row and, the first time
// in a burst a row is touched, an append to the burst's dirty list. Publish
// costs two atomic stores per dirty row; on amd64 an atomic store is an XCHG
// (about 4 ns here), so a burst of 32 frames of 32 different peer pairs
// spends some 16 ns per frame publishing, and one of a single flow under 1
// ns. A worker that wants less may publish every few bursts; readers then
// lag by as many bursts. Memory: 132 bytes per peer slot per core (three
// groups of a 24-byte accumulator, a 16-byte published pair and a 4-byte
// dirty-list entry).
package counters

import (
	"fmt"
	"sync/atomic"

	"github.com/poolrelay/poolrelay/internal/cacheline"
)

// Limits on the sizes given to New, generous for any machine the relay runs
// on and small enough that a mistake fails at New rather than exhausting
// memory.
const (
	MaxCores   = 1024
	MaxPeers   = 1 << 24
	MaxReasons = 1 << 10
	MaxPorts   = 1 << 10
)

// Peer is the cumulative traffic of one peer slot, summed over all cores.
type Peer struct {
	// ForPackets and ForBytes count frames relayed for the peer: it sent
	// them (it authenticated the incoming hop) and is charged for them.
	ForPackets, ForBytes uint64
	// ToPackets and ToBytes count frames relayed towards the peer: it was
	// the next hop, relaying them on (or delivering them) for others.
	ToPackets, ToBytes uint64
	// UncreditedPackets and UncreditedBytes are the part of To relayed on
	// behalf of peers whose frames give no credit (relay.Tables.SetCredit):
	// charged as the rest, left out of the peer's score.
	UncreditedPackets, UncreditedBytes uint64
}

// add adds one core's published rows for, towards and uncredited towards
// the peer.
func (p *Peer) add(f, t, u *pairPub) {
	p.ForPackets += f.packets.Load()
	p.ForBytes += f.bytes.Load()
	p.ToPackets += t.packets.Load()
	p.ToBytes += t.bytes.Load()
	p.UncreditedPackets += u.packets.Load()
	p.UncreditedBytes += u.bytes.Load()
}

// Port is the cumulative traffic of one port, summed over all cores.
type Port struct {
	RxPackets, RxBytes uint64
	TxPackets, TxBytes uint64
}

// add adds one core's published rows of the port's RX and TX.
func (p *Port) add(rx, tx *pairPub) {
	p.RxPackets += rx.packets.Load()
	p.RxBytes += rx.bytes.Load()
	p.TxPackets += tx.packets.Load()
	p.TxBytes += tx.bytes.Load()
}

// Set is the counters of all worker cores. Its readers may run on any
// goroutine, concurrently with the writers and with each other.
type Set struct {
	peers, reasons, ports int
	cores                 []*Core
	// views[i] is what readers use of core i: the headers of its published
	// arrays, immutable. Readers never touch a Core, whose lines the
	// worker writes on every burst.
	views []*view
}

// view is the published half of a Core.
type view struct {
	relayedFor, relayedTowards, uncredited, rx, tx []pairPub
	drops, events                                  []atomic.Uint64
}

// MaxEvents is the number of event rows every Set has: things a worker
// counts that are neither traffic nor drops (a checksum it completed).
// Fixed, so that adding an event changes no caller of New.
const MaxEvents = 8

// New returns counters for cores worker cores, peers peer slots, reasons
// drop reasons (the wire codec's count) and ports ports, all zero.
func New(cores, peers, reasons, ports int) (*Set, error) {
	for _, c := range []struct {
		what   string
		n, max int
	}{{"cores", cores, MaxCores}, {"peer slots", peers, MaxPeers}, {"drop reasons", reasons, MaxReasons}, {"ports", ports, MaxPorts}} {
		if c.n < 1 || c.n > c.max {
			return nil, fmt.Errorf("counters: %d %s is out of range: use 1 to %d", c.n, c.what, c.max)
		}
	}
	s := &Set{peers: peers, reasons: reasons, ports: ports, cores: make([]*Core, cores), views: make([]*view, cores)}
	for i := range s.cores {
		c := &Core{
			relayedFor:     newPairs(peers),
			relayedTowards: newPairs(peers),
			uncredited:     newPairs(peers),
			rx:             newPairs(ports),
			tx:             newPairs(ports),
			drops:          newSingles(reasons),
			events:         newSingles(MaxEvents),
		}
		s.cores[i] = c
		s.views[i] = &view{
			relayedFor:     c.relayedFor.pub,
			relayedTowards: c.relayedTowards.pub,
			uncredited:     c.uncredited.pub,
			rx:             c.rx.pub,
			tx:             c.tx.pub,
			drops:          c.drops.pub,
			events:         c.events.pub,
		}
	}
	return s, nil
}

// Core returns the counters of worker core i (0 to Cores()-1). A Core must
// be written by one goroutine at a time: its worker's.
func (s *Set) Core(i int) *Core { return s.cores[i] }

// Cores returns the number of worker cores.
func (s *Set) Cores() int { return len(s.cores) }

// Peers returns the number of peer slots.
func (s *Set) Peers() int { return s.peers }

// Reasons returns the number of drop reasons.
func (s *Set) Reasons() int { return s.reasons }

// Ports returns the number of ports.
func (s *Set) Ports() int { return s.ports }

// Peer returns the published totals of peer slot slot over all cores.
func (s *Set) Peer(slot uint32) Peer {
	var p Peer
	for _, v := range s.views {
		p.add(&v.relayedFor[slot], &v.relayedTowards[slot], &v.uncredited[slot])
	}
	return p
}

// AllPeers appends the published totals of every peer slot, indexed by slot,
// to dst[:0] and returns it. Pass the previous result to reuse its memory.
func (s *Set) AllPeers(dst []Peer) []Peer {
	dst = resize(dst, s.peers)
	for _, v := range s.views {
		f, t, u := v.relayedFor, v.relayedTowards, v.uncredited
		for i := range dst {
			dst[i].add(&f[i], &t[i], &u[i])
		}
	}
	return dst
}

// Port returns the published totals of port port over all cores.
func (s *Set) Port(port uint16) Port {
	var p Port
	for _, v := range s.views {
		p.add(&v.rx[port], &v.tx[port])
	}
	return p
}

// AllPorts appends the published totals of every port, indexed by port, to
// dst[:0] and returns it.
func (s *Set) AllPorts(dst []Port) []Port {
	dst = resize(dst, s.ports)
	for i := range dst {
		dst[i] = s.Port(uint16(i))
	}
	return dst
}

// Drops returns the published number of frames dropped for reason, over all
// cores.
func (s *Set) Drops(reason int) uint64 {
	var n uint64
	for _, v := range s.views {
		n += v.drops[reason].Load()
	}
	return n
}

// AllDrops appends the published drop count of every reason, indexed by
// reason, to dst[:0] and returns it.
func (s *Set) AllDrops(dst []uint64) []uint64 {
	dst = resize(dst, s.reasons)
	for _, v := range s.views {
		for i := range dst {
			dst[i] += v.drops[i].Load()
		}
	}
	return dst
}

// AllEvents appends the published count of every event row (MaxEvents of
// them, indexed by event) to dst[:0] and returns it.
func (s *Set) AllEvents(dst []uint64) []uint64 {
	dst = resize(dst, MaxEvents)
	for _, v := range s.views {
		for i := range dst {
			dst[i] += v.events[i].Load()
		}
	}
	return dst
}

// resize returns dst with length n, zeroed, reusing its memory if it can.
func resize[T any](dst []T, n int) []T {
	if cap(dst) < n {
		return make([]T, n)
	}
	dst = dst[:n]
	clear(dst)
	return dst
}

// Core is one worker core's counters. Its methods are for that worker only:
// they are not safe for concurrent use, and they neither lock, allocate nor
// perform atomic read-modify-write operations. Counts become visible to
// readers at the next Publish.
//
// Indexes (peer slot, reason, port) must be below the counts given to New;
// a larger one panics, as it can only come from a bug in whoever filled the
// route table or the codec.
type Core struct {
	_ cacheline.Pad

	relayedFor     pairs
	relayedTowards pairs
	uncredited     pairs
	rx, tx         pairs
	drops          singles
	events         singles

	_ cacheline.Pad
}

// Relayed counts one frame of bytes bytes relayed for peer ingress (which
// sent it and is charged) towards peer egress (the next hop).
func (c *Core) Relayed(ingress, egress uint32, bytes int) {
	c.relayedFor.add(ingress, 1, uint64(bytes))
	c.relayedTowards.add(egress, 1, uint64(bytes))
}

// RelayedFor counts packets frames totalling bytes bytes relayed for peer.
func (c *Core) RelayedFor(peer uint32, packets, bytes int) {
	c.relayedFor.add(peer, uint64(packets), uint64(bytes))
}

// RelayedTowards counts packets frames totalling bytes bytes relayed towards
// peer.
func (c *Core) RelayedTowards(peer uint32, packets, bytes int) {
	c.relayedTowards.add(peer, uint64(packets), uint64(bytes))
}

// RelayedUncredited counts packets frames totalling bytes bytes, already
// counted by RelayedTowards, as relayed towards peer on behalf of peers
// whose frames give no credit.
func (c *Core) RelayedUncredited(peer uint32, packets, bytes int) {
	c.uncredited.add(peer, uint64(packets), uint64(bytes))
}

// Dropped counts one frame dropped for reason.
func (c *Core) Dropped(reason int) { c.drops.add(uint32(reason), 1) }

// Event counts one occurrence of event (below MaxEvents).
func (c *Core) Event(event int) { c.events.add(uint32(event), 1) }

// DroppedN counts n frames dropped for reason.
func (c *Core) DroppedN(reason, n int) { c.drops.add(uint32(reason), uint64(n)) }

// Received counts packets frames totalling bytes bytes received on port,
// typically once per receive burst.
func (c *Core) Received(port uint16, packets, bytes int) {
	c.rx.add(uint32(port), uint64(packets), uint64(bytes))
}

// Sent counts packets frames totalling bytes bytes transmitted on port,
// typically once per transmit burst with the count the port accepted.
func (c *Core) Sent(port uint16, packets, bytes int) {
	c.tx.add(uint32(port), uint64(packets), uint64(bytes))
}

// Publish makes everything counted since the last Publish visible to
// readers. Call it once per burst: its cost is two atomic stores per row
// touched since the last call (a peer, a port or a reason), not per frame.
func (c *Core) Publish() {
	c.relayedFor.publish()
	c.relayedTowards.publish()
	c.uncredited.publish()
	c.rx.publish()
	c.tx.publish()
	c.drops.publish()
	c.events.publish()
}

// pairs is a group of (packets, bytes) rows: core-private accumulators, their
// published copies, and the rows touched since the last publish.
type pairs struct {
	acc   []pairAcc
	pub   []pairPub
	dirty []uint32
}

// pairAcc is a row's cumulative values as the writer keeps them, and whether
// the row is on the dirty list: one 24-byte record, so that counting a frame
// touches one cache line.
type pairAcc struct {
	packets, bytes uint64
	dirty          bool
}

type pairPub struct {
	packets, bytes atomic.Uint64
}

func newPairs(n int) pairs {
	return pairs{acc: cacheline.Isolated[pairAcc](n), pub: cacheline.Isolated[pairPub](n), dirty: cacheline.Isolated[uint32](n)[:0]}
}

func (g *pairs) add(row uint32, packets, bytes uint64) {
	a := &g.acc[row]
	a.packets += packets
	a.bytes += bytes
	if !a.dirty {
		a.dirty = true
		// Never grows: a row is listed at most once and the list's
		// capacity is the number of rows.
		g.dirty = append(g.dirty, row)
	}
}

func (g *pairs) publish() {
	for _, row := range g.dirty {
		a := &g.acc[row]
		a.dirty = false
		g.pub[row].packets.Store(a.packets)
		g.pub[row].bytes.Store(a.bytes)
	}
	g.dirty = g.dirty[:0]
}

// singles is pairs with one value per row.
type singles struct {
	acc   []singleAcc
	pub   []atomic.Uint64
	dirty []uint32
}

type singleAcc struct {
	n     uint64
	dirty bool
}

func newSingles(n int) singles {
	return singles{acc: cacheline.Isolated[singleAcc](n), pub: cacheline.Isolated[atomic.Uint64](n), dirty: cacheline.Isolated[uint32](n)[:0]}
}

func (g *singles) add(row uint32, n uint64) {
	a := &g.acc[row]
	a.n += n
	if !a.dirty {
		a.dirty = true
		g.dirty = append(g.dirty, row)
	}
}

func (g *singles) publish() {
	for _, row := range g.dirty {
		a := &g.acc[row]
		a.dirty = false
		g.pub[row].Store(a.n)
	}
	g.dirty = g.dirty[:0]
}
