// Package endnode is a POOL end node: what sends traffic through relays.
// Over an ordinary UDP socket it enrolls with a relay (the stateless
// handshake as initiator), asks the relay for a route to another end node,
// runs an end-to-end handshake with that node through the route, and
// exchanges end-to-end DATA frames with it.
//
// A frame on the wire is an outer POOL frame for the hop to the relay (type
// DATA, channel 0, the route's session id, the hop seq, AES-GMAC under the
// hop key in the MAC field) whose payload is the inner end-to-end frame,
// which the relay never touches: type DATA, the end-to-end session id, a
// sequence number, the payload sealed with ChaCha20-Poly1305 under the
// end-to-end data key (nonce = the sequence number) with the inner header
// (MAC field zeroed) as associated data, and the 16-byte tag in the first
// half of the inner MAC field. The end-to-end handshake's messages travel
// the same way, as inner frames of their own types.
//
// A route's two directions have two session ids: the opener sends on S, the
// other end on proto.ReverseSession(S).
package endnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/owner"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/pool/proto"
	"github.com/poolrelay/poolrelay/pool/transport"
)

// Config configures a Node. Fields are required unless marked optional.
type Config struct {
	Identity *identity.Identity
	Network  uint32
	// Relay is the relay's UDP address; RelayAddress, optional, the POOL
	// address it must prove (otherwise the first identity that answers is
	// trusted and pinned).
	Relay        netip.AddrPort
	RelayAddress address.Address
	Transport    transport.Transport
	Clock        clock.Clock
	Rand         io.Reader
	Log          zerolog.Logger
	// Ticks drives heartbeats and retransmissions; optional (a 1 s
	// ticker). Tests pass a channel and a fake clock.
	Ticks <-chan time.Time
	// HeartbeatInterval, optional: 5 s.
	HeartbeatInterval time.Duration
	// MaxSkew bounds the timestamps of control messages and heartbeats;
	// optional: proto.DefaultMaxSkew.
	MaxSkew time.Duration
	// Terms are announced at enrollment; optional: DefaultTerms.
	Terms account.Terms
	// Accept decides which end nodes may open an end-to-end session with
	// this one; optional: anyone enrolled with the relay.
	Accept handshake.Policy
	// OnData receives end-to-end payloads (on the node's goroutine; the
	// slice is valid during the call). Optional.
	OnData func(route [16]byte, payload []byte)
	// Echo sends every payload received back to its sender (a reflector
	// for throughput and loss tests).
	Echo bool
}

// DefaultTerms are an end node's announcement: it relays nothing, so it
// charges nothing, and asks for payment only at thresholds a relay never
// reaches with it (it never sends it cheques in return).
func DefaultTerms() account.Terms {
	return account.Terms{Payment: 1 << 40, Disconnect: 1<<40 + 1<<38}
}

// Errors.
var (
	ErrTimeout   = errors.New("endnode: timed out")
	ErrStopped   = errors.New("endnode: node stopped")
	ErrNotReady  = errors.New("endnode: not enrolled")
	ErrRefused   = errors.New("endnode: route refused")
	ErrNoSession = errors.New("endnode: no end-to-end session on this route")
)

// Stats are the node's counters; safe to read at any time.
type Stats struct {
	DataSent, DataReceived   atomic.Uint64
	BytesSent, BytesReceived atomic.Uint64
	// HopRejected: outer frames whose hop MAC or seq failed; InnerRejected:
	// inner frames that did not open.
	HopRejected, InnerRejected atomic.Uint64
	ControlRejected            atomic.Uint64
	HeartbeatsSent             atomic.Uint64
	HeartbeatsAccepted         atomic.Uint64
	HeartbeatsRejected         atomic.Uint64
	ControlFramesIn            atomic.Uint64
	ControlBytesIn             atomic.Uint64
}

// Node is an end node. Run owns its state; the other methods hand work to
// Run's goroutine and are safe for concurrent use, except that a Sender
// belongs to one goroutine.
type Node struct {
	cfg   Config
	relay transport.Endpoint
	reqs  *owner.Queue
	done  chan struct{}
	start time.Time
	Stats Stats

	// Owned by Run's goroutine.
	sess      *handshake.Session
	ch        *proto.Channel
	enrolling *enrollment
	routeReqs map[uint32]*routeReq
	nextReq   uint32
	hbSent    uint64
	hbSeen    uint64
	link      proto.Link
	nextHB    time.Time
	relayTerm account.Terms
	e2eResp   *handshake.Responder
	e2e       map[[16]byte]*e2eSession // by the route id frames arrive on
	ctlOut    account.Traffic
	hop       *hopSender
	rx        hopReceiver
	frame     []byte
	body      []byte
}

