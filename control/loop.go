package control

import (
	"context"
	"errors"
	"time"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/journal"
	"github.com/poolrelay/poolrelay/ledger/score"
	"github.com/poolrelay/poolrelay/pool/proto"
	"github.com/poolrelay/poolrelay/pool/transport"
	"github.com/poolrelay/poolrelay/sched"
)

// handle dispatches one received frame.
func (c *Core) handle(p packet) {
	c.stats.inc(RxFrames)
	f, err := proto.ParseFrame(p.data)
	if err != nil {
		c.stats.inc(RxMalformed)
		c.stats.inc(controlCounter(err))
		return
	}
	switch f.Type() {
	case wire.TypeInit:
		c.onInit(f, p.from)
	case wire.TypeChallenge:
		c.onChallenge(f, p.from)
	case wire.TypeResponse:
		c.onResponse(f, p.from)
	case wire.TypeAck:
		c.onAck(f, p.from)
	case wire.TypeRekey, wire.TypeClose:
		c.onSessionControl(f, p.from)
	case wire.TypeData, wire.TypeHeartbeat:
		c.onSealed(f, p)
	default:
		c.stats.inc(RxUnexpected)
	}
}

// onSealed opens a relay-control message of an enrolled peer and acts on it.
func (c *Core) onSealed(f proto.Frame, p packet) {
	ps := c.bySession[f.Session()]
	if ps == nil {
		c.stats.inc(RxUnknownSession)
		return
	}
	now := c.now()
	if !c.fresh(f.Header.Timestamp(), now) {
		c.stats.inc(ControlStale)
		return
	}
	m, err := ps.ch.Open(p.data, now)
	if err != nil {
		c.stats.inc(controlCounter(err))
		return
	}
	ps.lastHeard = now
	ps.ctlIn.Packets++
	ps.ctlIn.Bytes += uint64(len(p.data))
	// The peer roams: follow its address (a NAT rebinding, a new MAC).
	if p.from != ps.ep {
		ps.ep = p.from
	}
	if next, ok := ps.sess.Next(); ok && next.Generation == m.Generation && ps.sess.Confirm() {
		c.rekeyed(ps)
	}
	switch m.Kind {
	case proto.KindTerms:
		c.onTerms(ps, m.Body)
	case proto.KindRouteOpen:
		c.onRouteOpen(ps, m.Body)
	case proto.KindRouteClose:
		c.onRouteClose(ps, m.Body)
	case proto.KindHeartbeat:
		c.onHeartbeat(ps, m.Body, now)
	case proto.KindCheque:
		c.onCheque(ps, m.Body)
	case proto.KindChequeAck:
		cum, err := proto.ParseChequeAck(m.Body)
		if err != nil {
			c.stats.inc(ControlMalformed)
			return
		}
		if c.o.Ledger.ChequeAcked(ps.pid, cum) == nil {
			c.stats.inc(ChequeAcks)
		}
	case proto.KindChequeRefused:
		var cr proto.ChequeRefusal
		if err := cr.UnmarshalBinary(m.Body); err != nil {
			c.stats.inc(ControlMalformed)
			return
		}
		c.stats.inc(ChequesRefusedByPeer)
		if c.limited(&c.refusedLogAt, now) {
			c.log.Warn().Str("peer", ps.pid.Short()).Str("reason", cr.Code.String()).Uint64("held", cr.Cumulative).
				Msg("peer could not take our cheque now; it stays due and is sent again")
		}
	case proto.KindRouteOK, proto.KindRouteError:
		c.onRouteAnswer(ps, m.Kind, m.Body)
	default:
		c.stats.inc(RxUnexpected)
	}
}

// onTerms takes a peer's terms for us (its credit line for us) when they
// differ from what its handshake announced.
func (c *Core) onTerms(ps *peerState, body []byte) {
	var e proto.Enrollment
	if err := e.UnmarshalBinary(body); err != nil {
		c.stats.inc(ControlMalformed)
		return
	}
	if e.Terms == ps.theirs {
		return
	}
	if _, err := c.o.Ledger.Connect(ps.pid, ps.ep.String(), e.Terms); err != nil {
		c.stats.inc(PeersRefused)
		c.drop(ps, ReasonRefused, true, "terms refused: "+err.Error())
		return
	}
	ps.theirs = e.Terms
	if c.o.Peers != nil && c.wanted[ps.key] != nil {
		c.keepRelay(ps)
	}
}

