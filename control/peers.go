package control

import (
	"errors"
	"math"
	"net/netip"
	"time"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/journal"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/pool/proto"
	"github.com/poolrelay/poolrelay/pool/transport"
	"github.com/poolrelay/poolrelay/sched"
)

// peerState is one enrolled peer: its session, slot and what the core knows
// of it.
type peerState struct {
	key  identity.PublicKey
	pid  peer.ID
	node address.NodeID
	ep   transport.Endpoint
	sess *handshake.Session
	ch   *proto.Channel
	id   [16]byte
	slot uint32
	role proto.Role
	// ack is the ACK frame sent to it, resent if its RESPONSE comes again
	// (the ACK was lost).
	ack []byte
	// theirs are the terms it announced.
	theirs account.Terms

	established, lastHeard time.Time
	// epoch and base make the data plane's cumulative slot counters into
	// this session's: the slot may have served an earlier peer.
	epoch         uint64
	base          counters.Peer
	ctlIn, ctlOut account.Traffic
	// rekeyBase is the frames sent towards the peer when the current key
	// generation started; rekeyAt when our last REKEY request went out.
	rekeyBase uint64
	rekeyAt   time.Time
	rekeys    uint32

	hbSent, hbSeen uint64
	nextHB         time.Time
	link           proto.Link
	// hbBytes and hbAt are the relayed bytes and the time of the last
	// heartbeat sent, for the throughput it reports.
	hbBytes uint64
	hbAt    time.Time
	// hbBPS is that throughput, the local measure beside the peer's.
	hbBPS     uint64
	lastHB    proto.Heartbeat
	headID    [16]byte
	headIndex uint64

	// routes are the routes from or to the peer; opened counts those it
	// opened itself, its quota (max_routes_per_peer).
	routes map[[16]byte]*routeState
	opened int

	// static is set for a static lab peer (see static.go): no session,
	// keys from a pre-shared key file or none.
	static *staticPeerSpec
}

// onInit answers an INIT with a stateless CHALLENGE.
func (c *Core) onInit(f proto.Frame, from transport.Endpoint) {
	msg, err := c.resp.Challenge(c.msg[:0], f.Payload, from.Addr)
	if err != nil {
		c.stats.inc(handshakeCounter(err))
		return
	}
	c.stats.inc(Challenges)
	c.send(from, proto.AppendHandshake(c.frame[:0], handshake.KindChallenge, [16]byte{}, c.stamp(), msg))
}

// onResponse completes a handshake. A RESPONSE seen before from the same
// client whose session is up gets its ACK again: the first one was lost.
func (c *Core) onResponse(f proto.Frame, from transport.Endpoint) {
	msg, sess, err := c.resp.Accept(c.msg[:0], f.Payload, from.Addr)
	if errors.Is(err, handshake.ErrReplay) {
		if r, perr := handshake.ParseResponse(f.Payload); perr == nil {
			if ps := c.byEphemeral[r.Ephemeral()]; ps != nil && ps.ep.Addr == from.Addr {
				c.stats.inc(AcksResent)
				c.send(from, ps.ack)
				return
			}
		}
	}
	if err != nil {
		c.stats.inc(handshakeCounter(err))
		return
	}
	c.stats.inc(HandshakesAccepted)
	ack := proto.AppendHandshake(nil, handshake.KindAck, [16]byte{}, c.stamp(), msg)
	if _, err := c.establish(sess, from, ack); err != nil {
		c.log.Info().Err(err).Str("peer", sess.Peer().String()).Msg("enrollment refused")
	}
}

