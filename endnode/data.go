package endnode

import (
	"context"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/pool/proto"
	"github.com/poolrelay/poolrelay/pool/transport"
)

// hopSender authenticates outer frames for the hop to the relay. The data
// Sender and the node's goroutine (handshake frames, echoes) both send, so
// the key and its sequence sit behind a mutex: an end node is a traffic
// source, not the relay's packet path.
type hopSender struct {
	mu  sync.Mutex
	key *hopmac.Key
	seq *hopmac.Sequence
}

func newHopSender(k handshake.Keys) *hopSender {
	return &hopSender{key: hopmac.New(k.HopSend[:]), seq: new(hopmac.Sequence)}
}

func (h *hopSender) rekey(k handshake.Keys) {
	h.mu.Lock()
	h.key, h.seq = hopmac.New(k.HopSend[:]), new(hopmac.Sequence)
	h.mu.Unlock()
}

func (h *hopSender) stop() {
	h.mu.Lock()
	h.key = nil
	h.mu.Unlock()
}

// seal writes the outer header of frame (whose payload, the inner frame,
// is already in place) and its hop MAC.
func (h *hopSender) seal(frame []byte, route [16]byte, ts uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	seq, ok := h.seq.Next()
	if !ok || h.key == nil {
		return ErrNotReady
	}
	wire.Header(frame[:wire.HeaderLen]).Put(&wire.Fields{Type: wire.TypeData, Seq: seq, Session: wire.SessionID(route),
		Timestamp: ts}, uint16(len(frame)-wire.HeaderLen))
	h.key.Sign(frame)
	return nil
}

// hopReceiver verifies the relay's outer frames: the current key, and the
// next one while a rekey the relay started is unconfirmed.
type hopReceiver struct {
	cur, nxt   *hopmac.Key
	curW, nxtW hopmac.Window
}

func (r *hopReceiver) reset(k handshake.Keys) {
	r.cur, r.nxt = hopmac.New(k.HopRecv[:]), nil
	r.curW.Reset()
}

func (r *hopReceiver) next(k handshake.Keys) {
	r.nxt = hopmac.New(k.HopRecv[:])
	r.nxtW.Reset()
}

// e2eSession is an end-to-end session with another end node over a route.
type e2eSession struct {
	// route is the id this end sends on.
	route [16]byte
	sess  *handshake.Session
	// pending is our handshake attempt while we open the session.
	pending  *handshake.Initiator
	response []byte
	lastSent time.Time
	done     chan error
	// ack is the ACK we sent, as responder, for a retransmitted RESPONSE;
	// accepted marks a session the peer opened (the only kind Echo answers,
	// so that the node's goroutine never shares a session with a Sender).
	ack      []byte
	accepted bool

	send, recv cipher.AEAD
	sendSeq    uint64
	window     hopmac.Window
	scratch    []byte
	// The sending and the receiving goroutine each have their nonce.
	sendNonce, recvNonce [chacha20poly1305.NonceSize]byte
}

func (e *e2eSession) established(s *handshake.Session) {
	k := s.Current()
	e.sess, e.pending = s, nil
	e.send, _ = chacha20poly1305.New(k.DataSend[:])
	e.recv, _ = chacha20poly1305.New(k.DataRecv[:])
	e.scratch = make([]byte, 0, 65536)
}

func (e *e2eSession) retransmit(n *Node, now time.Time) {
	if now.Sub(e.lastSent) < time.Second {
		return
	}
	if e.response != nil {
		n.sendInner(e.route, e.response)
	} else if msg, err := e.pending.Init(nil); err == nil {
		n.sendInner(e.route, innerHandshake(nil, handshake.KindInit, n.stamp(), msg))
	}
	e.lastSent = now
}

// innerHandshake appends an inner frame carrying an end-to-end handshake
// message: a POOL frame of the message's type on channel 0.
func innerHandshake(dst []byte, k handshake.Kind, ts uint64, msg []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, wire.HeaderLen)...)
	wire.Header(dst[start:]).Put(&wire.Fields{Type: wire.Type(k), Timestamp: ts}, uint16(len(msg)))
	return append(dst, msg...)
}

// sendInner wraps inner in an outer frame for route and sends it.
func (n *Node) sendInner(route [16]byte, inner []byte) {
	if n.hop == nil {
		return
	}
	f := append(n.frame[:0], make([]byte, wire.HeaderLen)...)
	f = append(f, inner...)
	if n.hop.seal(f, route, n.stamp()) == nil {
		_ = n.cfg.Transport.Send(n.relay, f)
	}
}