// onHeartbeat checks a peer's heartbeat: signature, that it is about us,
// sequence, freshness, its journal head; then the ledger cross-checks the
// counters it signed against ours.
func (c *Core) onHeartbeat(ps *peerState, body []byte, now time.Time) {
	hb, err := proto.ParseHeartbeat(body, ps.id, ps.key)
	switch {
	case errors.Is(err, proto.ErrSignature):
		c.stats.inc(HeartbeatSignature)
		return
	case err != nil:
		c.stats.inc(HeartbeatMalformed)
		return
	case hb.Subject != c.o.Identity.PublicKey():
		c.stats.inc(HeartbeatSubject)
		return
	case hb.Seq <= ps.hbSeen:
		c.stats.inc(HeartbeatReplay)
		return
	}
	if d := now.Sub(hb.Time); d > c.cfg.HeartbeatTolerance || -d > c.cfg.HeartbeatTolerance {
		c.stats.inc(HeartbeatStale)
		return
	}
	if hb.HasHead {
		// A journal only grows: a head signed at a lower index of the same
		// journal is a rewritten history (or a replay).
		if hb.Head.Verify(ps.pid) != nil || (hb.Head.ID == ps.headID && hb.Head.Index < ps.headIndex) {
			c.stats.inc(HeartbeatHead)
			return
		}
		ps.headID, ps.headIndex = hb.Head.ID, hb.Head.Index
	}
	ps.hbSeen, ps.lastHB = hb.Seq, hb
	ps.link.Received(&hb, now)
	c.stats.inc(HeartbeatsAccepted)
	// Our side of the comparison as of now, not of the last tick: the peer
	// signed its counters a transit time ago, and a tick-old snapshot of
	// ours would lag by up to a tick of traffic, far more than the band's
	// slack at any real rate (a second at 10 Gbit/s is 1.25 GB; see the
	// package doc on accounting).
	c.observe(ps)
	r0 := c.o.Ledger.Reconciled()
	if _, bad, err := c.o.Ledger.CheckClaim(ps.pid, hb.Counters); err == nil && bad {
		c.stats.inc(HeartbeatMismatch)
	}
	// The first claim after a restart may have reconciled the account
	// (see ledger.CheckClaim).
	if r := c.o.Ledger.Reconciled(); r != r0 {
		c.stats[Reconciles].Add(r.Adopted - r0.Adopted)
		c.stats[ReconcilesRefused].Add(r.Refused - r0.Refused)
		c.stats[ReconciledPeer].Add(r.ToPeer - r0.ToPeer)
		c.stats[ReconciledUs].Add(r.ToUs - r0.ToUs)
	}
}

// onCheque hands a cheque to the ledger, which makes it durable before we
// acknowledge it. A cheque the journal cannot record now is not acknowledged
// either: the peer is told why (CHEQUE_REFUSED) and sends it again later.
func (c *Core) onCheque(ps *peerState, body []byte) {
	r, err := c.o.Ledger.ReceiveCheque(ps.pid, body)
	if errors.Is(err, journal.ErrDegraded) {
		c.stats.inc(ChequesDeferred)
		var held uint64
		if v, verr := c.o.Ledger.Peer(ps.pid); verr == nil {
			held = v.Account.ReceivedTotal
		}
		m := proto.ChequeRefusal{Code: proto.RefuseJournal, Cumulative: held}
		b, _ := m.AppendBinary(c.body[:0])
		c.sendSealed(ps, proto.KindChequeRefused, b)
		return
	}
	if err != nil && !errors.Is(err, ledger.ErrDuplicate) {
		c.stats.inc(ChequesRejected)
		return
	}
	c.stats.inc(ChequesAccepted)
	c.sendSealed(ps, proto.KindChequeAck, proto.AppendChequeAck(c.body[:0], r.Cumulative))
}

