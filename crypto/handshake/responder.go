package handshake

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/flynn/noise"
	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/internal/clock"
)

// DefaultCookieBucket is the default cookie time bucket: a cookie lives one
// to two buckets, time enough to solve the hardest default puzzle on a slow
// client, short enough that a captured one is soon worthless.
const DefaultCookieBucket = time.Minute

// ResponderConfig configures a Responder. Every field is required unless
// marked optional.
type ResponderConfig struct {
	// Identity is this server's identity.
	Identity *identity.Identity
	// Network is the POOL network id; messages of other networks are refused.
	Network uint32
	// Policy decides who may enroll (OpenPolicy, ListPolicy).
	Policy Policy
	// Puzzle sets the puzzle difficulty (DefaultPuzzleConfig).
	Puzzle PuzzleConfig
	// CookieBucket is the cookie time bucket; optional, DefaultCookieBucket.
	CookieBucket time.Duration
	// Payload is sent, encrypted, in every ACK (thresholds, capabilities);
	// optional, at most MaxPayload bytes.
	Payload []byte
	// Clock and Rand are injected: time.Now and crypto/rand.Reader in
	// production, fakes in tests.
	Clock clock.Clock
	Rand  io.Reader
	// Log receives rare events (difficulty changes); never per message.
	Log zerolog.Logger
}

// Responder is the server side of the handshake. It keeps no state per
// client until a RESPONSE authenticates; its own state is the cookie
// secrets, the INIT rate estimate and a filter of recently accepted
// RESPONSEs. It is owned by one goroutine.
type Responder struct {
	id       *identity.Identity
	network  uint32
	policy   Policy
	clock    clock.Clock
	rand     io.Reader
	log      zerolog.Logger
	payload  []byte
	binding  identity.Binding
	static   noise.DHKey
	staticDH *ecdh.PrivateKey
	puzzle   PuzzleConfig
	cookies  *cookieJar
	rate     rateEstimator
	level    uint8 // the difficulty being issued
	accepted replayFilter
	peers    peerCache
}

// NewResponder validates cfg and precomputes what every CHALLENGE carries.
func NewResponder(cfg ResponderConfig) (*Responder, error) {
	var errs []error
	if cfg.Identity == nil {
		errs = append(errs, errors.New("identity is required"))
	}
	if cfg.Policy == nil {
		errs = append(errs, errors.New("policy is required (OpenPolicy or ListPolicy)"))
	}
	if cfg.Clock == nil || cfg.Rand == nil {
		errs = append(errs, errors.New("clock and rand are required"))
	}
	if len(cfg.Payload) > MaxPayload {
		errs = append(errs, fmt.Errorf("payload of %d bytes exceeds %d", len(cfg.Payload), MaxPayload))
	}
	if cfg.CookieBucket == 0 {
		cfg.CookieBucket = DefaultCookieBucket
	}
	if cfg.CookieBucket < time.Second {
		errs = append(errs, fmt.Errorf("cookie bucket %v is shorter than a second", cfg.CookieBucket))
	}
	if err := cfg.Puzzle.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("handshake: responder config: %w", err)
	}
	now := cfg.Clock.Now()
	jar, err := newCookieJar(cfg.Rand, cfg.CookieBucket, now)
	if err != nil {
		return nil, err
	}
	priv, pub := cfg.Identity.StaticPrivate(), cfg.Identity.StaticPublic()
	r := &Responder{
		id: cfg.Identity, network: cfg.Network, policy: cfg.Policy,
		clock: cfg.Clock, rand: cfg.Rand, log: cfg.Log,
		payload:  append([]byte(nil), cfg.Payload...),
		binding:  cfg.Identity.Binding(),
		static:   noise.DHKey{Private: priv[:], Public: pub[:]},
		staticDH: cfg.Identity.StaticKey(),
		puzzle:   cfg.Puzzle,
		cookies:  jar,
		rate:     rateEstimator{slotStart: now},
		level:    cfg.Puzzle.Base,
	}
	r.accepted.reset(jar.bucket)
	r.peers.entries = map[identity.PublicKey]*peerEntry{}
	return r, nil
}

// SetPuzzle changes the puzzle configuration at run time.
func (r *Responder) SetPuzzle(c PuzzleConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	r.puzzle = c
	r.setLevel(c.difficultyFor(r.rate.rate))
	return nil
}

// Difficulty returns the difficulty CHALLENGEs are issued with now.
func (r *Responder) Difficulty() uint8 { return r.level }

