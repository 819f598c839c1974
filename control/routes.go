package control

import (
	"errors"
	"fmt"
	"time"

	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/pool/proto"
)

// routeState is a relayed route: session id S carried from one peer to
// another, and its reverse ProtoReverse(S) back.
type routeState struct {
	id, rev  [16]byte
	from, to *peerState
	// expires is when the sweep closes the route; zero never (a static
	// route added without a lifetime).
	expires time.Time
	// static routes were added by the operator (AddRoute) or come from
	// the configuration (config): no peer renews or closes them, and they
	// count against no peer's quota.
	static bool
	// ctr are the route counter slots of the forward (id) and reverse
	// (rev) directions, 0 when the counters had none to give; base their
	// cumulative counts when the route took them (a slot may have served
	// an earlier route); installed is when that was.
	ctr       [2]uint32
	base      [2]counters.Route
	installed time.Time
	// config routes are a static_route range of count sessions, span,
	// installed from the configuration and removed only by changing it.
	config bool
	span   sessionRange
	count  int
}

// takeCounter hands out a route counter slot, 0 when there is none.
func (c *Core) takeCounter() uint32 {
	rc := c.o.RouteCounters
	if rc == nil {
		return 0
	}
	if int64(c.ctrNext) < int64(rc.Slots()) {
		s := c.ctrNext
		c.ctrNext++
		c.ctrHigh.Store(c.ctrNext)
		return s
	}
	if n := len(c.ctrFree); n > 0 {
		s := c.ctrFree[n-1]
		c.ctrFree = c.ctrFree[:n-1]
		return s
	}
	return 0
}

// releaseCounters returns a route's counter slots.
func (c *Core) releaseCounters(ctr [2]uint32) {
	for _, s := range ctr {
		if s != 0 {
			c.ctrFree = append(c.ctrFree, s)
		}
	}
}

// RouteCounterSlots returns the number of route counter slots handed out
// so far, slot 0 included: every route's slots are below it. Safe from any
// goroutine, for samplers that read the counters of the routes in use.
func (c *Core) RouteCounterSlots() int { return int(c.ctrHigh.Load()) }

// onRouteOpen handles a peer's request to carry a session: policy checks
// (the next hop is another enrolled peer, neither id is in use, the requester
// is within its quota), then the routes. With onward hops, the next hop must
// be a relay: this relay asks it to carry the session on first, and installs
// its own leg only once that one is up.
func (c *Core) onRouteOpen(ps *peerState, body []byte) {
	var m proto.RouteOpen
	if err := m.UnmarshalBinary(body); err != nil {
		c.stats.inc(ControlMalformed)
		return
	}
	nh := c.byNode[m.Next.NodeID()]
	switch {
	case c.o.Ledger.Journal().Health().Degraded:
		// A route is a state change the journal records: none is opened
		// (or renewed) while it cannot, and the peer is told why.
		c.stats.inc(RoutesDeferred)
		c.refuseRoute(ps, m.Request, m.Session, proto.CodeJournal)
		return
	case nh == nil || nh == ps:
		c.refuseRoute(ps, m.Request, m.Session, proto.CodeUnknownPeer)
		return
	case len(m.Onward) > 0 && nh.role != proto.RoleRelay:
		c.refuseRoute(ps, m.Request, m.Session, proto.CodeRefused)
		return
	}
	rev := proto.ReverseSession(m.Session)
	if r := c.routes[m.Session]; r != nil {
		// The owner asking again (its ROUTE_OK was lost, or it renews):
		// refresh the lifetime. Anyone else: the id is taken, and so is an
		// operator's route, whose lifetime is the operator's.
		if !r.renewableBy(ps, nh, m.Session) {
			c.refuseRoute(ps, m.Request, m.Session, proto.CodeInUse)
			return
		}
	} else if c.routes[rev] != nil || c.isPeerSession(m.Session) || c.isPeerSession(rev) {
		c.refuseRoute(ps, m.Request, m.Session, proto.CodeInUse)
		return
	} else if ps.opened >= c.cfg.MaxRoutesPerPeer {
		c.refuseRoute(ps, m.Request, m.Session, proto.CodeRefused)
		return
	}
	life := c.cfg.RouteMaxLifetime
	if l := time.Duration(m.Lifetime) * time.Second; m.Lifetime > 0 && l < life {
		life = l
	}
	if len(m.Onward) == 0 {
		c.installRoute(ps, nh, m.Request, m.Session, c.now().Add(life))
		return
	}
	for _, o := range c.onward {
		if o.from == ps && o.session == m.Session {
			return // already asked the next relay; its answer will do
		}
	}
	c.nextReq++
	next := proto.RouteOpen{Request: c.nextReq, Lifetime: uint32(life / time.Second), Session: m.Session,
		Next: m.Onward[0], Onward: m.Onward[1:]}
	b, _ := next.AppendBinary(c.body[:0])
	c.onward[c.nextReq] = &onwardReq{from: ps, to: nh, request: m.Request, session: m.Session, life: life,
		deadline: c.now().Add(onwardTimeout)}
	c.sendSealed(nh, proto.KindRouteOpen, b)
}