// establish turns a completed handshake into an enrolled peer: enrollment
// terms checked by the ledger, a slot, hop keys in the data plane. ack, for
// the responder, is sent once the peer is installed, so that the peer never
// sends frames the data plane cannot yet verify.
func (c *Core) establish(sess *handshake.Session, ep transport.Endpoint, ack []byte) (*peerState, error) {
	key := sess.Peer()
	var en proto.Enrollment
	if err := en.UnmarshalBinary(sess.PeerPayload()); err != nil {
		c.refuse(sess, ep)
		return nil, errors.Join(ErrRefused, err)
	}
	if old := c.peers[key]; old != nil {
		c.drop(old, ReasonReplaced, false, "replaced by a new session")
	}
	if len(c.free) == 0 {
		c.stats.inc(PeersFull)
		c.refuse(sess, ep)
		return nil, errors.Join(ErrRefused, errors.New("control: no free peer slot"))
	}
	pid := peer.ID(key)
	ours, err := c.o.Ledger.Connect(pid, ep.String(), en.Terms)
	if err != nil {
		c.stats.inc(PeersRefused)
		c.refuse(sess, ep)
		return nil, errors.Join(ErrRefused, err)
	}
	slot := c.free[len(c.free)-1]
	k := sess.Current()
	if err := c.o.DataPlane.SetHopKeys(slot, k.HopRecv[:], k.HopSend[:]); err != nil {
		_ = c.o.Ledger.Disconnect(pid, "hop keys not installed")
		c.refuse(sess, ep)
		return nil, err
	}
	c.free = c.free[:len(c.free)-1]
	now := c.now()
	ps := &peerState{
		key: key, pid: pid, node: address.NodeIDOf(key), ep: ep, sess: sess,
		ch: proto.NewChannel(sess, noSkewLimit), id: sess.ID(), slot: slot, role: en.Role,
		ack: ack, theirs: en.Terms, established: now, lastHeard: now, epoch: c.epochFor(pid, now),
		base: c.o.Counters.Peer(slot), nextHB: now, routes: map[[16]byte]*routeState{},
	}
	ps.rekeyBase = c.sent(ps)
	c.peers[key], c.bySession[ps.id], c.byNode[ps.node] = ps, ps, ps
	if sess.Role() == handshake.RoleResponder {
		c.byEphemeral[sess.InitiatorEphemeral()] = ps
	}
	c.publish(ps)
	if ack != nil {
		c.send(ep, ack)
	}
	// Our terms for this peer (its credit line) follow in TERMS: the ACK
	// carried what a newcomer gets.
	e := proto.Enrollment{Role: proto.RoleRelay, Capabilities: proto.CapRelay, Terms: ours}
	body, _ := e.AppendBinary(c.body[:0])
	c.sendSealed(ps, proto.KindTerms, body)
	c.stats.inc(PeersEnrolled)
	if c.o.Peers != nil && en.Role == proto.RoleRelay {
		c.keepRelay(ps)
	}
	c.log.Info().Str("peer", pid.Short()).Str("addr", ep.String()).Uint32("slot", slot).
		Str("role", sess.Role().String()).Msg("peer enrolled")
	return ps, nil
}

// noSkewLimit turns off the control channel's own timestamp check: onSealed
// checks freshness first, against the heartbeat_tolerance in force, so that
// SetConfig changes it for the sessions already up (a Channel's bound is
// fixed when it is made).
const noSkewLimit = time.Duration(math.MaxInt64)

// fresh reports whether a control frame's POOL timestamp is within the
// tolerance of now, the test proto.Channel.Open would make.
func (c *Core) fresh(ts uint64, now time.Time) bool {
	tol := int64(c.cfg.HeartbeatTolerance)
	d := now.UnixNano() - int64(ts)
	return int64(ts) >= 0 && d <= tol && -d <= tol
}

// epochFor numbers a new session's counters for the ledger, which takes a
// larger epoch for counters restarted from zero and ignores a smaller one as
// a straggler: each session of a peer needs a larger epoch than the last.
// The clock gives one, unless it has not moved past the last session's (a
// peer back within one clock tick, a clock stepped back), when the new
// session's traffic would be ignored, or counted only past the old total.
func (c *Core) epochFor(p peer.ID, now time.Time) uint64 {
	e := uint64(now.UnixNano())
	if v, err := c.o.Ledger.Peer(p); err == nil && v.Account.Base.Epoch >= e {
		e = v.Account.Base.Epoch + 1
	}
	return e
}

// refuse ends a session the core will not keep, with an authenticated CLOSE.
func (c *Core) refuse(sess *handshake.Session, ep transport.Endpoint) {
	if msg, err := sess.Close(c.msg[:0], ReasonRefused); err == nil {
		c.send(ep, proto.AppendHandshake(c.frame[:0], handshake.KindClose, sess.ID(), c.stamp(), msg))
	}
}

// drop removes a peer: its routes, keys and slot; notify sends it a CLOSE.
func (c *Core) drop(ps *peerState, reason uint8, notify bool, why string) {
	if c.peers[ps.key] != ps {
		return
	}
	for _, r := range ps.routes {
		c.closeRoute(r, proto.CodePeerGone, ps, "peer disconnected: "+why)
	}
	if notify {
		if msg, err := ps.sess.Close(c.msg[:0], reason); err == nil {
			c.send(ps.ep, proto.AppendHandshake(c.frame[:0], handshake.KindClose, ps.id, c.stamp(), msg))
		}
	}
	c.observe(ps)
	c.o.DataPlane.ClearHopKeys(ps.slot)
	_ = c.o.DataPlane.SetPeer(ps.slot, sched.Normal, true) // nothing is relayed for a freed slot
	c.free = append(c.free, ps.slot)
	delete(c.peers, ps.key)
	delete(c.bySession, ps.id)
	delete(c.byNode, ps.node)
	delete(c.byEphemeral, ps.sess.InitiatorEphemeral())
	_ = c.o.Ledger.Disconnect(ps.pid, why)
	c.stats.inc(PeersClosed)
	c.log.Info().Str("peer", ps.pid.Short()).Str("why", why).Msg("peer disconnected")
}

