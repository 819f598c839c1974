package handshake

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/internal/clock"
)

// Role is a session end's part in the handshake that created it.
type Role uint8

// Roles.
const (
	RoleInitiator Role = 1 // the client: sent INIT
	RoleResponder Role = 2 // the server: answered it
)

// String returns "initiator" or "responder".
func (r Role) String() string {
	if r == RoleInitiator {
		return "initiator"
	}
	return "responder"
}

// SessionIDSize is the size of a session id: the POOL header's session id
// field.
const SessionIDSize = 16

// Keys are one key generation's traffic keys, each 32 bytes, per direction.
// Send keys protect what this end sends; Recv keys what it receives. Each
// generation's hop keys start afresh: a new hopmac.Sequence for HopSend (its
// seq may restart at 0, the key being new) and a new hopmac.Window for
// HopRecv.
type Keys struct {
	// Generation counts rekeys: 0 after the handshake.
	Generation uint32
	// HopSend and HopRecv are crypto/hopmac keys for the hop between the two
	// ends of this session.
	HopSend, HopRecv [32]byte
	// DataSend and DataRecv are ChaCha20-Poly1305 keys for end-to-end
	// payloads, when the two ends are end nodes.
	DataSend, DataRecv [32]byte
}

// Event reports what a control message did; several can happen at once.
type Event uint8

// Events.
const (
	// EventConfirmed: the peer sent under the next generation, which is now
	// current: switch send keys to Current().
	EventConfirmed Event = 1 << iota
	// EventRekeyAnswered: this end answered a REKEY; send the reply and
	// accept frames under Next() as well as Current().
	EventRekeyAnswered
	// EventRekeyed: this end's REKEY completed; Current() is the new
	// generation, Previous() the old one until RekeyGrace passes.
	EventRekeyed
	// EventClosed: the peer closed the session (CloseReason says why).
	EventClosed
)

// Has reports whether e includes f.
func (e Event) Has(f Event) bool { return e&f != 0 }

// generation is one set of session keys and the control channel state that
// goes with them.
type generation struct {
	keys             Keys
	ctlSend, ctlRecv cipher.AEAD
	sendSeq          uint64
	recvWin          hopmac.Window
	hash             [32]byte // Noise handshake hash of the handshake that made it
	started          time.Time
}

// expand derives a 32-byte key from a Noise split key. The split key is a
// uniformly random PRK, which is what HKDF-Expand asks for.
func expand(prk [32]byte, info string) (k [32]byte) {
	out, err := hkdf.Expand(sha256.New, prk[:], info, len(k))
	if err != nil {
		panic("handshake: hkdf: " + err.Error()) // unreachable: 32 <= 255*32
	}
	copy(k[:], out)
	return k
}

// newGeneration derives a generation's keys from the two Noise split keys,
// one per direction, so that no key ever protects both directions.
func newGeneration(gen uint32, send, recv [32]byte, h []byte, now time.Time) *generation {
	g := &generation{started: now}
	g.keys = Keys{
		Generation: gen,
		HopSend:    expand(send, infoHop),
		HopRecv:    expand(recv, infoHop),
		DataSend:   expand(send, infoData),
		DataRecv:   expand(recv, infoData),
	}
	cs, cr := expand(send, infoControl), expand(recv, infoControl)
	var err error
	if g.ctlSend, err = chacha20poly1305.New(cs[:]); err != nil {
		panic("handshake: " + err.Error()) // unreachable: the size is right
	}
	if g.ctlRecv, err = chacha20poly1305.New(cr[:]); err != nil {
		panic("handshake: " + err.Error())
	}
	copy(g.hash[:], h)
	return g
}

// Session is an established session. It is owned by one goroutine.
type Session struct {
	role         Role
	id           [SessionIDSize]byte
	network      uint32
	local        *identity.Identity
	peer         identity.PublicKey
	peerStatic   [32]byte
	peerPayload  []byte
	initiatorEph [32]byte
	clock        clock.Clock
	rand         io.Reader
	established  time.Time

	cur       *generation // sends with this
	prev      *generation // still receives until prevUntil
	prevUntil time.Time
	next      *generation // answered a REKEY: receives, sends once confirmed
	nextSeq   uint64      // control seq of the request that made next

	pending    *noise.HandshakeState // this end's REKEY in flight
	pendingGen uint32

	closed      bool
	closeReason uint8
}