// sendHeartbeat signs and sends a heartbeat to ps.
func (c *Core) sendHeartbeat(ps *peerState, now time.Time, head journal.SignedHead, hasHead bool) {
	// Sign the counters as of now, not of the last tick: a restarted peer
	// reconciles the charges it lost against them, and a tick-old claim
	// falls short by a tick of traffic.
	c.observe(ps)
	ctrs, err := c.o.Ledger.Counters(ps.pid)
	if err != nil {
		return
	}
	ps.hbSent++
	cur := c.o.Counters.Peer(ps.slot)
	relayed := cur.ForBytes + cur.ToBytes - ps.base.ForBytes - ps.base.ToBytes
	var bps uint64
	if d := now.Sub(ps.hbAt); ps.hbSent > 1 && d > 0 {
		bps = uint64(float64(relayed-ps.hbBytes) * 8 / d.Seconds())
	}
	ps.hbBytes, ps.hbAt, ps.hbBPS = relayed, now, bps
	hb := proto.Heartbeat{
		Time: now, Seq: ps.hbSent, Subject: ps.key, Counters: ctrs, HasHead: hasHead, Head: head,
		Tel: proto.Telemetry{
			MTU: c.o.MTU, Throughput: bps, QueueDepth: uint32(len(c.in)), RekeyCount: ps.rekeys,
			Uptime: now.Sub(c.start), ConfigVersion: c.o.ConfigVersion,
		},
	}
	hb.EchoSeq, hb.EchoDelay = ps.link.Echo(now)
	ps.link.Telemetry(&hb.Tel)
	c.sendSealed(ps, proto.KindHeartbeat, hb.AppendSigned(c.body[:0], ps.id, c.o.Identity))
	ps.link.Sent(hb.Seq, now)
	c.stats.inc(HeartbeatsSent)
}

// observe feeds the data plane's counters of ps's slot, as this session's
// cumulative counters, to the ledger.
func (c *Core) observe(ps *peerState) {
	cur := c.o.Counters.Peer(ps.slot)
	ctr := account.Counters{
		Epoch:      ps.epoch,
		RelayedFor: account.Traffic{Packets: cur.ForPackets - ps.base.ForPackets, Bytes: cur.ForBytes - ps.base.ForBytes},
		ControlIn:  ps.ctlIn,
		ControlOut: ps.ctlOut,
	}
	// Frames handed to a relay are relayed by it for us (we pay it); frames
	// handed to an end node are delivered: it is their destination, it
	// relays nothing for us, and whoever sent them pays us. Counting
	// deliveries would promote a pure sink to the top class.
	if ps.role != proto.RoleNode {
		ctr.RelayedBy = account.Traffic{Packets: cur.ToPackets - ps.base.ToPackets, Bytes: cur.ToBytes - ps.base.ToBytes}
		ctr.RelayedByUncredited = account.Traffic{Packets: cur.UncreditedPackets - ps.base.UncreditedPackets,
			Bytes: cur.UncreditedBytes - ps.base.UncreditedBytes}
	}
	_ = c.o.Ledger.Observe(ps.pid, ctr)
}

// publish gives the data plane ps's class and choke state from the ledger.
func (c *Core) publish(ps *peerState) {
	v, err := c.o.Ledger.Peer(ps.pid)
	if err != nil {
		return
	}
	class, credits := schedClass(v.Class), v.Credits
	if ps.role == proto.RoleNode {
		// An end node never relays, so by its score every end node is a
		// heavy consumer; with the deprioritised mark (sched.Relayed) all
		// of its users' traffic would then be deprioritised on every hop.
		// The relay serves its own end nodes in the normal class and lets
		// their frames credit the next hop: what they ride on is the
		// relay's standing with its neighbours (the incentive simulation,
		// package sim, models end nodes so). Their debt still chokes them.
		class, credits = sched.Normal, true
	}
	if err := c.o.DataPlane.SetPeer(ps.slot, class, v.Choked); err != nil {
		c.log.Error().Err(err).Uint32("slot", ps.slot).Msg("publishing a peer's class")
	}
	if cs, ok := c.o.DataPlane.(creditSetter); ok {
		if err := cs.SetCredit(ps.slot, credits); err != nil {
			c.log.Error().Err(err).Uint32("slot", ps.slot).Msg("publishing a peer's credit")
		}
	}
}

// schedClass maps the generosity class to the egress queue class.
func schedClass(s score.Class) sched.Class {
	switch s {
	case score.MajorContributor:
		return sched.Priority
	case score.HeavyConsumer:
		return sched.Deprioritised
	}
	return sched.Normal
}

