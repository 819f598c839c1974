package control

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/pool/proto"
	"github.com/poolrelay/poolrelay/pool/transport"
	"github.com/poolrelay/poolrelay/sched"
)

// This file installs the configuration's static peers and routes
// ([[control.static_peer]], [[control.static_route]]) at New and on each
// SetConfig, as a difference against what runs: a peer whose table and key
// are unchanged keeps its slot, its counters and its routes.
//
// A static peer is a peerState without a session: it lives in c.static, not
// in c.peers, so nothing that speaks to peers (heartbeats, cheques, rekeys,
// route requests, timeouts) ever reaches it; the tick feeds its counters to
// the ledger and publishes its class like any peer's.

// unauthenticatedSetter is what a DataPlane offers to carry
// unauthenticated lab peers (*relay.Tables does).
type unauthenticatedSetter interface {
	SetUnauthenticated(slot uint32) error
}

// seqStartSetter is what a DataPlane offers to start a key's egress seqs
// where a pre-shared key needs them (*relay.Tables does); without it the
// core installs static keys with SetHopKeys.
type seqStartSetter interface {
	SetHopKeysAt(slot uint32, rx, tx []byte, firstSeq uint64) error
}

// StaticPeerID is the ledger's name for a static peer: lab peers have no
// identity key, so the account is keyed by a hash of the name, which no
// enrolled peer can have (it would need the private key of a hash).
func StaticPeerID(name string) peer.ID {
	return peer.ID(sha256.Sum256([]byte("poolrelay/v1 static peer\x00" + name)))
}

// staticRouteKey identifies a static range as configured.
type staticRouteKey struct {
	from, to string
	span     sessionRange
}