type sessionParams struct {
	role         Role
	network      uint32
	local        *identity.Identity
	peer         identity.PublicKey
	peerStatic   []byte
	peerPayload  []byte
	initiatorEph [32]byte
	clock        clock.Clock
	rand         io.Reader
}

// newSession builds a session from a completed IK handshake. cs1 protects
// initiator-to-responder traffic, cs2 the other direction (Noise's Split).
func newSession(p sessionParams, hs *noise.HandshakeState, cs1, cs2 *noise.CipherState) *Session {
	now := p.clock.Now()
	s := &Session{
		role: p.role, network: p.network, local: p.local, peer: p.peer,
		peerPayload: p.peerPayload, initiatorEph: p.initiatorEph,
		clock: p.clock, rand: p.rand, established: now,
	}
	copy(s.peerStatic[:], p.peerStatic)
	h := hs.ChannelBinding()
	sum := sha256.Sum256(append([]byte(sessionIDTag), h...))
	copy(s.id[:], sum[:SessionIDSize])
	send, recv := cs1.UnsafeKey(), cs2.UnsafeKey()
	if p.role == RoleResponder {
		send, recv = recv, send
	}
	s.cur = newGeneration(0, send, recv, h, now)
	return s
}

// ID returns the session id, derived from the handshake hash: both ends
// compute the same id and nobody else can choose it.
func (s *Session) ID() [SessionIDSize]byte { return s.id }

// Role returns this end's role in the handshake.
func (s *Session) Role() Role { return s.role }

// Network returns the network id the session was made in.
func (s *Session) Network() uint32 { return s.network }

// Peer returns the peer's authenticated Ed25519 identity.
func (s *Session) Peer() identity.PublicKey { return s.peer }

// PeerStatic returns the peer's X25519 static key, as bound to Peer.
func (s *Session) PeerStatic() [32]byte { return s.peerStatic }

// PeerPayload returns the application payload the peer sent in the
// handshake (RESPONSE or ACK), authenticated and decrypted.
func (s *Session) PeerPayload() []byte { return s.peerPayload }

// InitiatorEphemeral returns the client's ephemeral key of the handshake: a
// responder that sees the same RESPONSE again (ErrReplay) can find the
// session by it and resend its ACK.
func (s *Session) InitiatorEphemeral() [32]byte { return s.initiatorEph }

// Established returns when the handshake completed.
func (s *Session) Established() time.Time { return s.established }

// ChannelBinding returns the Noise handshake hash of the current generation:
// a value unique to this session and generation that both ends know.
func (s *Session) ChannelBinding() [32]byte { return s.cur.hash }

// Current returns the generation to send with (and receive).
func (s *Session) Current() Keys { return s.cur.keys }

// Previous returns the generation before the last rekey while its grace
// period lasts: receive with it, never send.
func (s *Session) Previous() (Keys, bool) {
	s.expire()
	if s.prev == nil {
		return Keys{}, false
	}
	return s.prev.keys, true
}

// Next returns the generation this end agreed to in answer to the peer's
// REKEY, until the peer confirms it: receive with it, do not send yet.
func (s *Session) Next() (Keys, bool) {
	if s.next == nil {
		return Keys{}, false
	}
	return s.next.keys, true
}

// Closed reports whether the session is closed, and the peer's reason if
// the peer closed it.
func (s *Session) Closed() (closed bool, reason uint8) { return s.closed, s.closeReason }

// RekeyDue reports whether it is time to start a rekey: sent frames under
// the current generation (summed over its hop Sequence and data counters)
// reached RekeyAfterFrames, or RekeyAfterTime passed since it started. The
// responder waits a little longer on time, so that the initiator usually
// starts the rekey and the two rarely collide.
func (s *Session) RekeyDue(sent uint64) bool {
	if s.closed || s.pending != nil || s.next != nil {
		return false
	}
	if sent >= RekeyAfterFrames {
		return true
	}
	after := RekeyAfterTime
	if s.role == RoleResponder {
		after += responderRekeySlack
	}
	return s.clock.Now().Sub(s.cur.started) >= after
}

// RekeyPending reports whether this end's REKEY request awaits its reply.
// Retransmission is the caller's: after a timeout, call Rekey again.
func (s *Session) RekeyPending() bool { return s.pending != nil }