type enrollment struct {
	init     *handshake.Initiator
	response []byte
	solving  bool
	deadline time.Time
	done     chan error
}

type routeReq struct {
	frameBody []byte
	deadline  time.Time
	done      chan routeResult
}

type routeResult struct {
	ok  proto.RouteOK
	err error
}

// New validates cfg and returns a node; call Run.
func New(cfg Config) (*Node, error) {
	if cfg.Identity == nil || cfg.Transport == nil || cfg.Clock == nil || cfg.Rand == nil || !cfg.Relay.IsValid() {
		return nil, errors.New("endnode: Config needs Identity, Transport, Clock, Rand and Relay")
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 5 * time.Second
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = proto.DefaultMaxSkew
	}
	if cfg.Terms == (account.Terms{}) {
		cfg.Terms = DefaultTerms()
	}
	if cfg.Accept == nil {
		cfg.Accept = handshake.OpenPolicy
	}
	n := &Node{
		cfg: cfg, relay: transport.Endpoint{Addr: cfg.Relay}, done: make(chan struct{}),
		start: cfg.Clock.Now(), routeReqs: map[uint32]*routeReq{}, e2e: map[[16]byte]*e2eSession{},
		frame: make([]byte, 0, 65536), body: make([]byte, 0, proto.MaxFrame),
	}
	payload, err := n.enrollmentPayload()
	if err != nil {
		return nil, err
	}
	n.e2eResp, err = handshake.NewResponder(handshake.ResponderConfig{
		Identity: cfg.Identity, Network: cfg.Network, Policy: cfg.Accept, Puzzle: handshake.DefaultPuzzleConfig(),
		Payload: payload, Clock: cfg.Clock, Rand: cfg.Rand, Log: cfg.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("endnode: %w", err)
	}
	n.reqs = owner.New(n.done, ErrStopped)
	return n, nil
}

func (n *Node) enrollmentPayload() ([]byte, error) {
	e := proto.Enrollment{Role: proto.RoleNode, Terms: n.cfg.Terms}
	return e.AppendBinary(nil)
}

// Address is this node's POOL address in organisation org, segment seg.
func (n *Node) Address(org uint32, seg uint16) address.Address {
	return address.New(address.TypeNode, org, seg, n.cfg.Identity.PublicKey())
}

// Run receives and handles frames and does the periodic work until ctx
// ends or the transport is closed. The caller closes the transport after.
func (n *Node) Run(ctx context.Context) error {
	defer close(n.done)
	in := make(chan packet, 1024)
	errc := make(chan error, 1)
	go n.read(in, errc)
	ticks := n.cfg.Ticks
	if ticks == nil {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			n.closeSession()
			return nil
		case err := <-errc:
			if errors.Is(err, transport.ErrClosed) {
				return nil
			}
			return err
		case p := <-in:
			n.handle(p)
		case <-ticks:
			n.tick()
		case fn := <-n.reqs.C():
			fn()
		}
	}
}

type packet struct {
	from transport.Endpoint
	data []byte
}

func (n *Node) read(in chan<- packet, errc chan<- error) {
	buf := make([]byte, 65536)
	for {
		k, from, err := n.cfg.Transport.Recv(buf)
		if err != nil {
			errc <- err
			return
		}
		select {
		case in <- packet{from, append([]byte(nil), buf[:k]...)}:
		case <-n.done:
			return
		}
	}
}

// do runs fn on the node's goroutine and waits for it.
func (n *Node) do(ctx context.Context, fn func()) error { return n.reqs.Do(ctx, fn) }

// post hands fn to the node's goroutine without waiting.
func (n *Node) post(fn func()) { n.reqs.Post(fn) }

func (n *Node) now() time.Time          { return n.cfg.Clock.Now() }
func (n *Node) stamp() uint64           { return uint64(n.now().UnixNano()) }
func (n *Node) send(f []byte)           { _ = n.cfg.Transport.Send(n.relay, f) }
func (n *Node) fromRelay(p packet) bool { return p.from.Addr == n.relay.Addr }