// applyStatic makes the static peers and routes those of cfg. It checks
// and prepares everything first (key files, ports, slots, session ids, the
// route table batch), so that on an error nothing has changed.
func (c *Core) applyStatic(cfg Config) error {
	specs := make(map[string]*staticPeerSpec, len(cfg.StaticPeers))
	ports := make(map[string]int, len(cfg.StaticPeers))
	for _, p := range cfg.StaticPeers {
		s, probs := decodeStaticPeer(p)
		if len(probs) > 0 {
			return fmt.Errorf("%w: static_peer %q: %s: %s", ErrStatic, p.Name, probs[0].key, probs[0].msg)
		}
		port := slices.Index(c.o.PortNames, p.Port)
		if port < 0 {
			return fmt.Errorf("%w: static_peer %q: no port named %q", ErrStatic, p.Name, p.Port)
		}
		if _, ok := c.o.Transport.Local(port, s.ip); !ok {
			return fmt.Errorf("%w: static_peer %q: port %q has no address of %s's family to send from", ErrStatic, p.Name, p.Port, s.ip)
		}
		specs[p.Name], ports[p.Name] = &s, port
	}
	// Peers kept as they are, and new (or changed) ones with tentative slots.
	kept := map[string]*peerState{}
	for name, ps := range c.static {
		if s := specs[name]; s != nil && staticEqual(ps.static, s) && ports[name] == ps.ep.Port {
			kept[name] = ps
		}
	}
	var added []*peerState
	next := map[string]*peerState{}
	free := len(c.free)
	now := c.now()
	for _, p := range cfg.StaticPeers {
		if ps := kept[p.Name]; ps != nil {
			next[p.Name] = ps
			continue
		}
		if free == 0 {
			return fmt.Errorf("%w: static_peer %q: no free peer slot (max_peers)", ErrStatic, p.Name)
		}
		free--
		s := specs[p.Name]
		pid := StaticPeerID(p.Name)
		ps := &peerState{
			key: identity.PublicKey(pid), pid: pid, slot: c.free[free], role: proto.RoleNode, static: s,
			ep:          transport.Endpoint{Port: ports[p.Name], Addr: netip.AddrPortFrom(s.ip, uint16(p.UDPPort)), MAC: s.mac},
			established: now, lastHeard: now, routes: map[[16]byte]*routeState{},
		}
		added = append(added, ps)
		next[p.Name] = ps
	}
	// Routes kept, removed and added.
	want := map[staticRouteKey]bool{}
	var order []staticRouteKey
	for _, r := range cfg.StaticRoutes {
		sr, err := rangeOf(r.Session, r.Count)
		if err != nil {
			return fmt.Errorf("%w: static_route %s -> %s: %v", ErrStatic, r.From, r.To, err)
		}
		if next[r.From] == nil || next[r.To] == nil || r.From == r.To {
			return fmt.Errorf("%w: static_route %s -> %s: both ends must be distinct static peers", ErrStatic, r.From, r.To)
		}
		k := staticRouteKey{r.From, r.To, sr}
		want[k] = true
		order = append(order, k)
	}
	removed := map[*routeState]bool{}
	keptRoutes := map[staticRouteKey]*routeState{}
	for k, r := range c.staticRoutes {
		if want[k] && kept[k.from] != nil && kept[k.to] != nil {
			keptRoutes[k] = r
		} else {
			removed[r] = true
		}
	}
	var b route.Batch
	for r := range removed {
		r.span.ids(func(id, rev [16]byte) {
			b.Delete(route.SessionID(id))
			b.Delete(route.SessionID(rev))
		})
	}
	type newRoute struct {
		k        staticRouteKey
		from, to *peerState
		// ctr are the range's counter slots, forward and reverse: one
		// pair for all its sessions, which share one route value.
		ctr [2]uint32
	}
	var adds []newRoute
	// Counter slots taken for new ranges go back if anything fails.
	release := func() {
		for _, a := range adds {
			c.releaseCounters(a.ctr)
		}
	}
	for _, k := range order {
		if keptRoutes[k] != nil {
			continue
		}
		from, to := next[k.from], next[k.to]
		fwd, err1 := c.hop(from, to, time.Time{})
		back, err2 := c.hop(to, from, time.Time{})
		if err := errors.Join(err1, err2); err != nil {
			release()
			return fmt.Errorf("%w: static_route %s -> %s: %v", ErrStatic, k.from, k.to, err)
		}
		ctr := [2]uint32{c.takeCounter(), c.takeCounter()}
		fwd.Counter, back.Counter = ctr[0], ctr[1]
		if from.static.learn {
			back.Flags |= route.FlagResolveMAC
		}
		if to.static.learn {
			fwd.Flags |= route.FlagResolveMAC
		}
		var inUse [16]byte
		busy := false
		k.span.ids(func(id, rev [16]byte) {
			for _, s := range [2][16]byte{id, rev} {
				if r := c.routes[s]; (r != nil && !removed[r]) || c.isPeerSession(s) {
					inUse, busy = s, true
				}
			}
			b.Put(route.SessionID(id), fwd)
			b.Put(route.SessionID(rev), back)
		})
		adds = append(adds, newRoute{k, from, to, ctr})
		if busy {
			release()
			return fmt.Errorf("%w: static_route %s -> %s: session %x is in use by another route or a peer's session", ErrStatic, k.from, k.to, inUse)
		}
	}
	// Keys first, in slots no route uses yet; then the routes, all or none.
	unset := func(n int) {
		for _, ps := range added[:n] {
			c.o.DataPlane.ClearHopKeys(ps.slot)
		}
	}
	for i, ps := range added {
		var err error
		if ps.static.cfg.Unauthenticated {
			if u, ok := c.o.DataPlane.(unauthenticatedSetter); ok {
				err = u.SetUnauthenticated(ps.slot)
			} else {
				err = errors.New("the data plane cannot carry unauthenticated peers")
			}
		} else if s, ok := c.o.DataPlane.(seqStartSetter); ok {
			// A pre-shared key outlives this process: its seqs start
			// from the clock so as never to repeat a nonce of an
			// earlier run (hopmac.ClockSeq).
			err = s.SetHopKeysAt(ps.slot, ps.static.rx, ps.static.tx, hopmac.ClockSeq(c.now()))
		} else {
			err = c.o.DataPlane.SetHopKeys(ps.slot, ps.static.rx, ps.static.tx)
		}
		if err != nil {
			unset(i)
			release()
			return fmt.Errorf("%w: static_peer %q: %v", ErrStatic, ps.static.cfg.Name, err)
		}
		ps.base = c.o.Counters.Peer(ps.slot)
	}
	if b.Len() > 0 {
		if err := c.o.DataPlane.Routes().Apply(&b); err != nil {
			unset(len(added))
			release()
			return fmt.Errorf("%w: %v", ErrStatic, err)
		}
	}
	// Committed in the data plane: now the books.
	c.free = c.free[:free]
	for r := range removed {
		c.forgetStaticRoute(r, "static route removed from the configuration")
	}
	for name, ps := range c.static {
		if next[name] != ps {
			c.dropStatic(ps, "static peer removed or changed in the configuration")
		}
	}
	for _, ps := range added {
		c.connectStatic(ps)
	}
	c.static = next
	for _, a := range adds {
		r := &routeState{id: a.k.span.lo.id(), rev: proto.ReverseSession(a.k.span.lo.id()), from: a.from, to: a.to,
			static: true, config: true, span: a.k.span, count: a.k.span.count(), ctr: a.ctr, installed: c.now()}
		if rc := c.o.RouteCounters; rc != nil {
			r.base = [2]counters.Route{rc.Route(a.ctr[0]), rc.Route(a.ctr[1])}
		}
		a.k.span.ids(func(id, rev [16]byte) { c.routes[id], c.routes[rev] = r, r })
		a.from.routes[r.id], a.to.routes[r.id] = r, r
		c.staticRoutes[a.k] = r
		c.stats.inc(RoutesOpened)
		_, _ = c.o.Ledger.Journal().SubmitEvent(event.RouteOpen, &event.Route{Session: r.id, From: a.from.pid, To: a.to.pid,
			Note: fmt.Sprintf("static, from the configuration: %d sessions, %s -> %s", r.count, a.k.from, a.k.to)})
	}
	return nil
}