// tick is the core's periodic work.
func (c *Core) tick() {
	now := c.now()
	for _, ps := range c.peers {
		c.observe(ps)
	}
	c.staticTick()
	rep, err := c.o.Ledger.Tick()
	// A degraded journal logs itself; anything else (a checkpoint failing
	// on a full disk) is logged at most once a minute, not every tick.
	if err != nil && !errors.Is(err, journal.ErrDegraded) && c.limited(&c.tickErrAt, now) {
		c.log.Error().Err(err).Msg("ledger tick")
	}
	for _, p := range rep.Disconnect {
		if ps := c.peers[identity.PublicKey(p)]; ps != nil {
			c.drop(ps, ReasonDebt, true, "debt past the disconnect threshold")
		}
	}
	if v := c.o.Ledger.Version(); v != c.ledgerVer {
		c.ledgerVer = v
		c.states = c.o.Ledger.PeerStates(c.states[:0])
		for _, s := range c.states {
			if ps := c.peers[identity.PublicKey(s.Peer)]; ps != nil {
				c.publish(ps)
			} else if ps := c.staticByID[s.Peer]; ps != nil {
				c.publish(ps)
			}
		}
	}
	c.due = c.o.Ledger.Due(c.due[:0])
	for i := range c.due {
		if ps := c.peers[identity.PublicKey(c.due[i].Peer)]; ps != nil {
			c.sendSealed(ps, proto.KindCheque, c.due[i].Cheque[:])
			c.stats.inc(ChequesSent)
		}
	}
	var head journal.SignedHead
	signed := false
	for _, ps := range c.peers {
		switch {
		case now.Sub(ps.lastHeard) > c.cfg.PeerTimeout:
			c.stats.inc(PeersTimedOut)
			c.drop(ps, ReasonTimeout, true, "silent past peer_timeout")
			continue
		case !now.Before(ps.nextHB):
			if !signed {
				h, err := c.o.Ledger.SignedHead()
				head, signed = h, err == nil
			}
			c.sendHeartbeat(ps, now, head, signed)
			ps.nextHB = now.Add(c.cfg.HeartbeatInterval)
		}
		c.maybeRekey(ps, now)
	}
	c.expireRoutes(now)
	c.reconnect(now)
	for k, ob := range c.pending {
		switch {
		case now.After(ob.deadline):
			ob.finish(identity.PublicKey{}, ErrEnrollTimeout)
			delete(c.pending, k)
		case ob.solving:
		case ob.response != nil:
			c.send(ob.ep, ob.response)
		default:
			c.sendInit(ob)
		}
	}
}

// rekeyRetry is how long a REKEY request waits for its reply before a new one.
const rekeyRetry = 10 * time.Second

// maybeRekey starts (or retries) a rekey when the session is due one.
func (c *Core) maybeRekey(ps *peerState, now time.Time) {
	sent := c.sent(ps) - ps.rekeyBase
	if !ps.sess.RekeyDue(sent) || (ps.sess.RekeyPending() && now.Sub(ps.rekeyAt) < rekeyRetry) {
		return
	}
	msg, err := ps.sess.Rekey(c.msg[:0])
	if err != nil {
		return
	}
	ps.rekeyAt = now
	c.send(ps.ep, proto.AppendHandshake(c.frame[:0], handshake.KindRekey, ps.id, c.stamp(), msg))
}

// Enroll makes this relay enroll with another one at to, as handshake
// initiator (pool_relay enroll). server, if not zero, is the POOL address the
// other relay must prove. It returns the enrolled peer's identity.
func (c *Core) Enroll(ctx context.Context, to transport.Endpoint, server address.Address) (identity.PublicKey, error) {
	res := make(chan enrollResult, 1)
	if err := c.do(ctx, func() { c.startEnroll(to, server, identity.PublicKey{}, c.cfg.EnrollTimeout, res, nil) }); err != nil {
		return identity.PublicKey{}, err
	}
	select {
	case r := <-res:
		return r.key, r.err
	case <-ctx.Done():
		return identity.PublicKey{}, ctx.Err()
	case <-c.done:
		return identity.PublicKey{}, ErrStopped
	}
}