// Enroll enrolls with the relay: the handshake, the puzzle solved off the
// node's goroutine, then the relay's terms.
func (n *Node) Enroll(ctx context.Context) error {
	done := make(chan error, 1)
	err := n.do(ctx, func() {
		init, err := handshake.NewInitiator(handshake.InitiatorConfig{
			Identity: n.cfg.Identity, Network: n.cfg.Network, ServerAddress: n.cfg.RelayAddress,
			Payload: mustPayload(n), Clock: n.cfg.Clock, Rand: n.cfg.Rand,
		})
		if err != nil {
			done <- err
			return
		}
		n.enrolling = &enrollment{init: init, deadline: n.now().Add(30 * time.Second), done: done}
		n.sendInit()
	})
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
}

func mustPayload(n *Node) []byte {
	p, _ := n.enrollmentPayload()
	return p
}

func (n *Node) sendInit() {
	if msg, err := n.enrolling.init.Init(nil); err == nil {
		n.send(proto.AppendHandshake(n.frame[:0], handshake.KindInit, [16]byte{}, n.stamp(), msg))
	}
}

// Link returns what the node measured of its link with the relay: RTT,
// jitter and heartbeat loss.
func (n *Node) Link(ctx context.Context) (proto.Telemetry, error) {
	var t proto.Telemetry
	err := n.do(ctx, func() { n.link.Telemetry(&t) })
	return t, err
}

// RelayKey is the relay's identity once enrolled.
func (n *Node) RelayKey(ctx context.Context) (identity.PublicKey, error) {
	var k identity.PublicKey
	err := n.do(ctx, func() {
		if n.sess != nil {
			k = n.sess.Peer()
		}
	})
	return k, err
}

// handle dispatches a frame from the relay.
func (n *Node) handle(p packet) {
	if !n.fromRelay(p) || len(p.data) < wire.HeaderLen {
		n.Stats.HopRejected.Add(1)
		return
	}
	h := wire.Header(p.data[:wire.HeaderLen])
	if h.Type() == wire.TypeData && h.Channel() == 0 {
		n.onHop(p.data)
		return
	}
	f, err := proto.ParseFrame(p.data)
	if err != nil {
		n.Stats.ControlRejected.Add(1)
		return
	}
	switch f.Type() {
	case wire.TypeChallenge:
		n.onChallenge(f)
	case wire.TypeAck:
		n.onAck(f)
	case wire.TypeRekey, wire.TypeClose:
		n.onSessionControl(f)
	case wire.TypeData, wire.TypeHeartbeat:
		n.onSealed(p.data)
	default:
		n.Stats.ControlRejected.Add(1)
	}
}

func (n *Node) onChallenge(f proto.Frame) {
	e := n.enrolling
	if e == nil || e.solving || e.response != nil {
		return
	}
	e.solving = true
	ch := append([]byte(nil), f.Payload...)
	go func() {
		msg, err := e.init.Respond(nil, ch)
		n.post(func() {
			e.solving = false
			if err != nil {
				n.finishEnroll(err)
				return
			}
			e.response = proto.AppendHandshake(nil, handshake.KindResponse, [16]byte{}, n.stamp(), msg)
			n.send(e.response)
		})
	}()
}

func (n *Node) onAck(f proto.Frame) {
	e := n.enrolling
	if e == nil || e.response == nil {
		return
	}
	sess, err := e.init.Finish(f.Payload)
	if err != nil {
		n.Stats.ControlRejected.Add(1)
		return
	}
	var en proto.Enrollment
	if err := en.UnmarshalBinary(sess.PeerPayload()); err != nil {
		n.finishEnroll(fmt.Errorf("endnode: relay's enrollment: %w", err))
		return
	}
	n.sess, n.ch, n.relayTerm = sess, proto.NewChannel(sess, n.cfg.MaxSkew), en.Terms
	if n.hop == nil {
		n.hop = newHopSender(sess.Current())
	} else {
		n.hop.rekey(sess.Current())
	}
	n.rx.reset(sess.Current())
	n.nextHB = n.now()
	n.cfg.Log.Info().Str("relay", sess.Peer().String()).Msg("enrolled")
	n.finishEnroll(nil)
}

func (n *Node) finishEnroll(err error) {
	if n.enrolling != nil {
		n.enrolling.done <- err
		n.enrolling = nil
	}
}

