package handshake

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"fmt"
	"io"

	"github.com/flynn/noise"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/internal/clock"
)

// InitiatorConfig configures one handshake attempt.
type InitiatorConfig struct {
	// Identity is this client's identity.
	Identity *identity.Identity
	// Network is the POOL network id.
	Network uint32
	// Server, if not zero, is the Ed25519 identity the server must prove.
	Server identity.PublicKey
	// ServerAddress, if not zero, is the server's POOL address: its node id
	// must match the identity the server proves. With neither set the
	// client trusts whichever identity answers (trust on first use) and the
	// caller should pin Session.Peer.
	ServerAddress address.Address
	// MaxDifficulty is the hardest puzzle the client will solve; 0 means
	// DefaultMaxDifficulty.
	MaxDifficulty uint8
	// Payload is sent encrypted in RESPONSE (thresholds, capabilities);
	// at most MaxPayload bytes.
	Payload []byte
	// Clock and Rand are injected as for the Responder.
	Clock clock.Clock
	Rand  io.Reader
}

type initiatorState uint8

const (
	stateInit     initiatorState = iota // INIT can be (re)sent
	stateResponse                       // RESPONSE sent, waiting for ACK
	stateDone
)

// Initiator is the client side of one handshake attempt: Init, then
// Respond to the CHALLENGE, then Finish with the ACK. A new attempt (after a
// timeout, or a rejected message) takes a new Initiator.
type Initiator struct {
	cfg      InitiatorConfig
	state    initiatorState
	ephKey   *ecdh.PrivateKey
	ephPub   [32]byte
	response []byte                // the RESPONSE sent, for retransmission and for Finish
	hs       *noise.HandshakeState // after message 1; nil once an ACK failed
	server   identity.Binding
	payload  []byte // Noise payload of message 1: binding signature + cfg.Payload
}

// NewInitiator starts a handshake attempt: it validates cfg and draws the
// ephemeral key that INIT announces and Noise uses.
func NewInitiator(cfg InitiatorConfig) (*Initiator, error) {
	var errs []error
	if cfg.Identity == nil {
		errs = append(errs, errors.New("identity is required"))
	}
	if cfg.Clock == nil || cfg.Rand == nil {
		errs = append(errs, errors.New("clock and rand are required"))
	}
	if len(cfg.Payload) > MaxPayload {
		errs = append(errs, fmt.Errorf("payload of %d bytes exceeds %d", len(cfg.Payload), MaxPayload))
	}
	if cfg.MaxDifficulty == 0 {
		cfg.MaxDifficulty = DefaultMaxDifficulty
	}
	if cfg.MaxDifficulty > MaxDifficulty {
		errs = append(errs, fmt.Errorf("max difficulty %d above %d", cfg.MaxDifficulty, MaxDifficulty))
	}
	if !cfg.ServerAddress.IsZero() {
		if err := cfg.ServerAddress.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("handshake: initiator config: %w", err)
	}
	c := &Initiator{cfg: cfg}
	var b [32]byte
	if _, err := io.ReadFull(cfg.Rand, b[:]); err != nil {
		return nil, fmt.Errorf("handshake: reading randomness: %w", err)
	}
	k, err := ecdh.X25519().NewPrivateKey(b[:])
	if err != nil {
		return nil, fmt.Errorf("handshake: ephemeral key: %w", err)
	}
	c.ephKey = k
	copy(c.ephPub[:], k.PublicKey().Bytes())
	sig := cfg.Identity.Binding().Sig
	c.payload = append(append(make([]byte, 0, len(sig)+len(cfg.Payload)), sig[:]...), cfg.Payload...)
	return c, nil
}

// Init appends the INIT to dst. It may be called again to retransmit until
// a CHALLENGE is accepted.
func (c *Initiator) Init(dst []byte) ([]byte, error) {
	if c.state != stateInit {
		return dst, ErrState
	}
	m := Init{Network: c.cfg.Network, Identity: c.cfg.Identity.PublicKey(), Ephemeral: c.ephPub}
	return m.AppendBinary(dst)
}