// PeerInfo describes an enrolled peer.
type PeerInfo struct {
	Key         identity.PublicKey
	Endpoint    transport.Endpoint
	Role        proto.Role
	Slot        uint32
	Established time.Time
	LastHeard   time.Time
	Routes      int
	// Telemetry is what its last heartbeat reported; Measured what this
	// relay measured of the link: RTT, jitter and heartbeat loss from the
	// heartbeats' echoes, Throughput the bytes relayed for and towards the
	// peer per second over the last heartbeat interval (what our own
	// heartbeat reported to it), MTU ours, and Uptime the session's age.
	Telemetry, Measured proto.Telemetry
	HeartbeatsSeen      uint64
	Rekeys              uint32
	// Static is the name of a static lab peer (from the configuration,
	// no session), empty for an enrolled one; Unauthenticated is set for
	// a static peer whose frames are relayed without hop authentication.
	Static          string
	Unauthenticated bool
	// Relayed is a static peer's data plane counters since it was
	// installed.
	Relayed counters.Peer
}

// Peers lists the enrolled peers.
func (c *Core) Peers(ctx context.Context) ([]PeerInfo, error) {
	var out []PeerInfo
	err := c.do(ctx, func() {
		for _, ps := range c.peers {
			var m proto.Telemetry
			ps.link.Telemetry(&m)
			m.Throughput, m.MTU, m.Uptime = ps.hbBPS, c.o.MTU, c.now().Sub(ps.established)
			out = append(out, PeerInfo{Measured: m, Key: ps.key, Endpoint: ps.ep, Role: ps.role, Slot: ps.slot,
				Established: ps.established, LastHeard: ps.lastHeard, Routes: len(ps.routes),
				Telemetry: ps.lastHB.Tel, HeartbeatsSeen: ps.hbSeen, Rekeys: ps.rekeys})
		}
		for _, ps := range c.static {
			out = append(out, PeerInfo{Key: ps.key, Endpoint: ps.ep, Role: ps.role, Slot: ps.slot,
				Established: ps.established, LastHeard: ps.lastHeard, Routes: len(ps.routes),
				Static: ps.static.cfg.Name, Unauthenticated: ps.static.cfg.Unauthenticated,
				Relayed: since(c.o.Counters.Peer(ps.slot), ps.base)})
		}
	})
	return out, err
}

// RouteInfo describes a relayed route: frames of Session from From go to
// To, and frames of proto.ReverseSession(Session) from To back to From.
type RouteInfo struct {
	Session  [16]byte
	From, To identity.PublicKey
	// Expires is when the route is removed; zero never (a static route
	// added without a lifetime).
	Expires time.Time
	// Static routes were added by the operator (AddRoute) or come from
	// the configuration (Config); the others were opened by From.
	Static bool
	// Counters are the route counter slots of the forward and reverse
	// directions (0: none; see Options.RouteCounters), and Traffic what
	// each carried since the route was installed, at Installed.
	Counters  [2]uint32
	Traffic   [2]counters.Route
	Installed time.Time
	// Config routes are a configuration's static_route: Sessions
	// consecutive session ids from Session (Sessions is 0 for every other
	// route, which is one session), between static peers FromName and
	// ToName.
	Config           bool
	Sessions         int
	FromName, ToName string
}

func (r *routeState) info(rc RouteCounters) RouteInfo {
	ri := RouteInfo{Session: r.id, From: r.from.key, To: r.to.key, Expires: r.expires, Static: r.static,
		Counters: r.ctr, Installed: r.installed, Config: r.config, Sessions: r.count}
	if r.from.static != nil {
		ri.FromName = r.from.static.cfg.Name
	}
	if r.to.static != nil {
		ri.ToName = r.to.static.cfg.Name
	}
	if rc != nil {
		for d, s := range r.ctr {
			if s != 0 {
				cur := rc.Route(s)
				ri.Traffic[d] = counters.Route{Packets: cur.Packets - r.base[d].Packets, Bytes: cur.Bytes - r.base[d].Bytes}
			}
		}
	}
	return ri
}

// Routes lists the relayed routes.
func (c *Core) Routes(ctx context.Context) ([]RouteInfo, error) {
	var out []RouteInfo
	err := c.do(ctx, func() {
		for id, r := range c.routes {
			if id == r.id {
				out = append(out, r.info(c.o.RouteCounters))
			}
		}
	})
	return out, err
}

// logEvery rate-limits the core's logs of conditions that last (a full disk,
// a peer refusing cheques): one line a minute says it goes on.
const logEvery = time.Minute

// limited reports whether a rate-limited line may be logged now, and if so
// notes the time in *at.
func (c *Core) limited(at *time.Time, now time.Time) bool {
	if !at.IsZero() && now.Sub(*at) < logEvery {
		return false
	}
	*at = now
	return true
}