func (n *Node) onSessionControl(f proto.Frame) {
	if n.sess == nil || f.Session() != n.sess.ID() {
		n.Stats.ControlRejected.Add(1)
		return
	}
	reply, ev, err := n.sess.Handle(nil, f.Payload)
	if err != nil && !errors.Is(err, handshake.ErrCollision) {
		n.Stats.ControlRejected.Add(1)
		return
	}
	if len(reply) > 0 {
		n.send(proto.AppendHandshake(n.frame[:0], handshake.KindRekey, n.sess.ID(), n.stamp(), reply))
	}
	switch {
	case ev.Has(handshake.EventClosed):
		n.cfg.Log.Info().Msg("relay closed the session")
		n.ended()
	case ev.Has(handshake.EventRekeyAnswered):
		next, _ := n.sess.Next()
		n.rx.next(next)
	case ev.Has(handshake.EventRekeyed), ev.Has(handshake.EventConfirmed):
		n.hop.rekey(n.sess.Current())
		n.rx.reset(n.sess.Current())
	}
}

// onSealed handles the relay's control messages.
func (n *Node) onSealed(frame []byte) {
	if n.ch == nil {
		n.Stats.ControlRejected.Add(1)
		return
	}
	now := n.now()
	m, err := n.ch.Open(frame, now)
	if err != nil {
		n.Stats.ControlRejected.Add(1)
		return
	}
	n.Stats.ControlFramesIn.Add(1)
	n.Stats.ControlBytesIn.Add(uint64(len(frame)))
	// A message under the generation we agreed to in the relay's REKEY:
	// the relay has switched, so we do too.
	if next, ok := n.sess.Next(); ok && next.Generation == m.Generation && n.sess.Confirm() {
		n.hop.rekey(n.sess.Current())
		n.rx.reset(n.sess.Current())
	}
	switch m.Kind {
	case proto.KindTerms:
		var e proto.Enrollment
		if e.UnmarshalBinary(m.Body) == nil {
			n.relayTerm = e.Terms
		}
	case proto.KindRouteOK:
		var ok proto.RouteOK
		if ok.UnmarshalBinary(m.Body) == nil {
			if r := n.routeReqs[ok.Request]; r != nil {
				r.done <- routeResult{ok: ok}
				delete(n.routeReqs, ok.Request)
			}
		}
	case proto.KindRouteError:
		var e proto.RouteError
		if e.UnmarshalBinary(m.Body) == nil {
			if r := n.routeReqs[e.Request]; r != nil {
				r.done <- routeResult{err: fmt.Errorf("%w: code %d", ErrRefused, e.Code)}
				delete(n.routeReqs, e.Request)
			}
		}
	case proto.KindRouteClose:
		var e proto.RouteError
		if e.UnmarshalBinary(m.Body) == nil {
			delete(n.e2e, e.Session)
			delete(n.e2e, proto.ReverseSession(e.Session))
		}
	case proto.KindHeartbeat:
		hb, err := proto.ParseHeartbeat(m.Body, n.sess.ID(), n.sess.Peer())
		if err != nil || hb.Subject != n.cfg.Identity.PublicKey() || hb.Seq <= n.hbSeen ||
			now.Sub(hb.Time) > n.cfg.MaxSkew || hb.Time.Sub(now) > n.cfg.MaxSkew ||
			(hb.HasHead && hb.Head.Verify([32]byte(n.sess.Peer())) != nil) {
			n.Stats.HeartbeatsRejected.Add(1)
			return
		}
		n.hbSeen = hb.Seq
		n.link.Received(&hb, now)
		n.Stats.HeartbeatsAccepted.Add(1)
	default:
		n.Stats.ControlRejected.Add(1)
	}
}

// OpenRoute asks the relay for a route to the end node at peer, enrolled
// with the same relay, and returns its session id: frames to peer go out on
// it, frames from peer come back on proto.ReverseSession of it.
func (n *Node) OpenRoute(ctx context.Context, peer address.Address, lifetime time.Duration) ([16]byte, error) {
	return n.OpenPath(ctx, []address.Address{peer}, lifetime)
}