// onwardTimeout bounds the wait for the next relay's answer; the requester
// retries on its own schedule.
const onwardTimeout = 10 * time.Second

// onwardReq is a route request this relay passed on to the next relay.
type onwardReq struct {
	from, to *peerState
	request  uint32
	session  [16]byte
	life     time.Duration
	deadline time.Time
}

// onRouteAnswer handles the next relay's ROUTE_OK or ROUTE_ERROR to a
// request passed on: install our leg and answer the requester, or pass the
// refusal back.
func (c *Core) onRouteAnswer(ps *peerState, k proto.Kind, body []byte) {
	var req uint32
	var code proto.RouteCode
	if k == proto.KindRouteOK {
		var ok proto.RouteOK
		if ok.UnmarshalBinary(body) != nil {
			c.stats.inc(ControlMalformed)
			return
		}
		req = ok.Request
	} else {
		var e proto.RouteError
		if e.UnmarshalBinary(body) != nil {
			c.stats.inc(ControlMalformed)
			return
		}
		req, code = e.Request, e.Code
	}
	o := c.onward[req]
	if o == nil || o.to != ps {
		c.stats.inc(RxUnexpected)
		return
	}
	delete(c.onward, req)
	if c.peers[o.from.key] != o.from {
		return // the requester left meanwhile; the next relay's leg expires
	}
	if k == proto.KindRouteError {
		c.refuseRoute(o.from, o.request, o.session, code)
		return
	}
	c.installRoute(o.from, ps, o.request, o.session, c.now().Add(o.life))
}

// refuseRoute answers a route request with ROUTE_ERROR.
func (c *Core) refuseRoute(ps *peerState, req uint32, session [16]byte, code proto.RouteCode) {
	c.stats.inc(RoutesRefused)
	e := proto.RouteError{Request: req, Code: code, Session: session}
	b, _ := e.AppendBinary(c.body[:0])
	c.sendSealed(ps, proto.KindRouteError, b)
}

// renewableBy reports whether a request from ps to carry session to nh may
// renew r: only a peer-opened route of that very session, between the same
// two peers.
func (r *routeState) renewableBy(ps, nh *peerState, session [16]byte) bool {
	return !r.static && r.from == ps && r.to == nh && r.id == session
}

// installRoute installs (or renews) the forward route of session from ps to
// nh and its reverse, journals it and confirms it to ps.
func (c *Core) installRoute(ps, nh *peerState, req uint32, session [16]byte, expires time.Time) {
	// Checked again here: an onward request may have been answered after
	// the operator took the id.
	if r := c.routes[session]; r != nil && !r.renewableBy(ps, nh, session) {
		c.refuseRoute(ps, req, session, proto.CodeInUse)
		return
	}
	if _, err := c.putRoute(ps, nh, session, expires, false); err != nil {
		code := proto.CodeInternal
		if errors.Is(err, route.ErrFull) {
			code = proto.CodeFull
		}
		c.refuseRoute(ps, req, session, code)
		return
	}
	ok := proto.RouteOK{Request: req, Session: session, Expires: expires.UnixNano()}
	body, _ := ok.AppendBinary(c.body[:0])
	c.sendSealed(ps, proto.KindRouteOK, body)
}

// putRoute installs the route of session from one peer to another and its
// reverse in the data plane, or renews it, and journals a new one. The
// caller has checked that session is free or is this very route.
func (c *Core) putRoute(from, to *peerState, session [16]byte, expires time.Time, static bool) (*routeState, error) {
	rev := proto.ReverseSession(session)
	fwd, err1 := c.hop(from, to, expires)
	back, err2 := c.hop(to, from, expires)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	r := c.routes[session]
	var ctr [2]uint32
	if r != nil {
		ctr = r.ctr
	} else {
		ctr = [2]uint32{c.takeCounter(), c.takeCounter()}
	}
	fwd.Counter, back.Counter = ctr[0], ctr[1]
	var b route.Batch
	b.Put(route.SessionID(session), fwd)
	b.Put(route.SessionID(rev), back)
	if err := c.o.DataPlane.Routes().Apply(&b); err != nil {
		if r == nil {
			c.releaseCounters(ctr)
		}
		return nil, fmt.Errorf("control: installing route %x: %w", session, err)
	}
	if r == nil {
		r = &routeState{id: session, rev: rev, from: from, to: to, static: static, ctr: ctr, installed: c.now()}
		if rc := c.o.RouteCounters; rc != nil {
			r.base = [2]counters.Route{rc.Route(ctr[0]), rc.Route(ctr[1])}
		}
		c.routes[session], c.routes[rev] = r, r
		from.routes[session], to.routes[session] = r, r
		if !static {
			from.opened++
		}
		c.stats.inc(RoutesOpened)
		note := "expires " + expires.UTC().Format(time.RFC3339)
		switch {
		case static && expires.IsZero():
			note = "static, added by the operator, no expiry"
		case static:
			note = "static, added by the operator, " + note
		}
		_, _ = c.o.Ledger.Journal().SubmitEvent(event.RouteOpen, &event.Route{
			Session: session, From: from.pid, To: to.pid, Note: note})
	}
	r.expires = expires
	return r, nil
}