// Confirm promotes the next generation to current, when the data plane has
// verified a frame from the peer under Next().HopRecv: the peer has the new
// keys, so this end may send with them. It reports whether there was a next
// generation.
func (s *Session) Confirm() bool {
	if s.next == nil {
		return false
	}
	s.retire(s.next)
	s.next = nil
	return true
}

// retire makes g current and keeps the old current as previous.
func (s *Session) retire(g *generation) {
	s.prev, s.prevUntil = s.cur, s.clock.Now().Add(RekeyGrace)
	s.cur = g
}

func (s *Session) expire() {
	if s.prev != nil && !s.clock.Now().Before(s.prevUntil) {
		s.prev = nil
	}
}

// Rekey starts a rekey: it returns the REKEY request to send. Calling it
// again before the reply arrives abandons the earlier request (a retry after
// loss); only the reply to the latest request is accepted.
func (s *Session) Rekey(dst []byte) ([]byte, error) {
	if s.closed {
		return dst, ErrClosed
	}
	if s.next != nil {
		return dst, ErrState // answering the peer's rekey; wait for it to confirm
	}
	target := s.cur.keys.Generation + 1
	hs, err := s.rekeyState(true, target)
	if err != nil {
		return dst, err
	}
	msg, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return dst, fmt.Errorf("handshake: rekey: %w", err)
	}
	s.pending, s.pendingGen = hs, target
	return s.seal(dst, KindRekey, s.cur, appendRekeyBody(nil, rekeyRequest, target, msg))
}

// rekeyState is a Noise KK handshake between the two static keys, bound by
// its prologue to this session, the generation it replaces and the one it
// creates.
func (s *Session) rekeyState(initiator bool, target uint32) (*noise.HandshakeState, error) {
	prologue := make([]byte, 0, len(rekeyTag)+SessionIDSize+32+4)
	prologue = append(prologue, rekeyTag...)
	prologue = append(prologue, s.id[:]...)
	prologue = append(prologue, s.cur.hash[:]...)
	prologue = binary.BigEndian.AppendUint32(prologue, target)
	priv, pub := s.local.StaticPrivate(), s.local.StaticPublic()
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   newSuite(&x25519{keys: []*ecdh.PrivateKey{s.local.StaticKey()}}),
		Random:        s.rand,
		Pattern:       noise.HandshakeKK,
		Initiator:     initiator,
		Prologue:      prologue,
		StaticKeypair: noise.DHKey{Private: priv[:], Public: pub[:]},
		PeerStatic:    s.peerStatic[:],
	})
	if err != nil {
		return nil, fmt.Errorf("handshake: rekey: %w", err)
	}
	return hs, nil
}

// Close returns an authenticated CLOSE with reason, and closes the session.
func (s *Session) Close(dst []byte, reason uint8) ([]byte, error) {
	if s.closed {
		return dst, ErrClosed
	}
	out, err := s.seal(dst, KindClose, s.cur, []byte{reason})
	if err != nil {
		return dst, err
	}
	s.closed = true
	return out, nil
}

// Handle processes a REKEY or CLOSE from the peer. It returns what to send
// back (appended to dst; nothing for most messages) and what happened.
func (s *Session) Handle(dst, msg []byte) ([]byte, Event, error) {
	if s.closed {
		return dst, 0, ErrClosed
	}
	c, err := ParseControl(msg)
	if err != nil {
		return dst, 0, err
	}
	g, err := s.generationFor(c.Generation)
	if err != nil {
		return dst, 0, err
	}
	body, err := s.open(g, msg, &c)
	if err != nil {
		return dst, 0, err
	}
	var ev Event
	if g == s.next {
		// The peer sends under the generation it asked for: it has the keys.
		s.Confirm()
		ev |= EventConfirmed
	}
	switch c.Kind {
	case KindClose:
		s.closed, s.closeReason = true, body[0]
		return dst, ev | EventClosed, nil
	default: // KindRekey; ParseControl admits nothing else
		rb, err := parseRekeyBody(body)
		if err != nil {
			return dst, ev, err
		}
		if rb.op == rekeyRequest {
			return s.answerRekey(dst, g, c.Seq, rb, ev)
		}
		ev2, err := s.finishRekey(g, rb)
		return dst, ev | ev2, err
	}
}

