package control

import (
	"errors"
	"sync/atomic"

	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/ctl/proto"
)

// Counter names one of the core's event counters.
type Counter int

// Counters. Every rejection has its own so that an operator can tell a flood
// from a forger from a broken peer.
const (
	RxFrames Counter = iota
	RxMalformed
	RxUnknownSession
	RxUnexpected
	RxQueueFull
	TxErrors

	Challenges
	HandshakesAccepted
	HandshakeBadCookie
	HandshakeCookieExpired
	HandshakePuzzle
	HandshakeReplay
	HandshakeNotEnrolled
	HandshakeAuth
	HandshakeOther
	AcksResent

	ControlAuth
	ControlReplay
	ControlStale
	ControlTruncated
	ControlMalformed
	ControlGeneration
	ControlOther

	HeartbeatsSent
	HeartbeatsAccepted
	HeartbeatSignature
	HeartbeatMalformed
	HeartbeatReplay
	HeartbeatStale
	HeartbeatSubject
	HeartbeatHead
	HeartbeatMismatch

	PeersEnrolled
	PeersRefused
	PeersFull
	PeersTimedOut
	PeersClosed
	Rekeys

	RoutesOpened
	RoutesRefused
	RoutesClosed
	RoutesExpired

	ChequesSent
	ChequesAccepted
	ChequesRejected
	ChequeAcks

	numCounters
)

var counterNames = [numCounters]string{
	"rx_frames", "rx_malformed", "rx_unknown_session", "rx_unexpected", "rx_queue_full", "tx_errors",
	"challenges", "handshakes_accepted", "handshake_bad_cookie", "handshake_cookie_expired",
	"handshake_puzzle", "handshake_replay", "handshake_not_enrolled", "handshake_auth", "handshake_other", "acks_resent",
	"control_auth", "control_replay", "control_stale", "control_truncated", "control_malformed",
	"control_generation", "control_other",
	"heartbeats_sent", "heartbeats_accepted", "heartbeat_signature", "heartbeat_malformed",
	"heartbeat_replay", "heartbeat_stale", "heartbeat_subject", "heartbeat_head", "heartbeat_mismatch",
	"peers_enrolled", "peers_refused", "peers_full", "peers_timed_out", "peers_closed", "rekeys",
	"routes_opened", "routes_refused", "routes_closed", "routes_expired",
	"cheques_sent", "cheques_accepted", "cheques_rejected", "cheque_acks",
}

// String is the counter's metric name.
func (c Counter) String() string {
	if c < 0 || c >= numCounters {
		return "unknown"
	}
	return counterNames[c]
}

// stats are written by the core goroutine (and the reader) and read by
// anyone: atomics, no lock.
type stats [numCounters]atomic.Uint64

func (s *stats) inc(c Counter) { s[c].Add(1) }

// handshakeCounter maps a handshake rejection to its counter.
func handshakeCounter(err error) Counter {
	switch {
	case errors.Is(err, handshake.ErrBadCookie):
		return HandshakeBadCookie
	case errors.Is(err, handshake.ErrCookieExpired):
		return HandshakeCookieExpired
	case errors.Is(err, handshake.ErrPuzzle):
		return HandshakePuzzle
	case errors.Is(err, handshake.ErrReplay):
		return HandshakeReplay
	case errors.Is(err, handshake.ErrNotEnrolled):
		return HandshakeNotEnrolled
	case errors.Is(err, handshake.ErrAuth), errors.Is(err, handshake.ErrBadBinding):
		return HandshakeAuth
	}
	return HandshakeOther
}

// controlCounter maps a sealed-message rejection to its counter.
func controlCounter(err error) Counter {
	switch {
	case errors.Is(err, proto.ErrAuth):
		return ControlAuth
	case errors.Is(err, proto.ErrReplay):
		return ControlReplay
	case errors.Is(err, proto.ErrStale):
		return ControlStale
	case errors.Is(err, proto.ErrTruncated):
		return ControlTruncated
	case errors.Is(err, proto.ErrMalformed), errors.Is(err, proto.ErrVersion):
		return ControlMalformed
	case errors.Is(err, proto.ErrGeneration):
		return ControlGeneration
	}
	return ControlOther
}