// OpenPath opens a route along path: the relays after ours, in order, then
// the end node (at most proto.MaxOnward+1 addresses). Each relay asks the
// next to carry the session before it installs its own leg, so a ROUTE_OK
// means the whole path is up.
func (n *Node) OpenPath(ctx context.Context, path []address.Address, lifetime time.Duration) ([16]byte, error) {
	var s [16]byte
	if len(path) == 0 || len(path) > proto.MaxOnward+1 {
		return s, fmt.Errorf("endnode: a path has 1 to %d hops", proto.MaxOnward+1)
	}
	if _, err := io.ReadFull(n.cfg.Rand, s[:]); err != nil {
		return s, err
	}
	s[0] &^= 0x80 // the opener's direction; the reverse has the bit set
	done := make(chan routeResult, 1)
	err := n.do(ctx, func() {
		if n.ch == nil {
			done <- routeResult{err: ErrNotReady}
			return
		}
		n.nextReq++
		m := proto.RouteOpen{Request: n.nextReq, Lifetime: uint32(lifetime / time.Second), Session: s,
			Next: path[0], Onward: path[1:]}
		body, _ := m.AppendBinary(nil)
		n.routeReqs[m.Request] = &routeReq{frameBody: body, deadline: n.now().Add(10 * time.Second), done: done}
		n.sendSealed(proto.KindRouteOpen, body)
	})
	if err != nil {
		return s, err
	}
	select {
	case r := <-done:
		return s, r.err
	case <-ctx.Done():
		return s, ctx.Err()
	case <-n.done:
		return s, ErrStopped
	}
}

func (n *Node) sendSealed(k proto.Kind, body []byte) {
	f := n.ch.Seal(n.frame[:0], k, body, n.now())
	n.ctlOut.Packets++
	n.ctlOut.Bytes += uint64(len(f))
	n.send(f)
}

// tick sends heartbeats and retransmits what is unanswered.
func (n *Node) tick() {
	now := n.now()
	if e := n.enrolling; e != nil {
		switch {
		case now.After(e.deadline):
			n.finishEnroll(ErrTimeout)
		case e.solving:
		case e.response != nil:
			n.send(e.response)
		default:
			n.sendInit()
		}
	}
	for id, r := range n.routeReqs {
		if now.After(r.deadline) {
			r.done <- routeResult{err: ErrTimeout}
			delete(n.routeReqs, id)
		} else {
			n.sendSealed(proto.KindRouteOpen, r.frameBody)
		}
	}
	for _, e := range n.e2e {
		if e.sess == nil && e.pending != nil {
			e.retransmit(n, now)
		}
	}
	if n.ch != nil && !now.Before(n.nextHB) {
		n.sendHeartbeat(now)
		n.nextHB = now.Add(n.cfg.HeartbeatInterval)
	}
}

// sendHeartbeat signs the node's view of the link, counted as outer POOL
// frames: frames it handed the relay (RelayedBy: it pays for them). Frames
// the relay delivered to it are not in RelayedFor: a node relays nothing for
// the relay, it is their destination and their sender pays (the relay's
// account of a node counts deliveries the same way, not at all).
func (n *Node) sendHeartbeat(now time.Time) {
	n.hbSent++
	ctr := account.Counters{
		Epoch:      uint64(n.sess.Established().UnixNano()),
		RelayedBy:  account.Traffic{Packets: n.Stats.DataSent.Load(), Bytes: n.Stats.BytesSent.Load()},
		ControlIn:  account.Traffic{Packets: n.Stats.ControlFramesIn.Load(), Bytes: n.Stats.ControlBytesIn.Load()},
		ControlOut: n.ctlOut,
	}
	hb := proto.Heartbeat{Time: now, Seq: n.hbSent, Subject: n.sess.Peer(), Counters: ctr,
		Tel: proto.Telemetry{MTU: 1500, Uptime: now.Sub(n.start)}}
	hb.EchoSeq, hb.EchoDelay = n.link.Echo(now)
	n.link.Telemetry(&hb.Tel)
	n.sendSealed(proto.KindHeartbeat, hb.AppendSigned(n.body[:0], n.sess.ID(), n.cfg.Identity))
	n.link.Sent(hb.Seq, now)
	n.Stats.HeartbeatsSent.Add(1)
}

// closeSession ends the relay session with an authenticated CLOSE.
func (n *Node) closeSession() {
	if n.sess == nil {
		return
	}
	if msg, err := n.sess.Close(nil, 1); err == nil {
		n.send(proto.AppendHandshake(n.frame[:0], handshake.KindClose, n.sess.ID(), n.stamp(), msg))
	}
	n.ended()
}

// ended forgets the relay session. The hop sender stays (a Sender may hold
// it) but refuses to send; n.hop itself is written only before the first
// Sender exists, so Senders read it without a lock.
func (n *Node) ended() {
	n.sess, n.ch = nil, nil
	n.hop.stop()
	n.rx = hopReceiver{}
	clear(n.e2e)
}