// isPeerSession reports whether id is a peer's own session id: relayed
// frames must never be confused with a session's control frames.
func (c *Core) isPeerSession(id [16]byte) bool { return c.bySession[id] != nil }

// hop builds the data plane route for frames from in towards out.
func (c *Core) hop(in, out *peerState, expires time.Time) (route.Route, error) {
	local, ok := c.o.Transport.Local(out.ep.Port, out.ep.Addr.Addr())
	if !ok {
		return route.Route{}, errors.New("control: no local address towards the next hop")
	}
	r := route.Route{
		IngressPeer: in.slot, IngressKey: in.slot, EgressKey: out.slot, EgressPeer: out.slot,
		EgressPort: uint16(out.ep.Port), VLAN: out.ep.VLAN, DstMAC: out.ep.MAC, SrcMAC: local.MAC,
		SrcPort: local.Addr.Port(), DstPort: out.ep.Addr.Port(), Encap: route.EncapUDP,
	}
	if !expires.IsZero() {
		r.Expires = expires.UnixNano()
	}
	if out.ep.Addr.Port() == 0 {
		r.Encap, r.SrcPort = route.EncapIP, 0
	}
	if err := r.SetAddrs(local.Addr.Addr(), out.ep.Addr.Addr()); err != nil {
		return route.Route{}, err
	}
	return r, r.Validate()
}

// onRouteClose closes a route at the request of either of its ends.
func (c *Core) onRouteClose(ps *peerState, body []byte) {
	var m proto.RouteError
	if err := m.UnmarshalBinary(body); err != nil {
		c.stats.inc(ControlMalformed)
		return
	}
	r := c.routes[m.Session]
	if r == nil || r.static || (r.from != ps && r.to != ps) {
		c.stats.inc(RxUnexpected)
		return
	}
	c.closeRoute(r, proto.CodeClosed, ps, "closed by "+ps.pid.Short())
}

// closeRoute removes both directions of r, journals it with note and tells
// the ends other than by (which asked for it, or is gone).
func (c *Core) closeRoute(r *routeState, code proto.RouteCode, by *peerState, note string) {
	var b route.Batch
	b.Delete(route.SessionID(r.id))
	b.Delete(route.SessionID(r.rev))
	if err := c.o.DataPlane.Routes().Apply(&b); err != nil {
		c.log.Error().Err(err).Msg("removing a route")
	}
	delete(c.routes, r.id)
	delete(c.routes, r.rev)
	c.releaseCounters(r.ctr)
	delete(r.from.routes, r.id)
	delete(r.to.routes, r.id)
	if !r.static {
		r.from.opened--
	}
	for _, p := range [...]*peerState{r.from, r.to} {
		if p != by && c.peers[p.key] == p {
			e := proto.RouteError{Code: code, Session: r.id}
			body, _ := e.AppendBinary(c.body[:0])
			c.sendSealed(p, proto.KindRouteClose, body)
		}
	}
	if code == proto.CodeExpired {
		c.stats.inc(RoutesExpired)
	} else {
		c.stats.inc(RoutesClosed)
	}
	_, _ = c.o.Ledger.Journal().SubmitEvent(event.RouteClose, &event.Route{
		Session: r.id, From: r.from.pid, To: r.to.pid, Note: note})
}

// expireRoutes closes routes whose lifetime ended and gives up on onward
// requests the next relay never answered.
func (c *Core) expireRoutes(now time.Time) {
	for id, o := range c.onward {
		if now.After(o.deadline) {
			delete(c.onward, id)
			if c.peers[o.from.key] == o.from {
				c.refuseRoute(o.from, o.request, o.session, proto.CodeInternal)
			}
		}
	}
	for id, r := range c.routes {
		if id == r.id && !r.expires.IsZero() && !now.Before(r.expires) {
			c.closeRoute(r, proto.CodeExpired, nil, "expired")
		}
	}
}