// onSessionControl handles the session's own REKEY and CLOSE.
func (c *Core) onSessionControl(f proto.Frame, from transport.Endpoint) {
	ps := c.bySession[f.Session()]
	if ps == nil {
		c.stats.inc(RxUnknownSession)
		return
	}
	reply, ev, err := ps.sess.Handle(c.msg[:0], f.Payload)
	if err != nil && !errors.Is(err, handshake.ErrCollision) {
		c.stats.inc(controlCounterHS(err))
		return
	}
	ps.lastHeard = c.now()
	if len(reply) > 0 {
		c.send(ps.ep, proto.AppendHandshake(c.frame[:0], handshake.KindRekey, ps.id, c.stamp(), reply))
	}
	switch {
	case ev.Has(handshake.EventClosed):
		_, reason := ps.sess.Closed()
		if reason == ReasonUnenrolled || reason == ReasonRefused {
			// Its operator removed us (or its policy refuses us): enrolling
			// again would undo that, so it is no longer kept.
			c.forget(ps.key)
		}
		c.drop(ps, 0, false, "closed by peer")
		return
	case ev.Has(handshake.EventRekeyAnswered):
		// Nothing changes in the data plane yet. A slot holds one key pair
		// and installing resets its egress sequence, so putting the new rx
		// key beside the old tx key would restart the seq under a key that
		// already used it: a GMAC nonce reused. The new pair goes in
		// whole when the peer is seen using it (its next control message,
		// which a rekey initiator sends at once).
	case ev.Has(handshake.EventRekeyed):
		c.rekeyed(ps)
		// Show the peer the new keys now, so that it switches within a
		// round trip rather than at its next heartbeat.
		c.sendHeartbeat(ps, c.now(), journal.SignedHead{}, false)
	case ev.Has(handshake.EventConfirmed):
		c.rekeyed(ps)
	}
}

// controlCounterHS maps a rejected REKEY or CLOSE.
func controlCounterHS(err error) Counter {
	switch {
	case errors.Is(err, handshake.ErrAuth):
		return ControlAuth
	case errors.Is(err, handshake.ErrReplay):
		return ControlReplay
	case errors.Is(err, handshake.ErrGeneration):
		return ControlGeneration
	case errors.Is(err, handshake.ErrTruncated):
		return ControlTruncated
	case errors.Is(err, handshake.ErrMalformed), errors.Is(err, handshake.ErrVersion):
		return ControlMalformed
	}
	return ControlOther
}

// sent counts the frames sent under ps's key slot.
func (c *Core) sent(ps *peerState) uint64 {
	if s, ok := c.o.DataPlane.(sentCounter); ok {
		return s.Sent(ps.slot)
	}
	return c.o.Counters.Peer(ps.slot).ToPackets
}

// rekeyed installs the current generation after a completed rekey.
func (c *Core) rekeyed(ps *peerState) {
	k := ps.sess.Current()
	c.installKeys(ps, k.HopRecv, k.HopSend)
	ps.rekeys++
	ps.rekeyBase = c.sent(ps)
	c.stats.inc(Rekeys)
	_, _ = c.o.Ledger.Journal().SubmitEvent(event.Rekey, &event.PeerNote{Peer: ps.pid, Note: "hop keys rotated"})
}

// installKeys replaces the slot's keys with a new generation's (never one
// key of a pair: see onSessionControl). The data plane keeps one key pair per
// slot, so frames in flight under the old receive key are lost at the switch:
// a rekey happens once an hour.
func (c *Core) installKeys(ps *peerState, rx, tx [32]byte) {
	if err := c.o.DataPlane.SetHopKeys(ps.slot, rx[:], tx[:]); err != nil {
		c.log.Error().Err(err).Str("peer", ps.pid.Short()).Msg("installing hop keys")
	}
}

// stamp is the POOL header timestamp of frames the core sends.
func (c *Core) stamp() uint64 { return uint64(c.now().UnixNano()) }

// sendSealed seals body on the peer's control channel and sends it.
func (c *Core) sendSealed(ps *peerState, k proto.Kind, body []byte) {
	f := ps.ch.Seal(c.frame[:0], k, body, c.now())
	ps.ctlOut.Packets++
	ps.ctlOut.Bytes += uint64(len(f))
	c.send(ps.ep, f)
}

