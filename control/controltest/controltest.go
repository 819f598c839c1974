// Package controltest runs the control core over UDP without DPDK, for the
// tests of the control core, the end node and pool_node: Plane is the
// smallest data plane the core can drive (a real route.Table, hop keys per
// slot, classes and per-peer counters) with a forwarder that does to a DATA
// frame what a relay worker does, and Relay puts that forwarder in front of
// the core on the relay's UDP socket.
//
// It takes a mutex per frame, which the real data plane never does: it is a
// test fixture, not a relay. The real pairing, this control core driving the
// DPDK workers of dataplane/relay through their punt and inject rings, is
// tested by cmd/pool_demo's TestDemo (three pool_relay processes on AF_PACKET
// and on AF_XDP veths) and by package daemon's TestDaemon.
package controltest

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/pool/transport"
	"github.com/poolrelay/poolrelay/sched"
)

// Plane implements control.DataPlane, control.Counters and
// control.RouteCounters, and forwards DATA frames.
type Plane struct {
	routes *route.Table
	mu     sync.Mutex
	keys   map[uint32]*slotKeys
	class  map[uint32]sched.Class
	choked map[uint32]bool
	// uncredited are the slots published as giving no credit.
	uncredited map[uint32]bool
	ctr        map[uint32]counters.Peer
	rctr       map[uint32]counters.Route
	slots      int
	// Extra inflates the bytes counted for every ingress frame, to make the
	// relay's counters disagree with a peer's.
	Extra atomic.Uint64
	// Forwarded and Dropped count frames relayed and refused.
	Forwarded, Dropped atomic.Uint64
}

type slotKeys struct {
	rx, tx *hopmac.Key
	win    hopmac.Window
	seq    hopmac.Sequence
}

// NewPlane returns a plane with a table of up to maxRoutes routes.
func NewPlane(maxRoutes int) (*Plane, error) {
	rt, err := route.New(maxRoutes)
	if err != nil {
		return nil, err
	}
	return &Plane{routes: rt, keys: map[uint32]*slotKeys{}, class: map[uint32]sched.Class{},
		choked: map[uint32]bool{}, ctr: map[uint32]counters.Peer{}, rctr: map[uint32]counters.Route{},
		slots: maxRoutes + 1}, nil
}

// Routes implements control.DataPlane.
func (p *Plane) Routes() *route.Table { return p.routes }

// SetHopKeys implements control.DataPlane.
func (p *Plane) SetHopKeys(slot uint32, rx, tx []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys[slot] = &slotKeys{rx: hopmac.New(rx), tx: hopmac.New(tx)}
	return nil
}

// ClearHopKeys implements control.DataPlane.
func (p *Plane) ClearHopKeys(slot uint32) {
	p.mu.Lock()
	delete(p.keys, slot)
	p.mu.Unlock()
}

// SetPeer implements control.DataPlane.
func (p *Plane) SetPeer(slot uint32, c sched.Class, choked bool) error {
	p.mu.Lock()
	p.class[slot], p.choked[slot] = c, choked
	p.mu.Unlock()
	return nil
}

// Peer implements control.Counters.
func (p *Plane) Peer(slot uint32) counters.Peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ctr[slot]
}

// Route implements control.RouteCounters: the frames forwarded by the
// routes carrying counter slot slot.
func (p *Plane) Route(slot uint32) counters.Route {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rctr[slot]
}

// Slots implements control.RouteCounters: one per route and slot 0.
func (p *Plane) Slots() int { return p.slots }

// HasKeys reports whether slot has hop keys installed.
func (p *Plane) HasKeys(slot uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[slot] != nil
}

// SetCredit implements control's optional credit setter
// (relay.Tables.SetCredit).
func (p *Plane) SetCredit(slot uint32, credits bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.uncredited == nil {
		p.uncredited = map[uint32]bool{}
	}
	p.uncredited[slot] = !credits
	return nil
}

// Credit returns whether frames relayed for slot credit their next hop, as
// published (true until told otherwise).
func (p *Plane) Credit(slot uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.uncredited[slot]
}

// Class returns the class and choke state published for slot.
func (p *Plane) Class(slot uint32) (sched.Class, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.class[slot], p.choked[slot]
}

// Forward relays one DATA frame as a worker would: the POOL header's checks
// (its payload length must be the datagram's), hop MAC and replay window
// under the ingress slot's key, route lookup, counting, a fresh seq and MAC
// for the next hop. frame is the outer POOL frame, the UDP payload; it is
// modified, and send gets the next hop's address.
//
// A relayed frame counts its outer POOL frame, header and payload
// (wire.HeaderLen + the header's payload length), for the ingress peer and
// towards the egress peer: the unit end nodes count in their heartbeats,
// whatever the encapsulation of either hop.
func (p *Plane) Forward(frame []byte, send func(netip.AddrPort, []byte)) {
	if len(frame) < wire.HeaderLen || wire.Header(frame).Check(len(frame)-wire.HeaderLen) != wire.DropNone {
		p.Dropped.Add(1)
		return
	}
	h := wire.Header(frame[:wire.HeaderLen])
	r, ok := p.routes.Lookup(route.SessionID(h.Session()))
	p.mu.Lock()
	in, out := p.keys[r.IngressKey], p.keys[r.EgressKey]
	if !ok || in == nil || out == nil || p.choked[r.IngressPeer] || !in.rx.Accept(frame, &in.win) {
		p.mu.Unlock()
		p.Dropped.Add(1)
		return
	}
	n := uint64(wire.HeaderLen + int(h.PayloadLen()))
	c := p.ctr[r.IngressPeer]
	c.ForPackets++
	c.ForBytes += n + p.Extra.Load()
	p.ctr[r.IngressPeer] = c
	c = p.ctr[r.EgressPeer]
	c.ToPackets++
	c.ToBytes += n
	p.ctr[r.EgressPeer] = c
	rc := p.rctr[r.Counter]
	rc.Packets++
	rc.Bytes += n
	p.rctr[r.Counter] = rc
	seq, _ := out.seq.Next()
	hopmac.SetSeq(frame, seq)
	out.tx.Sign(frame)
	p.mu.Unlock()
	p.Forwarded.Add(1)
	send(netip.AddrPortFrom(r.DstAddr(), r.DstPort), frame)
}

// Relay is the relay's UDP socket with the Plane's forwarder in front of the
// control core, as the data plane sits in front of it on an appliance: DATA
// on channel 0 is relayed, everything else goes to the core.
type Relay struct {
	*transport.UDP
	Plane *Plane
}

// Recv implements transport.Transport.
func (r *Relay) Recv(buf []byte) (int, transport.Endpoint, error) {
	for {
		n, ep, err := r.UDP.Recv(buf)
		if err != nil {
			return n, ep, err
		}
		if n >= wire.HeaderLen {
			if h := wire.Header(buf[:wire.HeaderLen]); h.Type() == wire.TypeData && h.Channel() == 0 {
				r.Plane.Forward(buf[:n], func(to netip.AddrPort, f []byte) {
					_ = r.UDP.Send(transport.Endpoint{Addr: to}, f)
				})
				continue
			}
		}
		return n, ep, nil
	}
}