// Respond checks a CHALLENGE (that it answers this INIT, that the server's
// binding verifies and is the expected identity, that the puzzle is not too
// hard), solves the puzzle and appends the RESPONSE to dst. Solving costs
// about 2^d SHA-256 evaluations (d = the CHALLENGE's difficulty: nothing at
// 0, some 10 ms at 16, seconds at 24), so a caller with latency-sensitive
// work should not call it on that goroutine. Once it has succeeded, the same
// CHALLENGE again returns the same RESPONSE (a retransmission); any other
// gets ErrState.
func (c *Initiator) Respond(dst, challenge []byte) ([]byte, error) {
	m, err := ParseChallenge(challenge)
	if err != nil {
		return dst, err
	}
	if m.Network != c.cfg.Network {
		return dst, ErrWrongNetwork
	}
	if m.Ephemeral != c.ephPub {
		return dst, ErrMismatch
	}
	if c.state != stateInit {
		if c.state == stateResponse && m.Server == c.server && bytes.Equal(challenge[8:32], c.response[8:32]) {
			return append(dst, c.response...), nil
		}
		return dst, ErrState
	}
	if m.Server.Verify() != nil {
		return dst, ErrBadBinding
	}
	if !c.cfg.Server.IsZero() && m.Server.Identity != c.cfg.Server {
		return dst, ErrWrongPeer
	}
	if !c.cfg.ServerAddress.IsZero() && !c.cfg.ServerAddress.Matches(m.Server.Identity) {
		return dst, ErrWrongPeer
	}
	if m.Difficulty > c.cfg.MaxDifficulty {
		return dst, ErrDifficulty
	}
	p := newPuzzleInput(&m.Cookie, &c.ephPub)
	r := Response{
		Network:    c.cfg.Network,
		Difficulty: m.Difficulty,
		Bucket:     m.Bucket,
		Cookie:     m.Cookie,
		Solution:   p.solve(m.Difficulty),
		Identity:   c.cfg.Identity.PublicKey(),
	}
	c.server = m.Server
	hs, msg1, err := c.message1(r.appendFixed(nil))
	if err != nil {
		return dst, err
	}
	c.hs = hs
	r.Noise = msg1
	out, err := r.AppendBinary(nil)
	if err != nil {
		return dst, err
	}
	c.response, c.state = out, stateResponse
	return append(dst, out...), nil
}

// message1 builds the IK initiator state and writes message 1. It is
// deterministic given the ephemeral key, so Finish can rebuild the state
// after a failed ACK: a forged ACK can never leave the attempt broken.
func (c *Initiator) message1(fixed []byte) (*noise.HandshakeState, []byte, error) {
	priv, pub := c.cfg.Identity.StaticPrivate(), c.cfg.Identity.StaticPublic()
	hs, err := noise.NewHandshakeState(noise.Config{
		// The ephemeral announced in INIT is the one Noise must use: the
		// cookie and puzzle are bound to it. x25519.fixed hands it to Noise
		// instead of a fresh one; the check below guards the assumption
		// that Noise draws exactly one ephemeral in message 1.
		CipherSuite:   newSuite(&x25519{keys: []*ecdh.PrivateKey{c.cfg.Identity.StaticKey()}, fixed: c.ephKey}),
		Random:        failingReader{},
		Pattern:       noise.HandshakeIK,
		Initiator:     true,
		Prologue:      prologue(fixed, c.server.Identity),
		StaticKeypair: noise.DHKey{Private: priv[:], Public: pub[:]},
		PeerStatic:    c.server.Static[:],
	})
	if err != nil {
		return nil, nil, fmt.Errorf("handshake: %w", err)
	}
	msg1, _, _, err := hs.WriteMessage(nil, c.payload)
	if err != nil {
		return nil, nil, fmt.Errorf("handshake: %w", err)
	}
	if !bytes.Equal(hs.LocalEphemeral().Public, c.ephPub[:]) {
		return nil, nil, errors.New("handshake: noise did not use the announced ephemeral key")
	}
	return hs, msg1, nil
}

// Finish checks the ACK and returns the established session. The server's
// payload is in Session.PeerPayload.
func (c *Initiator) Finish(ack []byte) (*Session, error) {
	if c.state != stateResponse {
		return nil, ErrState
	}
	m, err := ParseAck(ack)
	if err != nil {
		return nil, err
	}
	if m.Network != c.cfg.Network {
		return nil, ErrWrongNetwork
	}
	hs := c.hs
	if hs == nil {
		// An earlier ACK failed and may have left the state half-updated
		// (flynn/noise does not roll back after a failed DH): start over.
		if hs, _, err = c.message1(c.response[:responseFixed]); err != nil {
			return nil, err
		}
	}
	c.hs = nil
	payload, cs1, cs2, err := hs.ReadMessage(nil, m.Noise)
	if err != nil || cs1 == nil {
		return nil, ErrAuth
	}
	c.state = stateDone
	return newSession(sessionParams{
		role: RoleInitiator, network: c.cfg.Network, local: c.cfg.Identity,
		peer: c.server.Identity, peerStatic: c.server.Static[:], peerPayload: payload,
		initiatorEph: c.ephPub, clock: c.cfg.Clock, rand: c.cfg.Rand,
	}, hs, cs1, cs2), nil
}

// failingReader makes any randomness Noise would draw besides the fixed
// ephemeral an error rather than a silent source of nondeterminism.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) {
	return 0, errors.New("handshake: unexpected randomness request in message 1")
}

// Server returns the server binding accepted from the CHALLENGE (zero before).
func (c *Initiator) Server() identity.Binding { return c.server }