// pendingKey names an outbound enrollment by the server's transport address.
type pendingKey struct {
	port int
	addr netip.AddrPort
}

// outbound is an enrollment this relay started as initiator.
type outbound struct {
	ep       transport.Endpoint
	init     *handshake.Initiator
	deadline time.Time
	// response is the RESPONSE frame once solved, resent on each tick
	// until the ACK arrives; solving is true while a goroutine solves the
	// puzzle (the Initiator is then not the core's to touch).
	response []byte
	solving  bool
	result   chan<- enrollResult
	// done, if set, is told the outcome too, on the core's goroutine (a
	// reconnection attempt's bookkeeping).
	done func(identity.PublicKey, error)
}

type enrollResult struct {
	key identity.PublicKey
	err error
}

func (o *outbound) finish(key identity.PublicKey, err error) {
	if o.result != nil {
		o.result <- enrollResult{key, err}
		o.result = nil
	}
	if o.done != nil {
		o.done(key, err)
		o.done = nil
	}
}

// startEnroll begins an outbound enrollment that ends after timeout; the
// result goes to res and done (either may be nil). key, if not zero, is the
// identity the other end must prove.
func (c *Core) startEnroll(to transport.Endpoint, server address.Address, key identity.PublicKey, timeout time.Duration,
	res chan<- enrollResult, done func(identity.PublicKey, error)) {
	payload, _ := c.enrollment()
	init, err := handshake.NewInitiator(handshake.InitiatorConfig{
		Identity: c.o.Identity, Network: c.o.Network, ServerAddress: server, Server: key, MaxDifficulty: c.cfg.MaxPuzzle,
		Payload: payload, Clock: c.o.Clock, Rand: c.o.Rand,
	})
	if err != nil {
		(&outbound{result: res, done: done}).finish(identity.PublicKey{}, err)
		return
	}
	k := pendingKey{to.Port, to.Addr}
	if old := c.pending[k]; old != nil {
		old.finish(identity.PublicKey{}, ErrRefused)
	}
	ob := &outbound{ep: to, init: init, deadline: c.now().Add(timeout), result: res, done: done}
	c.pending[k] = ob
	c.sendInit(ob)
}

func (c *Core) sendInit(ob *outbound) {
	msg, err := ob.init.Init(c.msg[:0])
	if err == nil {
		c.send(ob.ep, proto.AppendHandshake(c.frame[:0], handshake.KindInit, [16]byte{}, c.stamp(), msg))
	}
}

// onChallenge solves the puzzle of an outbound enrollment off the core's
// goroutine: at a high difficulty it takes seconds.
func (c *Core) onChallenge(f proto.Frame, from transport.Endpoint) {
	ob := c.pending[pendingKey{from.Port, from.Addr}]
	if ob == nil || ob.solving || ob.response != nil {
		c.stats.inc(RxUnexpected)
		return
	}
	ob.solving = true
	if from.MAC != (wire.MAC{}) {
		ob.ep = from
	}
	challenge := append([]byte(nil), f.Payload...)
	go func() {
		msg, err := ob.init.Respond(nil, challenge)
		c.post(func() {
			ob.solving = false
			if err != nil {
				// The server is not the one expected, or asks too much:
				// retrying would not change that.
				c.stats.inc(handshakeCounter(err))
				if c.pending[pendingKey{ob.ep.Port, ob.ep.Addr}] == ob {
					delete(c.pending, pendingKey{ob.ep.Port, ob.ep.Addr})
				}
				ob.finish(identity.PublicKey{}, errors.Join(ErrRefused, err))
				return
			}
			ob.response = proto.AppendHandshake(nil, handshake.KindResponse, [16]byte{}, c.stamp(), msg)
			c.send(ob.ep, ob.response)
		})
	}()
}

// onAck completes an outbound enrollment.
func (c *Core) onAck(f proto.Frame, from transport.Endpoint) {
	k := pendingKey{from.Port, from.Addr}
	ob := c.pending[k]
	if ob == nil || ob.response == nil {
		c.stats.inc(RxUnexpected)
		return
	}
	sess, err := ob.init.Finish(f.Payload)
	if err != nil {
		c.stats.inc(handshakeCounter(err))
		return
	}
	c.stats.inc(HandshakesFinished)
	delete(c.pending, k)
	ps, err := c.establish(sess, ob.ep, nil)
	if err != nil {
		ob.finish(identity.PublicKey{}, err)
		return
	}
	ob.finish(ps.key, nil)
}