// InitRate returns the estimated INIT rate, per second.
func (r *Responder) InitRate() float64 { return r.rate.rate }

func (r *Responder) setLevel(d uint8) {
	if d == r.level {
		return
	}
	r.log.Info().Uint8("from", r.level).Uint8("to", d).Float64("init_per_s", r.rate.rate).
		Msg("puzzle difficulty changed")
	r.level = d
}

// Challenge answers an INIT received from from (the client's transport
// address: IP and UDP port, or IP and port 0 for IP protocol 253) with a
// CHALLENGE appended to dst. It keeps nothing about the client, does no
// public-key operation and, given a dst with room for ChallengeSize bytes,
// allocates nothing: it is the path an INIT flood hits.
func (r *Responder) Challenge(dst, init []byte, from netip.AddrPort) ([]byte, error) {
	m, err := ParseInit(init)
	if err != nil {
		return dst, err
	}
	if m.Network != r.network {
		return dst, ErrWrongNetwork
	}
	// Unauthenticated, so only a filter: an unlisted key gets no cookie; a
	// listed one is checked again once the RESPONSE proves it.
	if !r.policy(m.Identity) {
		return dst, ErrNotEnrolled
	}
	// Only INITs that earn a cookie count towards the flood rate: INITs the
	// policy refuses can never lead to X25519 work, so they should not make
	// enrolled peers solve harder puzzles.
	now := r.clock.Now()
	if r.rate.observe(now, &r.puzzle) {
		r.setLevel(r.puzzle.difficultyFor(r.rate.rate))
	}
	if err := r.advance(now); err != nil {
		return dst, err
	}
	c := Challenge{
		Network:    r.network,
		Difficulty: r.level,
		Bucket:     r.cookies.bucket,
		Ephemeral:  m.Ephemeral,
		Server:     r.binding,
	}
	r.cookies.mac(&c.Cookie, r.cookies.cur, from, c.Bucket, c.Difficulty, r.network, &m.Identity, &m.Ephemeral)
	return c.AppendBinary(dst)
}

func (r *Responder) advance(now time.Time) error {
	if err := r.cookies.advance(now); err != nil {
		return err
	}
	r.accepted.advance(r.cookies.bucket)
	return nil
}

// Accept completes a handshake: it checks a RESPONSE from from in order of
// cost (network, cookie age and MAC, puzzle, replay, policy: all cheap),
// and only then does the Noise work (X25519) and verifies the client's
// binding signature. On success it returns the ACK appended to dst and the
// new session.
func (r *Responder) Accept(dst, response []byte, from netip.AddrPort) ([]byte, *Session, error) {
	m, err := ParseResponse(response)
	if err != nil {
		return dst, nil, err
	}
	if m.Network != r.network {
		return dst, nil, ErrWrongNetwork
	}
	if err := r.advance(r.clock.Now()); err != nil {
		return dst, nil, err
	}
	eph := m.Ephemeral()
	if err := r.cookies.check(&m.Cookie, from, m.Bucket, m.Difficulty, r.network, &m.Identity, &eph); err != nil {
		return dst, nil, err
	}
	p := newPuzzleInput(&m.Cookie, &eph)
	if !p.ok(m.Solution, m.Difficulty) {
		return dst, nil, ErrPuzzle
	}
	if r.accepted.seen(eph) {
		return dst, nil, ErrReplay
	}
	if !r.policy(m.Identity) {
		return dst, nil, ErrNotEnrolled
	}

	dh := &x25519{keys: []*ecdh.PrivateKey{r.staticDH}, known: r.peers.staticDH(m.Identity)}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   newSuite(dh),
		Random:        r.rand,
		Pattern:       noise.HandshakeIK,
		Initiator:     false,
		Prologue:      prologue(response[:responseFixed], r.id.PublicKey()),
		StaticKeypair: r.static,
	})
	if err != nil {
		return dst, nil, fmt.Errorf("handshake: %w", err)
	}
	payload, _, _, err := hs.ReadMessage(nil, m.Noise)
	if err != nil {
		return dst, nil, ErrAuth
	}
	var static [32]byte
	copy(static[:], hs.PeerStatic())
	// The Noise message proved the client holds static; the binding
	// signature proves static belongs to the identity it claims. A binding
	// verified before is not verified again: its signature cannot stop
	// being valid.
	sig := payload[:identity.SignatureSize]
	if !r.peers.verified(m.Identity, static, sig) {
		if identity.VerifySignature(m.Identity, static, sig) != nil {
			return dst, nil, ErrBadBinding
		}
	}
	msg2, cs1, cs2, err := hs.WriteMessage(nil, r.payload)
	if err != nil {
		return dst, nil, fmt.Errorf("handshake: %w", err)
	}
	ack := Ack{Network: r.network, Noise: msg2}
	if dst, err = ack.AppendBinary(dst); err != nil {
		return dst, nil, err
	}
	r.accepted.add(eph)
	r.peers.remember(m.Identity, static, sig, dh)
	s := newSession(sessionParams{
		role: RoleResponder, network: r.network, local: r.id, peer: m.Identity,
		peerStatic: static[:], peerPayload: payload[identity.SignatureSize:], initiatorEph: eph,
		clock: r.clock, rand: r.rand,
	}, hs, cs1, cs2)
	return dst, s, nil
}