// Connect runs the end-to-end handshake with the end node at peer over the
// route opened to it, and returns a Sender for the session.
func (n *Node) Connect(ctx context.Context, route [16]byte, peer address.Address) (*Sender, error) {
	done := make(chan error, 1)
	var e *e2eSession
	err := n.do(ctx, func() {
		if n.hop == nil {
			done <- ErrNotReady
			return
		}
		init, err := handshake.NewInitiator(handshake.InitiatorConfig{
			Identity: n.cfg.Identity, Network: n.cfg.Network, ServerAddress: peer,
			Payload: mustPayload(n), Clock: n.cfg.Clock, Rand: n.cfg.Rand,
		})
		if err != nil {
			done <- err
			return
		}
		e = &e2eSession{route: route, pending: init, done: done}
		n.e2e[proto.ReverseSession(route)] = e
		e.retransmit(n, n.now())
	})
	if err != nil {
		return nil, err
	}
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
		return &Sender{n: n, e: e, buf: make([]byte, 0, 65536)}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.done:
		return nil, ErrStopped
	}
}

// onHop handles an outer DATA frame from the relay: hop MAC and replay
// window first, then the inner frame.
func (n *Node) onHop(frame []byte) {
	r := &n.rx
	switch {
	case r.cur != nil && r.cur.Accept(frame, &r.curW):
	case r.nxt != nil && n.sess != nil && r.nxt.Accept(frame, &r.nxtW):
		// The relay switched to the keys we agreed to: confirm them.
		if n.sess.Confirm() {
			n.hop.rekey(n.sess.Current())
			r.cur, r.curW, r.nxt = r.nxt, r.nxtW, nil
		}
	default:
		n.Stats.HopRejected.Add(1)
		return
	}
	h := wire.Header(frame[:wire.HeaderLen])
	n.onInner([16]byte(h.Session()), frame[wire.HeaderLen:], len(frame))
}

// onInner handles an inner frame that arrived on routeID in an authentic
// outer frame of outerLen bytes.
func (n *Node) onInner(routeID [16]byte, inner []byte, outerLen int) {
	if len(inner) < wire.HeaderLen {
		n.Stats.InnerRejected.Add(1)
		return
	}
	ih := wire.Header(inner[:wire.HeaderLen])
	if ih.Check(len(inner)-wire.HeaderLen) != wire.DropNone {
		n.Stats.InnerRejected.Add(1)
		return
	}
	msg := inner[wire.HeaderLen:]
	e := n.e2e[routeID]
	switch ih.Type() {
	case wire.TypeData:
		if e == nil || e.sess == nil {
			n.Stats.InnerRejected.Add(1)
			return
		}
		payload, ok := e.open(inner)
		if !ok {
			n.Stats.InnerRejected.Add(1)
			return
		}
		n.Stats.DataReceived.Add(1)
		n.Stats.BytesReceived.Add(uint64(outerLen))
		if n.cfg.OnData != nil {
			n.cfg.OnData(routeID, payload)
		}
		if n.cfg.Echo && e.accepted {
			n.sendData(e, payload)
		}
	case wire.TypeInit:
		from := pseudoAddr(routeID)
		ch, err := n.e2eResp.Challenge(nil, msg, from)
		if err == nil {
			n.sendInner(proto.ReverseSession(routeID), innerHandshake(nil, handshake.KindChallenge, n.stamp(), ch))
		}
	case wire.TypeResponse:
		ack, sess, err := n.e2eResp.Accept(nil, msg, pseudoAddr(routeID))
		if errors.Is(err, handshake.ErrReplay) && e != nil && e.ack != nil {
			n.sendInner(e.route, e.ack)
			return
		}
		if err != nil {
			n.Stats.InnerRejected.Add(1)
			return
		}
		e = &e2eSession{route: proto.ReverseSession(routeID), accepted: true}
		e.established(sess)
		e.ack = innerHandshake(nil, handshake.KindAck, n.stamp(), ack)
		n.e2e[routeID] = e
		n.sendInner(e.route, e.ack)
	case wire.TypeChallenge:
		if e == nil || e.pending == nil || e.response != nil {
			return
		}
		// The puzzle is solved inline: an end node's Responder asks for one
		// only under an INIT flood, and this goroutine has nothing more
		// urgent to do than finish the session it is opening.
		resp, err := e.pending.Respond(nil, msg)
		if err != nil {
			n.Stats.InnerRejected.Add(1)
			return
		}
		e.response = innerHandshake(nil, handshake.KindResponse, n.stamp(), resp)
		n.sendInner(e.route, e.response)
	case wire.TypeAck:
		if e == nil || e.pending == nil || e.response == nil {
			return
		}
		sess, err := e.pending.Finish(msg)
		if err != nil {
			n.Stats.InnerRejected.Add(1)
			return
		}
		e.established(sess)
		e.done <- nil
	default:
		n.Stats.InnerRejected.Add(1)
	}
}