// connectStatic opens a new static peer's account and publishes its class.
func (c *Core) connectStatic(ps *peerState) {
	s := ps.static
	ps.epoch = c.epochFor(ps.pid, c.now())
	addr := "static " + s.cfg.Name + " " + ps.ep.Addr.String()
	if _, err := c.o.Ledger.Connect(ps.pid, addr, c.o.Ledger.Terms(ps.pid)); err != nil {
		// Our own terms pass our own limits; keep the peer, log why its
		// account is not connected.
		c.log.Error().Err(err).Str("peer", s.cfg.Name).Msg("static peer's account")
	}
	c.publish(ps)
	c.staticByID[ps.pid] = ps
	ev := c.log.Info()
	if s.cfg.Unauthenticated {
		ev = c.log.Warn()
	}
	ev.Str("peer", s.cfg.Name).Str("id", ps.pid.Short()).Uint32("slot", ps.slot).Str("port", s.cfg.Port).
		Str("addr", ps.ep.Addr.String()).Bool("unauthenticated", s.cfg.Unauthenticated).Msg(staticMsg(s))
}

func staticMsg(s *staticPeerSpec) string {
	if s.cfg.Unauthenticated {
		return "UNAUTHENTICATED static lab peer installed: its frames are relayed and charged without hop MAC or replay checks; for replay benchmarks only"
	}
	return "static lab peer installed (pre-shared hop key)"
}

// dropStatic removes a static peer whose routes are gone already: its keys,
// its slot, its account's connection.
func (c *Core) dropStatic(ps *peerState, why string) {
	c.observe(ps)
	c.o.DataPlane.ClearHopKeys(ps.slot)
	_ = c.o.DataPlane.SetPeer(ps.slot, sched.Normal, true)
	c.free = append(c.free, ps.slot)
	delete(c.staticByID, ps.pid)
	_ = c.o.Ledger.Disconnect(ps.pid, why)
	c.log.Info().Str("peer", ps.static.cfg.Name).Str("why", why).Msg("static peer removed")
}

// forgetStaticRoute drops a static range from the books once the data
// plane no longer has it, and journals it.
func (c *Core) forgetStaticRoute(r *routeState, note string) {
	r.span.ids(func(id, rev [16]byte) {
		delete(c.routes, id)
		delete(c.routes, rev)
	})
	delete(r.from.routes, r.id)
	delete(r.to.routes, r.id)
	c.releaseCounters(r.ctr)
	for k, v := range c.staticRoutes {
		if v == r {
			delete(c.staticRoutes, k)
		}
	}
	c.stats.inc(RoutesClosed)
	_, _ = c.o.Ledger.Journal().SubmitEvent(event.RouteClose, &event.Route{Session: r.id, From: r.from.pid, To: r.to.pid, Note: note})
}

// staticTick is the tick's work for static peers: counters to the ledger,
// and a resolution kept going for the MACs learnt on the wire.
func (c *Core) staticTick() {
	for _, ps := range c.static {
		c.observe(ps)
		if ps.static.learn && c.o.Resolve != nil {
			c.o.Resolve(ps.ep.Port, ps.ep.Addr.Addr())
		}
	}
}

// shutdownStatic records the static peers' disconnection when the core
// stops (their routes stay in the data plane, which stops next).
func (c *Core) shutdownStatic() {
	for _, ps := range c.static {
		c.observe(ps)
		_ = c.o.Ledger.Disconnect(ps.pid, "relay shutting down")
	}
}

// count is the number of sessions in the range.
func (r sessionRange) count() int {
	return int(r.hi.lo-r.lo.lo) + 1 // rangeOf bounds it by MaxStaticSessions
}

// since is cur less base: a slot's counters since a peer took it.
func since(cur, base counters.Peer) counters.Peer {
	return counters.Peer{ForPackets: cur.ForPackets - base.ForPackets, ForBytes: cur.ForBytes - base.ForBytes,
		ToPackets: cur.ToPackets - base.ToPackets, ToBytes: cur.ToBytes - base.ToBytes,
		UncreditedPackets: cur.UncreditedPackets - base.UncreditedPackets, UncreditedBytes: cur.UncreditedBytes - base.UncreditedBytes}
}