// prologue binds the handshake to everything the two ends said in the
// clear: the RESPONSE's fixed part (network, difficulty, bucket, cookie,
// solution, client identity) and the server's identity. A change to any of
// them makes Noise fail.
func prologue(responseFixedPart []byte, server identity.PublicKey) []byte {
	p := make([]byte, 0, len(prologueTag)+responseFixed+32)
	p = append(p, prologueTag...)
	p = append(p, responseFixedPart...)
	return append(p, server[:]...)
}

// replayFilter remembers the client ephemerals of accepted RESPONSEs for as
// long as their cookies could verify (the current and previous bucket), so
// a RESPONSE replayed within its cookie's lifetime cannot make the server
// redo the handshake and replace a live session. Older replays fail the
// cookie check. Two maps swapped per bucket keep it bounded without
// per-entry timestamps.
type replayFilter struct {
	bucket    uint64
	cur, prev map[[32]byte]struct{}
}

func (f *replayFilter) reset(bucket uint64) {
	f.bucket = bucket
	f.cur, f.prev = map[[32]byte]struct{}{}, map[[32]byte]struct{}{}
}

func (f *replayFilter) advance(bucket uint64) {
	switch {
	case bucket == f.bucket:
	case bucket == f.bucket+1:
		f.prev, f.cur = f.cur, f.prev
		clear(f.cur)
		f.bucket = bucket
	default:
		clear(f.cur)
		clear(f.prev)
		f.bucket = bucket
	}
}

func (f *replayFilter) seen(e [32]byte) bool {
	_, a := f.cur[e]
	_, b := f.prev[e]
	return a || b
}

func (f *replayFilter) add(e [32]byte) { f.cur[e] = struct{}{} }

// maxKnownPeers bounds the peer cache: 65,536 entries of about 200 bytes,
// 13 MB at most. When full it is emptied and refills with the peers that
// come back, which is cheaper than tracking recency on this path.
const maxKnownPeers = 1 << 16

// peerCache remembers, for identities that completed a handshake, the
// static key and binding signature that were verified and the static-static
// Diffie-Hellman, so that a returning peer's handshake skips an Ed25519
// verification and one of the five X25519 multiplications (WireGuard keeps
// the static-static secret per peer for the same reason). Entries are only
// made by authenticated handshakes, and each value is a pure function of
// its key (a valid signature stays valid; DH(s, X) depends only on X), so
// a stale or attacker-chosen lookup can make a handshake slower, never
// accept what it would otherwise refuse.
type peerCache struct {
	entries map[identity.PublicKey]*peerEntry
}

type peerEntry struct {
	static [32]byte
	sig    [identity.SignatureSize]byte
	dh     *knownDH
}

// verified reports whether id's binding of static by sig was verified.
func (c *peerCache) verified(id identity.PublicKey, static [32]byte, sig []byte) bool {
	e := c.entries[id]
	return e != nil && e.static == static && bytes.Equal(e.sig[:], sig)
}

// staticDH returns the cached static-static DH for id's last static key.
func (c *peerCache) staticDH(id identity.PublicKey) *knownDH {
	if e := c.entries[id]; e != nil {
		return e.dh
	}
	return nil
}

// remember records a completed handshake's verified binding and, from the
// DHs it computed with the static key, the one with the peer's static key.
func (c *peerCache) remember(id identity.PublicKey, static [32]byte, sig []byte, d *x25519) {
	if len(c.entries) >= maxKnownPeers {
		clear(c.entries)
	}
	e := &peerEntry{static: static}
	copy(e.sig[:], sig)
	if d.known != nil && d.known.peer == static {
		e.dh = d.known
	}
	for i := range d.computed {
		if d.computed[i].peer == static {
			e.dh = &d.computed[i]
		}
	}
	c.entries[id] = e
}