func (s *Session) generationFor(gen uint32) (*generation, error) {
	s.expire()
	switch {
	case gen == s.cur.keys.Generation:
		return s.cur, nil
	case s.next != nil && gen == s.next.keys.Generation:
		return s.next, nil
	case s.prev != nil && gen == s.prev.keys.Generation:
		return s.prev, nil
	}
	return nil, ErrGeneration
}

func (s *Session) answerRekey(dst []byte, g *generation, seq uint64, rb rekeyBody, ev Event) ([]byte, Event, error) {
	if g != s.cur || rb.target != s.cur.keys.Generation+1 {
		return dst, ev, ErrGeneration
	}
	if s.pending != nil {
		if s.role == RoleInitiator {
			// Both ends asked at once: the handshake initiator's request
			// wins; the peer, as responder, abandons its own and answers ours.
			return dst, ev, ErrCollision
		}
		s.pending = nil
	}
	if s.next != nil && seq <= s.nextSeq {
		return dst, ev, ErrReplay // an older request than the one answered
	}
	hs, err := s.rekeyState(false, rb.target)
	if err != nil {
		return dst, ev, err
	}
	if _, _, _, err := hs.ReadMessage(nil, rb.noise); err != nil {
		return dst, ev, ErrAuth
	}
	msg, cs1, cs2, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return dst, ev, fmt.Errorf("handshake: rekey: %w", err)
	}
	next := newGeneration(rb.target, cs2.UnsafeKey(), cs1.UnsafeKey(), hs.ChannelBinding(), s.clock.Now())
	out, err := s.seal(dst, KindRekey, s.cur, appendRekeyBody(nil, rekeyReply, rb.target, msg))
	if err != nil {
		return dst, ev, err
	}
	s.next, s.nextSeq = next, seq
	return out, ev | EventRekeyAnswered, nil
}

func (s *Session) finishRekey(g *generation, rb rekeyBody) (Event, error) {
	if s.pending == nil || rb.target != s.pendingGen {
		return 0, ErrState
	}
	if g != s.cur {
		return 0, ErrGeneration
	}
	_, cs1, cs2, err := s.pending.ReadMessage(nil, rb.noise)
	if err != nil || cs1 == nil {
		// Keep the request pending: the reply to it may still come.
		return 0, ErrAuth
	}
	s.retire(newGeneration(rb.target, cs1.UnsafeKey(), cs2.UnsafeKey(), s.pending.ChannelBinding(), s.clock.Now()))
	s.pending = nil
	return EventRekeyed, nil
}

// maxControlSeq stops a generation's control channel long before its
// 64-bit nonce could wrap; a rekey comes first by many orders of magnitude.
const maxControlSeq = 1 << 62

func controlAD(ad *[controlHeader + SessionIDSize]byte, hdr []byte, id *[SessionIDSize]byte) []byte {
	copy(ad[:], hdr[:controlHeader])
	copy(ad[controlHeader:], id[:])
	return ad[:]
}

func controlNonce(seq uint64) []byte {
	n := make([]byte, chacha20poly1305.NonceSize)
	binary.BigEndian.PutUint64(n[4:], seq)
	return n
}

func (s *Session) seal(dst []byte, k Kind, g *generation, body []byte) ([]byte, error) {
	if g.sendSeq >= maxControlSeq {
		return dst, ErrGeneration
	}
	seq := g.sendSeq
	g.sendSeq++
	start := len(dst)
	dst = append(dst, Version, byte(k), 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, g.keys.Generation)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	var ad [controlHeader + SessionIDSize]byte
	return g.ctlSend.Seal(dst, controlNonce(seq), body, controlAD(&ad, dst[start:], &s.id)), nil
}

// open authenticates and decrypts a control message. The window is checked
// before the AEAD (replays cost nothing) and updated after it (forgeries
// cannot move it).
func (s *Session) open(g *generation, msg []byte, c *Control) ([]byte, error) {
	if !g.recvWin.Check(c.Seq) {
		return nil, ErrReplay
	}
	var ad [controlHeader + SessionIDSize]byte
	body, err := g.ctlRecv.Open(nil, controlNonce(c.Seq), c.Sealed, controlAD(&ad, msg, &s.id))
	if err != nil {
		return nil, ErrAuth
	}
	g.recvWin.Accept(c.Seq)
	return body, nil
}
