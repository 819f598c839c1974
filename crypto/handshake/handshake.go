// Package handshake is POOL's stateless authenticated handshake, INIT ->
// CHALLENGE -> RESPONSE -> ACK, built on Noise IK, and the sessions it
// produces: key schedule, rekey (Noise KK inside the session) and
// authenticated CLOSE.
//
// The design, the message layouts and the key schedule are documented in the
// crypto package (crypto/doc.go); this package implements them as
// message-in/message-out state machines that never touch a socket, so the
// same code runs over UDP sockets on an end node and over the data plane's
// punt and inject rings on a relay.
//
//   - Initiator is the client side of one handshake attempt.
//   - Responder answers INITs without keeping state (Challenge: no allocation,
//     no public-key operation) and completes handshakes (Accept).
//   - Session is an established session: the keys for the data plane, REKEY
//     and CLOSE.
//
// None of the types is safe for concurrent use: each is owned by the
// goroutine that drives it (on a relay, the control core). Every rejection
// is a sentinel error that callers count with errors.Is.
package handshake

import (
	"errors"
	"time"

	"github.com/poolrelay/poolrelay/crypto/identity"
)

// Version is the handshake protocol version carried in every message.
const Version = 1

// Kind is a handshake message kind. Each equals the POOL frame type that
// carries the message, so a message handed to the wrong decoder is rejected.
type Kind uint8

// Message kinds.
const (
	KindInit      Kind = 0
	KindChallenge Kind = 1
	KindResponse  Kind = 2
	KindAck       Kind = 4
	KindRekey     Kind = 6
	KindClose     Kind = 7
)

const (
	// MaxPayload bounds the application payload carried encrypted in
	// RESPONSE and ACK (thresholds, prices, capabilities).
	MaxPayload = 512
	// MaxDifficulty is the hardest puzzle a Responder may ask for: 2^32
	// SHA-256 evaluations, minutes of client CPU. It bounds the client's
	// search loop whatever a server says.
	MaxDifficulty = 32
	// DefaultMaxDifficulty is the hardest puzzle an Initiator accepts unless
	// configured otherwise: about 2^26 hashes, seconds on a server core.
	DefaultMaxDifficulty = 26

	// RekeyAfterFrames and RekeyAfterTime trigger a rekey: well inside
	// AES-GCM's per-key limits (see crypto/hopmac) and a bound on how much
	// traffic one key protects.
	RekeyAfterFrames = 1 << 28
	RekeyAfterTime   = time.Hour
	// RekeyGrace is how long the previous generation's receive keys stay
	// valid after a rekey, for frames in flight and for the peer to confirm.
	// Heartbeats (every few seconds) confirm long before it ends.
	RekeyGrace = 2 * time.Minute
	// responderRekeySlack delays the responder's time-based rekey so that the
	// initiator normally starts it and the two rarely collide.
	responderRekeySlack = 30 * time.Second
)

// Errors. Each rejection has its own sentinel so it can be counted.
var (
	// ErrTruncated: a message is shorter or longer than its encoding allows.
	ErrTruncated = errors.New("handshake: message has the wrong length")
	// ErrMalformed: a field holds a value the encoding does not allow
	// (wrong kind, non-zero reserved bytes or padding, oversized payload).
	ErrMalformed = errors.New("handshake: malformed message")
	// ErrVersion: an unknown protocol version.
	ErrVersion = errors.New("handshake: unknown protocol version")
	// ErrWrongNetwork: a message of another POOL network.
	ErrWrongNetwork = errors.New("handshake: wrong network id")
	// ErrNotEnrolled: the policy refuses the client's identity.
	ErrNotEnrolled = errors.New("handshake: identity not allowed to enroll")
	// ErrBadCookie: the cookie was not issued by this server for this client
	// address, INIT and difficulty (forged, or replayed from elsewhere).
	ErrBadCookie = errors.New("handshake: bad cookie")
	// ErrCookieExpired: the cookie is genuine in form but older than the
	// previous time bucket (stale).
	ErrCookieExpired = errors.New("handshake: cookie expired")
	// ErrPuzzle: the puzzle solution is wrong.
	ErrPuzzle = errors.New("handshake: wrong puzzle solution")
	// ErrReplay: a RESPONSE or control message seen before.
	ErrReplay = errors.New("handshake: replayed message")
	// ErrBadBinding: a binding certificate's signature does not verify.
	ErrBadBinding = errors.New("handshake: bad identity binding")
	// ErrWrongPeer: the peer proved an identity, but not the expected one.
	ErrWrongPeer = errors.New("handshake: peer is not the expected identity")
	// ErrAuth: Noise or control-message authentication failed (forged, or
	// keys that do not match).
	ErrAuth = errors.New("handshake: authentication failed")
	// ErrMismatch: a CHALLENGE that answers another INIT.
	ErrMismatch = errors.New("handshake: message belongs to another handshake")
	// ErrDifficulty: the server asks for a harder puzzle than allowed.
	ErrDifficulty = errors.New("handshake: puzzle too hard")
	// ErrState: a message or call that the current state does not expect.
	ErrState = errors.New("handshake: unexpected message for the state")
	// ErrGeneration: a control message for an unknown or expired key
	// generation.
	ErrGeneration = errors.New("handshake: unknown key generation")
	// ErrCollision: both ends started a rekey; this end's request wins and
	// the peer's is ignored.
	ErrCollision = errors.New("handshake: rekey collision, peer's request ignored")
	// ErrClosed: the session is closed.
	ErrClosed = errors.New("handshake: session closed")
)

// Policy decides whether an identity may enroll. The Responder asks it for
// every INIT (before issuing a cookie, so it must be cheap: a map lookup) and
// again after authenticating the RESPONSE, where the answer is final.
type Policy func(identity.PublicKey) bool

// OpenPolicy lets every identity enroll.
func OpenPolicy(identity.PublicKey) bool { return true }

// ListPolicy lets only the listed identities enroll. It copies keys.
func ListPolicy(keys ...identity.PublicKey) Policy {
	set := make(map[identity.PublicKey]struct{}, len(keys))
	for _, k := range keys {
		set[k] = struct{}{}
	}
	return func(k identity.PublicKey) bool {
		_, ok := set[k]
		return ok
	}
}

// Tags that separate the hashes and MACs of this package from each other
// and from every other use of the same primitives.
const (
	prologueTag  = "poolrelay/v1 handshake"
	rekeyTag     = "poolrelay/v1 rekey"
	sessionIDTag = "poolrelay/v1 session-id"
	puzzleTag    = "poolrelay/v1 puzzle"
	infoHop      = "poolrelay/v1 hop-mac"
	infoData     = "poolrelay/v1 data"
	infoControl  = "poolrelay/v1 control"
)
