package control

import (
	"errors"
	"sync/atomic"

	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/pool/proto"
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
	HandshakesFinished
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
	// Reconciles counts peers whose signed counters supplied, after this
	// relay restarted, charges lost since its last checkpoint (adopted
	// within the ledger's reconcile_max_charge); ReconcilesRefused those
	// whose difference was beyond it (a MISMATCH, nothing adopted);
	// ReconciledPeer and ReconciledUs sum the charges adopted, in price
	// units: what peers owe us more, what we owe them more.
	Reconciles
	ReconcilesRefused
	ReconciledPeer
	ReconciledUs

	PeersEnrolled
	PeersRefused
	PeersFull
	PeersTimedOut
	PeersClosed
	// Reconnects counts reconnection attempts to kept peers (Keep).
	Reconnects
	Rekeys

	RoutesOpened
	RoutesRefused
	RoutesClosed
	RoutesExpired

	ChequesSent
	ChequesAccepted
	ChequesRejected
	ChequeAcks
	// ChequesDeferred counts cheques received and not taken because the
	// journal could not record them (the peer was told, CHEQUE_REFUSED);
	// ChequesRefusedByPeer the CHEQUE_REFUSED answers to ours.
	ChequesDeferred
	ChequesRefusedByPeer
	// RoutesDeferred counts route requests refused because the journal
	// could not record them (CodeJournal).
	RoutesDeferred

	numCounters
)

var counterNames = [numCounters]string{
	"rx_frames", "rx_malformed", "rx_unknown_session", "rx_unexpected", "rx_queue_full", "tx_errors",
	"challenges", "handshakes_accepted", "handshakes_finished", "handshake_bad_cookie", "handshake_cookie_expired",
	"handshake_puzzle", "handshake_replay", "handshake_not_enrolled", "handshake_auth", "handshake_other", "acks_resent",
	"control_auth", "control_replay", "control_stale", "control_truncated", "control_malformed",
	"control_generation", "control_other",
	"heartbeats_sent", "heartbeats_accepted", "heartbeat_signature", "heartbeat_malformed",
	"heartbeat_replay", "heartbeat_stale", "heartbeat_subject", "heartbeat_head", "heartbeat_mismatch",
	"reconciles", "reconciles_refused", "reconciled_units_peer", "reconciled_units_us",
	"peers_enrolled", "peers_refused", "peers_full", "peers_timed_out", "peers_closed", "reconnects", "rekeys",
	"routes_opened", "routes_refused", "routes_closed", "routes_expired",
	"cheques_sent", "cheques_accepted", "cheques_rejected", "cheque_acks",
	"cheques_deferred_journal", "cheques_refused_by_peer", "routes_deferred_journal",
}

// String is the counter's metric name.
func (c Counter) String() string {
	if c < 0 || c >= numCounters {
		return "unknown"
	}
	return counterNames[c]
}

// counterSet is written by the core goroutine (and the reader) and read by
// anyone: atomics, no lock.
type counterSet [numCounters]atomic.Uint64

func (s *counterSet) inc(c Counter) { s[c].Add(1) }

func (s *counterSet) sum(cs ...Counter) uint64 {
	var n uint64
	for _, c := range cs {
		n += s[c].Load()
	}
	return n
}

// Stats is the core's activity summed the way a dashboard shows it: what
// succeeded and what was refused, without the breakdown by reason that
// Counters gives. Every field is cumulative since New, a Prometheus counter.
type Stats struct {
	// HandshakesCompleted counts handshakes that authenticated both ends,
	// as responder (a peer enrolling with us) or initiator (Enroll).
	HandshakesCompleted uint64
	// HandshakesFailed counts handshake messages refused, in either role:
	// bad or expired cookie, wrong puzzle solution, replay, identity not
	// allowed, authentication failure, anything else malformed.
	HandshakesFailed uint64
	// EnrollmentsRefused counts peers refused after authenticating: their
	// terms refused by the ledger (at enrollment, or when they announced
	// new ones), or no free slot.
	EnrollmentsRefused uint64
	// HeartbeatsSent counts heartbeats signed and sent; HeartbeatsReceived
	// those received that passed every check; HeartbeatsRejected those
	// opened on a peer's channel but refused (signature, subject,
	// sequence, freshness, journal head, form). A heartbeat whose sealed
	// frame does not open is counted among the control_* counters, since
	// its kind is unknown until it opens.
	HeartbeatsSent, HeartbeatsReceived, HeartbeatsRejected uint64
	// HeartbeatMismatches counts accepted heartbeats whose signed counters
	// disagreed with ours beyond the ledger's tolerance band.
	HeartbeatMismatches uint64
	// ChequesSent counts cheques sent (a cheque is resent until acked, and
	// each sending counts); ChequesReceived those accepted (a duplicate is
	// acked again and counts again); ChequesRejected those refused;
	// ChequesAcked the acknowledgements our cheques got.
	ChequesSent, ChequesReceived, ChequesRejected, ChequesAcked uint64
}

// Stats returns the summary counters. It reads atomics only, so a scrape
// never waits for the core's goroutine.
func (c *Core) Stats() Stats {
	s := &c.stats
	return Stats{
		HandshakesCompleted: s.sum(HandshakesAccepted, HandshakesFinished),
		HandshakesFailed: s.sum(HandshakeBadCookie, HandshakeCookieExpired, HandshakePuzzle, HandshakeReplay,
			HandshakeNotEnrolled, HandshakeAuth, HandshakeOther),
		EnrollmentsRefused: s.sum(PeersRefused, PeersFull),
		HeartbeatsSent:     s.sum(HeartbeatsSent),
		HeartbeatsReceived: s.sum(HeartbeatsAccepted),
		HeartbeatsRejected: s.sum(HeartbeatSignature, HeartbeatMalformed, HeartbeatReplay, HeartbeatStale,
			HeartbeatSubject, HeartbeatHead),
		HeartbeatMismatches: s.sum(HeartbeatMismatch),
		ChequesSent:         s.sum(ChequesSent),
		ChequesReceived:     s.sum(ChequesAccepted),
		ChequesRejected:     s.sum(ChequesRejected),
		ChequesAcked:        s.sum(ChequeAcks),
	}
}

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