// pseudoAddr stands in for the client's transport address in the
// end-to-end cookie: the route the INIT came on.
func pseudoAddr(route [16]byte) netip.AddrPort { return netip.AddrPortFrom(netip.AddrFrom16(route), 0) }

// open authenticates and decrypts an inner DATA frame in place.
func (e *e2eSession) open(inner []byte) ([]byte, bool) {
	h := wire.Header(inner[:wire.HeaderLen])
	if [16]byte(h.Session()) != e.sess.ID() || !h.Flags().Has(wire.FlagEncrypted) {
		return nil, false
	}
	seq := h.Seq()
	if !e.window.Check(seq) {
		return nil, false
	}
	ad := append(e.scratch[:0], inner[:wire.HeaderLen]...)
	mac := h.MACBytes()
	clear(wire.Header(ad).MACBytes())
	ct := append(ad[len(ad):], inner[wire.HeaderLen:]...)
	ct = append(ct, mac[:chacha20poly1305.Overhead]...)
	binary.BigEndian.PutUint64(e.recvNonce[4:], seq)
	pt, err := e.recv.Open(ct[:0], e.recvNonce[:], ct, ad)
	if err != nil {
		return nil, false
	}
	e.window.Accept(seq)
	return pt, true
}

// seal appends an inner DATA frame carrying payload to dst.
func (e *e2eSession) seal(dst, payload []byte, ts uint64) []byte {
	e.sendSeq++
	start := len(dst)
	dst = append(dst, make([]byte, wire.HeaderLen)...)
	h := wire.Header(dst[start:])
	h.Put(&wire.Fields{Type: wire.TypeData, Flags: wire.FlagEncrypted, Seq: e.sendSeq, Session: wire.SessionID(e.sess.ID()),
		Timestamp: ts}, uint16(len(payload)))
	binary.BigEndian.PutUint64(e.sendNonce[4:], e.sendSeq)
	dst = e.send.Seal(dst, e.sendNonce[:], payload, dst[start:start+wire.HeaderLen])
	tag := dst[len(dst)-chacha20poly1305.Overhead:]
	copy(wire.Header(dst[start:]).MACBytes(), tag)
	return dst[:len(dst)-chacha20poly1305.Overhead]
}

// sendData sends payload on e from the node's goroutine (echo).
func (n *Node) sendData(e *e2eSession, payload []byte) {
	f := append(n.frame[:0], make([]byte, wire.HeaderLen)...)
	f = e.seal(f, payload, n.stamp())
	if n.hop != nil && n.hop.seal(f, e.route, n.stamp()) == nil && n.cfg.Transport.Send(n.relay, f) == nil {
		n.Stats.DataSent.Add(1)
		n.Stats.BytesSent.Add(uint64(len(f)))
	}
}

// Sender sends end-to-end DATA frames on one session. It belongs to one
// goroutine; it does not allocate per frame.
type Sender struct {
	n   *Node
	e   *e2eSession
	buf []byte
}

// MaxPayload is the largest payload Send accepts: two POOL headers within
// a UDP datagram of a 9000-byte jumbo frame.
const MaxPayload = 9000 - 20 - 8 - 2*wire.HeaderLen

// ErrTooLarge: a payload above MaxPayload.
var ErrTooLarge = errors.New("endnode: payload too large")

// Send seals payload end to end, wraps it for the hop and sends it.
func (s *Sender) Send(payload []byte) error {
	if len(payload) > MaxPayload {
		return ErrTooLarge
	}
	ts := uint64(s.n.cfg.Clock.Now().UnixNano())
	f := append(s.buf[:0], make([]byte, wire.HeaderLen)...)
	f = s.e.seal(f, payload, ts)
	s.buf = f[:0]
	if err := s.n.hop.seal(f, s.e.route, ts); err != nil {
		return err
	}
	if err := s.n.cfg.Transport.Send(transport.Endpoint{Addr: s.n.cfg.Relay}, f); err != nil {
		return err
	}
	s.n.Stats.DataSent.Add(1)
	s.n.Stats.BytesSent.Add(uint64(len(f)))
	return nil
}

// Route is the session id the Sender sends on.
func (s *Sender) Route() [16]byte { return s.e.route }
