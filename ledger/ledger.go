package ledger

import (
	"crypto"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/confcheck"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/cheque"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/journal"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/ledger/policy"
	"github.com/poolrelay/poolrelay/ledger/score"
	"github.com/poolrelay/poolrelay/ledger/store"
)

// Sentinel errors.
var (
	// ErrUnknownPeer: no account for this peer (it never connected).
	ErrUnknownPeer = errors.New("ledger: unknown peer")
	// ErrNotConnected: the peer has an account but no connection.
	ErrNotConnected = errors.New("ledger: peer not connected")
	// ErrDuplicate: a retransmission of the last cheque accepted from the
	// peer (our acknowledgement was lost). Nothing is credited; answer with
	// Receipt.Cumulative as for an accepted cheque.
	ErrDuplicate = errors.New("ledger: cheque already accepted")
)

// Options configure Open.
type Options struct {
	Config Config
	// DataDir holds the journal and the store unless Config names them.
	DataDir string
	// Network is the POOL network id ([node] network_id).
	Network uint32
	// Signer is the relay's Ed25519 identity key: it signs cheques and the
	// journal head. An ed25519.PrivateKey or any crypto.Signer over one.
	Signer crypto.Signer
	// Clock is the time source. Required.
	Clock clock.Clock
	// Log is the ledger's logger; logging.Nop() when there is none.
	Log zerolog.Logger
	// Rand jitters cheque retries; nil seeds one from crypto/rand. Tests
	// pass a seeded one.
	Rand *rand.Rand
	// MemoryJournal keeps the journal in memory (journal.OpenMemory)
	// instead of its file: nothing journalled survives the process. Only
	// for simulations of many ledgers in one process (package sim); the
	// store stays on disk.
	MemoryJournal bool
}

// Recovery reports what Open found and repaired.
type Recovery struct {
	Journal journal.Recovery
	// Peers is the number of accounts loaded from the store.
	Peers int
	// ReplayedIssued and ReplayedReceived count journal cheques that were
	// newer than the store and were applied again.
	ReplayedIssued, ReplayedReceived int
}

// Ledger is the relay's ledger. Its methods are safe for concurrent use; none
// is meant for the packet path.
type Ledger struct {
	// Immutable after Open.
	cfg     Config
	self    peer.ID
	network uint32
	signer  crypto.Signer
	clock   clock.Clock
	log     zerolog.Logger
	pol     policy.Config
	sc      score.Config
	limits  account.Limits
	band    score.Band
	j       *journal.Journal
	st      *store.Store

	// version counts changes of the state the data plane snapshot carries.
	version atomic.Uint64

	// tickMu serialises Tick (and with it cheque issuance); ckMu serialises
	// checkpoints so an older copy never overwrites a newer one.
	tickMu sync.Mutex
	ckMu   sync.Mutex

	// rngMu guards rng: Due runs under the read lock of mu.
	rngMu sync.Mutex
	rng   *rand.Rand

	mu             sync.RWMutex
	peers          map[peer.ID]*entry
	own            score.Own
	lastClassTick  int64
	lastCheckpoint int64

	// reconMu guards recon; it is taken under an entry's lock, and nothing
	// is locked under it.
	reconMu sync.Mutex
	recon   Reconciliation
}

// entry is one peer's state and the bookkeeping around it.
type entry struct {
	mu    sync.Mutex
	p     store.Peer
	dirty bool
	// Outbox: the last issued cheque is pending until acknowledged; it is
	// (re)sent at sendAt, attempt counting the sends so far.
	pending bool
	sendAt  int64
	attempt int
	// mismatch is true while the peer's claims disagree with our counters,
	// so a MISMATCH entry is written on the transition only.
	mismatch bool
	witness  score.Witness
	// reconcileLeft is the number of the peer's signed claims still to
	// reconcile after Open: charges counted since the last checkpoint before
	// a restart are lost, and the claims are what reconciliation compares
	// with. reconciled is what those claims adopted so far per direction
	// (peer, us), all within one bound.
	reconcileLeft int
	reconciled    [2]uint64
	// paidLost is true when Open replayed a cheque we issued after the last
	// checkpoint: it paid for charges that the checkpoint does not hold, so
	// until reconciliation restores them the balance overstates what the
	// peer owes us, and forgiving that phantom debt would lose it for good.
	paidLost bool
}

// Open opens the store and the journal, verifies the journal, replays its
// cheques into the store and returns the ledger.
func Open(o Options) (*Ledger, Recovery, error) {
	var rec Recovery
	if o.Clock == nil || o.Signer == nil {
		return nil, rec, errors.New("ledger: Options.Clock and Options.Signer are required")
	}
	errs := confcheck.New("ledger")
	o.Config.Validate(errs)
	if err := errs.Err(); err != nil {
		return nil, rec, fmt.Errorf("ledger: %w", err)
	}
	pub, ok := o.Signer.Public().(ed25519.PublicKey)
	if !ok {
		return nil, rec, errors.New("ledger: signer is not an Ed25519 key")
	}
	self, err := peer.FromPublicKey(pub)
	if err != nil {
		return nil, rec, fmt.Errorf("ledger: %w", err)
	}
	if o.Network == 0 {
		return nil, rec, errors.New("ledger: network id 0 is reserved")
	}
	rng := o.Rand
	if rng == nil {
		var seed [16]byte
		if _, err := crand.Read(seed[:]); err != nil {
			return nil, rec, fmt.Errorf("ledger: %w", err)
		}
		rng = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	l := &Ledger{cfg: o.Config, self: self, network: o.Network, signer: o.Signer, clock: o.Clock, log: o.Log,
		pol: o.Config.policy(), sc: o.Config.score(), limits: o.Config.limits(), band: o.Config.band(),
		peers: make(map[peer.ID]*entry), rng: rng}

	if o.DataDir != "" {
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, rec, fmt.Errorf("ledger: %w", err)
		}
	}
	l.st, err = store.Open(o.Config.StorePath(o.DataDir), self, o.Network)
	if err != nil {
		return nil, rec, fmt.Errorf("ledger: %w", err)
	}
	loaded, err := l.st.Load()
	if err != nil {
		l.st.Close()
		return nil, rec, fmt.Errorf("ledger: %w", err)
	}
	for _, p := range loaded {
		l.peers[p.Account.Peer] = &entry{p: p}
	}
	rec.Peers = len(loaded)

	jo := journal.Options{Clock: o.Clock, Log: o.Log, Visit: func(r *journal.Record) error { return l.replay(r, &rec) }}
	if o.MemoryJournal {
		l.j, rec.Journal, err = journal.OpenMemory(jo)
	} else {
		l.j, rec.Journal, err = journal.Open(o.Config.JournalPath(o.DataDir), jo)
	}
	if err != nil {
		l.st.Close()
		return nil, rec, fmt.Errorf("ledger: %w", err)
	}
	now := l.clock.Now()
	for _, e := range l.peers {
		if e.p.LastOut != nil && e.p.LastOut.Cumulative > e.p.OutAcked {
			e.pending, e.sendAt = true, now.UnixNano()
		}
		// Charges counted after the last checkpoint died with the
		// previous process (kill -9): the peer's first signed claim tells.
		e.reconcileLeft = reconcileClaims
		// Every connection ended with the process; the peer reconnects.
		if e.p.Account.Connected {
			e.p.Account.Abandon()
			e.dirty = true
		}
	}
	l.lastClassTick, l.lastCheckpoint = now.UnixNano(), now.UnixNano()
	if err := l.Checkpoint(); err != nil {
		l.j.Close()
		l.st.Close()
		return nil, rec, err
	}
	l.log.Info().Bool("journal_torn_tail", rec.Journal.Torn != nil).Int("peers", rec.Peers).Uint64("journal_records", rec.Journal.Records).
		Int("replayed_issued", rec.ReplayedIssued).Int("replayed_received", rec.ReplayedReceived).Msg("ledger: open")
	return l, rec, nil
}

// replay applies a journalled cheque that the store does not reflect yet.
func (l *Ledger) replay(r *journal.Record, rec *Recovery) error {
	if r.Type != event.ChequeIssued && r.Type != event.ChequeReceived {
		return nil
	}
	b, err := r.Event()
	if err != nil {
		return fmt.Errorf("ledger: journal record %d: %w", r.Index, err)
	}
	s := b.(*event.ChequeEntry).Signed
	if s.Network != l.network {
		return fmt.Errorf("ledger: journal record %d is a cheque of network %d, not %d", r.Index, s.Network, l.network)
	}
	if r.Type == event.ChequeIssued {
		if s.Issuer != l.self {
			return fmt.Errorf("ledger: journal record %d: cheque issued by %s: the journal belongs to another identity", r.Index, s.Issuer)
		}
		e := l.entryFor(s.Beneficiary, time.Unix(0, r.Time))
		if e.p.Account.Pay(&s.Cheque) > 0 {
			e.p.LastOut, e.dirty = &s, true
			e.paidLost = true
			rec.ReplayedIssued++
		}
		return nil
	}
	if s.Beneficiary != l.self {
		return fmt.Errorf("ledger: journal record %d: cheque payable to %s: the journal belongs to another identity", r.Index, s.Beneficiary)
	}
	e := l.entryFor(s.Issuer, time.Unix(0, r.Time))
	if _, _, err := e.p.Account.Receive(&s.Cheque); err == nil {
		e.p.LastIn, e.dirty = &s, true
		rec.ReplayedReceived++
	}
	return nil
}

// entryFor returns the peer's entry, creating a fresh account (a newcomer)
// if there is none. The caller holds l.mu for writing or is Open.
func (l *Ledger) entryFor(p peer.ID, now time.Time) *entry {
	e := l.peers[p]
	if e == nil {
		e = &entry{dirty: true, p: store.Peer{Account: account.Account{Peer: p},
			Score: l.sc.NewTracker(now), FirstSeen: now.UnixNano()}}
		l.peers[p] = e
	}
	return e
}

// entries returns the current entries, so that callers can visit them
// without holding l.mu while they take each entry's lock (which a cheque
// holds across an fsync).
func (l *Ledger) entries() []*entry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]*entry, 0, len(l.peers))
	for _, e := range l.peers {
		out = append(out, e)
	}
	return out
}

func (l *Ledger) lookup(p peer.ID) (*entry, error) {
	l.mu.RLock()
	e := l.peers[p]
	l.mu.RUnlock()
	if e == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownPeer, p.Short())
	}
	return e, nil
}

// Self is the relay's identity.
func (l *Ledger) Self() peer.ID { return l.self }

// Journal gives other subsystems the journal, for their own entries (ENROLL
// details, ROUTE_OPEN, CONFIG, REKEY ...).
func (l *Ledger) Journal() *journal.Journal { return l.j }

// Version changes whenever a peer's choke state or class changes: the
// control core rebuilds the data plane snapshot when it sees a new value.
func (l *Ledger) Version() uint64 { return l.version.Load() }

// termsFor is what we announce to a peer: our prices and its current limits.
func (l *Ledger) termsFor(e *entry) account.Terms {
	lim := l.pol.Limits(e.p.Account.ReceivedTotal)
	return account.Terms{Prices: l.cfg.prices(), Payment: lim.Payment, Disconnect: lim.Disconnect,
		ForgivePerSecond: l.cfg.ForgivePerSecond}
}

// Terms returns what we announce to peer p in the enrollment handshake. A
// newcomer gets the small limits of its initial credit line; they grow as it
// settles, and re-announcing them is up to the handshake owner.
func (l *Ledger) Terms(p peer.ID) account.Terms {
	l.mu.RLock()
	e := l.peers[p]
	l.mu.RUnlock()
	if e == nil {
		lim := l.pol.Limits(0)
		return account.Terms{Prices: l.cfg.prices(), Payment: lim.Payment, Disconnect: lim.Disconnect,
			ForgivePerSecond: l.cfg.ForgivePerSecond}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return l.termsFor(e)
}

// Connect records that peer p connected from addr and announced theirs.
// Terms we cannot accept (threshold too small, disconnect not beyond
// payment, prices too high) are refused with the account package's
// sentinel. It returns the terms we announce. An existing account, debt
// included, is kept: reconnecting does not erase a debt.
func (l *Ledger) Connect(p peer.ID, addr string, theirs account.Terms) (account.Terms, error) {
	if err := theirs.Check(l.limits); err != nil {
		return account.Terms{}, fmt.Errorf("ledger: peer %s: %w", p.Short(), err)
	}
	now := l.clock.Now()
	l.mu.Lock()
	e := l.entryFor(p, now)
	l.mu.Unlock()
	e.mu.Lock()
	ours := l.termsFor(e)
	e.p.Account.Connect(now, ours, theirs)
	e.dirty = true
	if e.pending {
		e.sendAt, e.attempt = now.UnixNano(), 0
	}
	e.witness = score.Witness{}
	e.mu.Unlock()
	if len(addr) > event.MaxText {
		addr = addr[:event.MaxText]
	}
	l.submit(event.Connect, &event.PeerNote{Peer: p, Note: addr})
	l.submit(event.Enroll, &event.Enrollment{Peer: p, Terms: theirs})
	l.version.Add(1)
	return ours, nil
}

// Disconnect records the end of peer p's connection.
func (l *Ledger) Disconnect(p peer.ID, reason string) error {
	e, err := l.lookup(p)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.p.Account.Disconnect(l.clock.Now())
	e.dirty = true
	e.mu.Unlock()
	if len(reason) > event.MaxText {
		reason = reason[:event.MaxText]
	}
	l.submit(event.Disconnect, &event.PeerNote{Peer: p, Note: reason})
	l.version.Add(1)
	return nil
}

// submit journals an audit entry without waiting; a failure is logged (the
// journal's error is sticky and surfaces on the next durable operation).
func (l *Ledger) submit(t event.Type, b event.Body) {
	// A degraded journal logs its state itself and counts what it refused
	// in its gap record: a line per entry would flood the log.
	if _, err := l.j.SubmitEvent(t, b); err != nil && !errors.Is(err, journal.ErrDegraded) {
		l.log.Error().Err(err).Str("type", t.String()).Msg("ledger: journal entry lost")
	}
}

// Observe applies the cumulative counters of peer p (see account.Counters):
// charges the traffic, feeds the score (all but the uncredited part of
// RelayedBy), and chokes the peer at once if its
// debt passed its limit. It does no I/O.
func (l *Ledger) Observe(p peer.ID, c account.Counters) error {
	e, err := l.lookup(p)
	if err != nil {
		return err
	}
	now := l.clock.Now()
	e.mu.Lock()
	d := e.p.Account.Observe(c)
	if !d.IsZero() {
		// Frames we handed the peer on behalf of peers that give no
		// credit are charged, but no contribution of the peer's (see
		// account.Counters.RelayedByUncredited and package score).
		credits := l.sc.Credits(&e.p.Score)
		l.sc.Add(&e.p.Score, now, d.RelayedBy.Bytes-d.RelayedByUncredited.Bytes, d.RelayedFor.Bytes)
		if l.sc.Credits(&e.p.Score) != credits {
			// The data plane learns it with the class (PeerStates).
			l.version.Add(1)
		}
		e.dirty = true
		if !e.p.Policy.Choked {
			l.decideLocked(e, now)
		}
	}
	e.mu.Unlock()
	return nil
}

// decideLocked runs the policy for e and journals a change. It returns the
// action.
func (l *Ledger) decideLocked(e *entry, now time.Time) policy.Action {
	lim := l.pol.Limits(e.p.Account.ReceivedTotal)
	debt := e.p.Account.Debt()
	a := l.pol.Decide(&e.p.Policy, debt, lim, now)
	switch a {
	case policy.Choke:
		e.dirty = true
		l.version.Add(1)
		l.submit(event.Choke, &event.DebtLimit{Peer: e.p.Account.Peer, Debt: debt, Limit: lim.Disconnect})
		l.log.Info().Str("peer", e.p.Account.Peer.Short()).Uint64("debt", debt).Uint64("limit", lim.Disconnect).Msg("ledger: peer choked for debt")
	case policy.Resume:
		e.dirty = true
		l.version.Add(1)
		l.submit(event.Resume, &event.DebtLimit{Peer: e.p.Account.Peer, Debt: debt, Limit: lim.Payment})
		l.log.Info().Str("peer", e.p.Account.Peer.Short()).Uint64("debt", debt).Msg("ledger: peer resumed")
	}
	return a
}

// Receipt is the outcome of ReceiveCheque.
type Receipt struct {
	// Increase is what the cheque added; Surplus the part beyond the debt.
	Increase, Surplus uint64
	// Cumulative is the total we now hold from the peer: the value to
	// acknowledge, for an accepted cheque and for ErrDuplicate alike.
	Cumulative uint64
}

// ReceiveCheque handles a cheque that peer from sent. It checks network,
// issuer, beneficiary and signature, refuses replayed and non-increasing
// cheques, credits the increase (debt first, the rest as surplus), and
// returns only once the acceptance is durable: the caller may acknowledge
// when err is nil (or ErrDuplicate). A refused cheque is journalled as
// CHEQUE_REJECTED and the error wraps the cheque package's sentinel.
func (l *Ledger) ReceiveCheque(from peer.ID, raw []byte) (Receipt, error) {
	s, err := cheque.Parse(raw)
	if err == nil {
		err = s.Check(cheque.Expect{Network: l.network, Issuer: from, Beneficiary: l.self})
	}
	if err != nil {
		return Receipt{}, l.reject(from, raw, err)
	}
	e, err := l.lookup(from)
	if err != nil {
		return Receipt{}, l.reject(from, raw, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.p.LastIn != nil && *e.p.LastIn == s {
		return Receipt{Cumulative: e.p.Account.ReceivedTotal}, ErrDuplicate
	}
	acct := e.p.Account
	inc, surplus, err := acct.Receive(&s.Cheque)
	if err != nil {
		return Receipt{Cumulative: e.p.Account.ReceivedTotal}, l.reject(from, raw, err)
	}
	if _, err := l.j.AppendEvent(event.ChequeReceived, &event.ChequeEntry{Signed: s, Increase: inc, Surplus: surplus}); err != nil {
		return Receipt{}, fmt.Errorf("ledger: cheque from %s not recorded: %w", from.Short(), err)
	}
	e.p.Account, e.p.LastIn, e.dirty = acct, &s, true
	if e.p.Policy.Choked {
		l.decideLocked(e, l.clock.Now())
	}
	return Receipt{Increase: inc, Surplus: surplus, Cumulative: s.Cumulative}, nil
}

func (l *Ledger) reject(from peer.ID, raw []byte, err error) error {
	reason := cheque.Reason(err)
	if errors.Is(err, ErrUnknownPeer) {
		reason = "unknown_peer"
	}
	keep := raw[:min(len(raw), event.MaxRaw)]
	l.submit(event.ChequeRejected, &event.Rejected{Peer: from, Reason: reason, Raw: keep})
	l.log.Warn().Str("peer", from.Short()).Str("reason", reason).Err(err).Msg("ledger: cheque rejected")
	return fmt.Errorf("ledger: cheque from %s: %w", from.Short(), err)
}

// ChequeAcked records that peer p acknowledged holding cumulative from us.
func (l *Ledger) ChequeAcked(p peer.ID, cumulative uint64) error {
	e, err := l.lookup(p)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if cumulative > e.p.OutAcked && cumulative <= e.p.Account.SentTotal {
		e.p.OutAcked, e.dirty = cumulative, true
	}
	if e.pending && e.p.LastOut != nil && cumulative >= e.p.LastOut.Cumulative {
		e.pending, e.attempt = false, 0
	}
	return nil
}

// Outgoing is a cheque to send.
type Outgoing struct {
	Peer peer.ID
	// Cheque is the signed cheque in wire form.
	Cheque [cheque.SignedSize]byte
	// Attempt is 1 for the first send.
	Attempt int
}

// Due appends to dst the cheques to send now: newly issued ones and
// unacknowledged ones whose retry time has come. Each is scheduled again
// after a jittered exponential backoff from cheque_retry_min up to
// cheque_retry_max; a newer cheque replaces an unacknowledged older one (it
// is cumulative). Only connected peers are served.
func (l *Ledger) Due(dst []Outgoing) []Outgoing {
	now := l.clock.Now().UnixNano()
	for _, e := range l.entries() {
		e.mu.Lock()
		if e.pending && e.p.Account.Connected && e.sendAt <= now {
			e.attempt++
			o := Outgoing{Peer: e.p.Account.Peer, Attempt: e.attempt}
			e.p.LastOut.AppendBinary(o.Cheque[:0])
			dst = append(dst, o)
			e.sendAt = now + int64(l.backoff(e.attempt))
			if e.attempt == 4 {
				l.log.Info().Str("peer", o.Peer.Short()).Uint64("cumulative", e.p.LastOut.Cumulative).
					Msg("ledger: cheque still unacknowledged after 3 sends; backing off")
			}
		}
		e.mu.Unlock()
	}
	return dst
}

// backoff is the wait after the attempt-th send: min·2^(attempt-1) capped at
// max, then drawn uniformly from its upper half, so that peers that lost
// their link together do not retry in lockstep.
func (l *Ledger) backoff(attempt int) time.Duration {
	d := l.cfg.ChequeRetryMax
	if attempt-1 < 32 {
		if v := l.cfg.ChequeRetryMin << (attempt - 1); v > 0 && v < d {
			d = v
		}
	}
	l.rngMu.Lock()
	j := time.Duration(l.rng.Int64N(int64(d/2) + 1))
	l.rngMu.Unlock()
	return d/2 + j
}

// TickReport says what a Tick did.
type TickReport struct {
	// Disconnect lists peers choked for longer than the grace period: the
	// caller closes their sessions (and calls Disconnect).
	Disconnect []peer.ID
	// Issued is the number of cheques issued; Deferred the number due but
	// not issued because the journal cannot record them now.
	Issued, Deferred int
	// ClassChanges is the number of peers whose class changed.
	ClassChanges int
	// Checkpointed is true when the store was written.
	Checkpointed bool
}

// Tick is the ledger's periodic work, off the packet path; call it about
// once a second. It applies forgiveness, runs the policy, issues cheques
// where we owe a peer past the early-settlement point (durable before they
// are handed out by Due), re-decides classes on the class tick, and
// checkpoints on the checkpoint interval.
func (l *Ledger) Tick() (TickReport, error) {
	l.tickMu.Lock()
	defer l.tickMu.Unlock()
	var rep TickReport
	now := l.clock.Now()
	l.mu.Lock()
	classTick := now.UnixNano()-l.lastClassTick >= int64(l.cfg.ClassTick)
	if classTick {
		l.lastClassTick = now.UnixNano()
	}
	checkpoint := now.UnixNano()-l.lastCheckpoint >= int64(l.cfg.CheckpointInterval)
	l.mu.Unlock()

	type issued struct {
		e *entry
		s cheque.Signed
	}
	var toIssue []issued
	var lastIssued journal.Pos
	for _, e := range l.entries() {
		e.mu.Lock()
		a := &e.p.Account
		if e.reconcileLeft > 0 && a.Connected && now.UnixNano()-a.ConnectedAt > int64(reconcileWait) {
			e.reconcileLeft = 0
			l.log.Warn().Str("peer", a.Peer.Short()).Dur("waited", reconcileWait).
				Msg("ledger: reconciliation of the restart closed: the peer sent too few signed counters in time")
		}
		// Forgiveness waits for reconciliation where the balance is known to
		// overstate the peer's debt (see entry.paidLost); the time is not
		// lost, ForgivenUntil stays where it is.
		if e.reconcileLeft == 0 || !e.paidLost {
			if by, to := a.Forgive(now); by != 0 || to != 0 {
				e.dirty = true
			}
		}
		if l.decideLocked(e, now) == policy.Disconnect && a.Connected {
			rep.Disconnect = append(rep.Disconnect, a.Peer)
		}
		if classTick {
			prev, sc := l.sc.Decide(&e.p.Score, now)
			if prev != e.p.Score.Class {
				rep.ClassChanges++
				e.dirty = true
				l.version.Add(1)
				l.submit(event.ClassChange, &event.Reclass{Peer: a.Peer, From: prev, To: e.p.Score.Class, ScoreMilli: uint64(sc * 1000)})
			}
		}
		if c, ok := l.settlementDue(a, now); ok {
			s, err := cheque.Sign(c, l.signer)
			if err != nil {
				e.mu.Unlock()
				return rep, fmt.Errorf("ledger: %w", err)
			}
			// Submitted now, made durable by the one Sync below for all
			// peers, applied after it: nothing is sent before it is durable.
			p, err := l.j.SubmitEvent(event.ChequeIssued, &event.ChequeEntry{Signed: s, Increase: c.Cumulative - a.SentTotal})
			switch {
			case errors.Is(err, journal.ErrDegraded):
				// Not recorded, so not issued: settling waits until the
				// journal writes again (the debt stays, and so does the
				// cheque due).
				rep.Deferred++
			case err != nil:
				e.mu.Unlock()
				return rep, fmt.Errorf("ledger: %w", err)
			default:
				toIssue, lastIssued = append(toIssue, issued{e, s}), p
			}
		}
		e.mu.Unlock()
	}
	if len(toIssue) > 0 {
		// Wait rather than Sync: a write that failed in between took the
		// entries back, and Wait says so where Sync would not.
		if err := l.j.Wait(lastIssued); err != nil {
			return rep, fmt.Errorf("ledger: cheques not recorded: %w", err)
		}
		for _, is := range toIssue {
			is.e.mu.Lock()
			if is.e.p.Account.Pay(&is.s.Cheque) > 0 {
				s := is.s
				is.e.p.LastOut, is.e.dirty = &s, true
				is.e.pending, is.e.attempt, is.e.sendAt = true, 0, now.UnixNano()
				rep.Issued++
			}
			is.e.mu.Unlock()
		}
	}
	if checkpoint {
		if err := l.Checkpoint(); err != nil {
			return rep, err
		}
		rep.Checkpointed = true
	}
	return rep, nil
}

// settlementDue returns the cheque that pays what we owe a connected peer
// once it passes the early-settlement point of the peer's payment threshold.
func (l *Ledger) settlementDue(a *account.Account, now time.Time) (cheque.Cheque, bool) {
	if !a.Connected || a.Theirs.Payment == 0 {
		return cheque.Cheque{}, false
	}
	early := a.Theirs.Payment / 100 * l.cfg.EarlySettlementPercent
	if early == 0 {
		early = 1
	}
	if a.Owed() < early {
		return cheque.Cheque{}, false
	}
	return a.NextCheque(l.network, l.self, now)
}

// Checkpoint writes every changed account to the store in one transaction
// and returns once it is durable.
func (l *Ledger) Checkpoint() error {
	l.ckMu.Lock()
	defer l.ckMu.Unlock()
	now := l.clock.Now().UnixNano()
	l.mu.Lock()
	l.lastCheckpoint = now
	l.mu.Unlock()
	var dirty []*entry
	var batch []store.Peer
	for _, e := range l.entries() {
		e.mu.Lock()
		if e.dirty {
			dirty = append(dirty, e)
			batch = append(batch, e.p)
			e.dirty = false
		}
		e.mu.Unlock()
	}
	if err := l.st.Put(batch); err != nil {
		for _, e := range dirty {
			e.mu.Lock()
			e.dirty = true
			e.mu.Unlock()
		}
		return fmt.Errorf("ledger: checkpoint: %w", err)
	}
	return nil
}

// CheckClaim cross-checks the counters peer p signed about us in a
// heartbeat (after the caller verified the signature) against our own, and
// records them for the relay's own score. A mismatch beyond the band is
// journalled once when it starts and returned; it does not affect the
// peer's score, class or balance. The first claims after Open also
// reconcile the account (reconcileLocked): charges lost in a restart are
// adopted within reconcile_max_charge, and a difference beyond it is the
// mismatch returned.
func (l *Ledger) CheckClaim(p peer.ID, theirs account.Counters) (score.Mismatch, bool, error) {
	e, err := l.lookup(p)
	if err != nil {
		return score.Mismatch{}, false, err
	}
	l.mu.Lock()
	l.own.Report(p, theirs)
	l.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	var refused *score.Mismatch
	if e.reconcileLeft > 0 {
		e.reconcileLeft--
		refused = l.reconcileLocked(e, theirs)
	}
	ours := e.p.Account.Usage
	m, bad := e.witness.Check(ours, theirs, l.band)
	if refused != nil {
		// The witness has just taken its baseline: the refused difference
		// is the mismatch to report.
		e.mismatch = true
		return *refused, true, nil
	}
	if bad && !e.mismatch {
		l.submit(event.Mismatch, &event.CounterMismatch{Peer: p, What: m.What, Allowed: m.Allowed, Ours: ours, Theirs: theirs})
		l.log.Warn().Str("peer", p.Short()).Str("what", m.What).Uint64("ours", m.Ours).Uint64("theirs", m.Theirs).
			Uint64("allowed", m.Allowed).Msg("ledger: peer's signed counters disagree with ours")
	}
	e.mismatch = bad
	return m, bad, nil
}

// reconcileWait is how long after a peer reconnects its signed claims may
// come and still reconcile the restart: heartbeats come every few
// seconds, and an account must not wait for ever (forgiveness may wait on it).
const reconcileWait = 30 * time.Second

// reconcileClaims is how many of a peer's first signed claims after Open
// reconcile. A claim is the peer's counters as it signed them, compared with
// ours when it arrives: traffic that flowed in between is in ours and not in
// the claim, so one claim taken while traffic flows falls short of what was
// lost by that much; the next ones take up what it left (within the same
// bound), and once the claims match ours, nothing more is adopted.
const reconcileClaims = 3

// Reconciliation is what a restart's reconcile adopted or refused.
type Reconciliation struct {
	// Adopted counts adoptions of lost charges (RECONCILE entries; up to
	// reconcileClaims per peer), Refused the peers whose difference was
	// beyond reconcile_max_charge (journalled as a MISMATCH), since Open.
	Adopted, Refused uint64
	// ToPeer and ToUs sum the charges adopted since Open: what the peers
	// owe us more, what we owe them more.
	ToPeer, ToUs uint64
}

// Reconciled returns what reconciliation did since Open.
func (l *Ledger) Reconciled() Reconciliation {
	l.reconMu.Lock()
	defer l.reconMu.Unlock()
	return l.recon
}

// reconcileLocked runs on each of the peer's first reconcileClaims signed
// claims after Open (its lifetime counters about us, signature verified),
// all of them together within one bound per direction. A kill -9
// loses the traffic charged since the last checkpoint; the peer's counters
// still hold it. Per direction (what the peer owes us: the traffic it
// handed us and its control frames; what we owe it: the reverse) the
// traffic its claim shows beyond ours is adopted if its charge is within
// reconcile_max_charge, and journalled as RECONCILE. The claim is evidence,
// not truth, so the bound caps what a lying peer can move, and a larger
// difference is a MISMATCH, journalled, logged and returned, with nothing of
// it adopted. Only missing traffic is added: no counter and no debt is ever
// lowered (reconnecting does not erase a debt), and adopted bytes do not
// feed the score, which rests on what this relay observed itself.
func (l *Ledger) reconcileLocked(e *entry, theirs account.Counters) *score.Mismatch {
	a := &e.p.Account
	ours := a.Usage
	short := theirs.Mirror().Shortfall(ours)
	if short.IsZero() {
		return nil
	}
	peerSide := account.Counters{RelayedFor: short.RelayedFor, ControlIn: short.ControlIn}
	usSide := account.Counters{RelayedBy: short.RelayedBy, ControlOut: short.ControlOut}
	toPeer := a.Ours.Prices.Charge(peerSide.RelayedFor, peerSide.ControlIn)
	toUs := a.Theirs.Prices.Charge(usSide.RelayedBy, usSide.ControlOut)
	bound := l.cfg.ReconcileMaxCharge
	// One bound per direction for all the claims of one restart.
	left := [2]uint64{bound - min(bound, e.reconciled[0]), bound - min(bound, e.reconciled[1])}
	var adopt account.Counters
	var what []byte
	var refused *score.Mismatch
	refuse := func(side string, charge uint64) {
		if refused == nil || charge > refused.Theirs {
			refused = &score.Mismatch{What: "restart_reconcile." + side, Theirs: charge, Allowed: bound}
		}
	}
	if toPeer <= left[0] {
		adopt.RelayedFor, adopt.ControlIn = peerSide.RelayedFor, peerSide.ControlIn
		what = append(what, "peer"...)
	} else {
		refuse("peer", toPeer)
	}
	if toUs <= left[1] {
		adopt.RelayedBy, adopt.ControlOut = usSide.RelayedBy, usSide.ControlOut
		if len(what) > 0 {
			what = append(what, ',')
		}
		what = append(what, "us"...)
	} else {
		refuse("us", toUs)
	}
	p := a.Peer
	if !adopt.IsZero() {
		cp, cu := a.Adopt(adopt)
		e.reconciled[0], e.reconciled[1] = addSat(e.reconciled[0], cp), addSat(e.reconciled[1], cu)
		// Our counters moved: the cross-check starts a new baseline.
		e.witness = score.Witness{}
		e.dirty = true
		l.reconMu.Lock()
		l.recon.Adopted++
		l.recon.ToPeer = addSat(l.recon.ToPeer, cp)
		l.recon.ToUs = addSat(l.recon.ToUs, cu)
		l.reconMu.Unlock()
		l.submit(event.Reconcile, &event.CounterMismatch{Peer: p, What: string(what), Allowed: bound, Ours: ours, Theirs: theirs})
		l.log.Info().Str("peer", p.Short()).Uint64("charged_peer", cp).Uint64("charged_us", cu).Uint64("bound", bound).
			Msg("ledger: charges lost in the restart adopted from the peer's signed counters")
		if !e.p.Policy.Choked {
			l.decideLocked(e, l.clock.Now())
		}
	}
	if refused != nil {
		e.reconcileLeft = 0
		// The returned Mismatch is in price units: Theirs is the charge the
		// claim implies beyond our counters, Ours 0 (the journal entry
		// keeps both full counter sets).
		l.reconMu.Lock()
		l.recon.Refused++
		l.reconMu.Unlock()
		l.submit(event.Mismatch, &event.CounterMismatch{Peer: p, What: refused.What, Allowed: bound, Ours: ours, Theirs: theirs})
		l.log.Warn().Str("peer", p.Short()).Str("what", refused.What).Uint64("charge", refused.Theirs).Uint64("bound", bound).
			Msg("ledger: peer's signed counters exceed ours after the restart by more than reconcile_max_charge; not adopted")
	}
	return refused
}

// Counters returns our lifetime counters about peer p, to sign into our
// heartbeats to it.
func (l *Ledger) Counters(p peer.ID) (account.Counters, error) {
	e, err := l.lookup(p)
	if err != nil {
		return account.Counters{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.p.Account.Usage, nil
}

// Totals are the relay's own cumulative measurements summed over every
// account (connected or not): what pool_relay status shows as "Total
// relayed" and "Total consumed". They are the sums of the per-peer counters
// pool_relay peers shows, and they survive restarts with the accounts.
type Totals struct {
	// Relayed is Σ Usage.RelayedFor.Bytes: bytes this relay relayed for
	// its peers (bytes contributed). Consumed is Σ Usage.RelayedBy.Bytes:
	// bytes its peers relayed for it (bytes consumed).
	Relayed, Consumed uint64
	// ControlIn and ControlOut are the control frames' bytes (handshakes,
	// heartbeats, cheques) each way, kept apart from relayed bytes: they
	// count in no score.
	ControlIn, ControlOut uint64
	// Score is Relayed/Consumed with score_prior_bytes added to both
	// (score.Generosity).
	Score float64
}

// Totals returns the relay's own measured totals and the score computed
// from them.
func (l *Ledger) Totals() Totals {
	var t Totals
	for _, e := range l.entries() {
		e.mu.Lock()
		u := e.p.Account.Usage
		e.mu.Unlock()
		t.Relayed = addSat(t.Relayed, u.RelayedFor.Bytes)
		t.Consumed = addSat(t.Consumed, u.RelayedBy.Bytes)
		t.ControlIn = addSat(t.ControlIn, u.ControlIn.Bytes)
		t.ControlOut = addSat(t.ControlOut, u.ControlOut.Bytes)
	}
	t.Score = score.Generosity(t.Relayed, t.Consumed, float64(l.cfg.ScorePriorBytes))
	return t
}

func addSat(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return ^uint64(0)
}

// Attested is what the relay's peers say of it in their signed heartbeats:
// the sums of each reporting peer's latest counters (held in memory since
// the daemon started), and the score computed from them as Totals.Score is.
// It is evidence beside the relay's own totals, not a source of them.
type Attested struct {
	// Relayed is Σ the peers' RelayedBy (what they say we relayed for
	// them), Consumed Σ their RelayedFor (what they say they relayed for us).
	Relayed, Consumed uint64
	// Peers is the number of peers whose signed counters were received
	// since the daemon started.
	Peers int
	Score float64
}

// Attested returns what the peers' signed counters say of the relay.
func (l *Ledger) Attested() Attested {
	l.mu.RLock()
	defer l.mu.RUnlock()
	c, u := l.own.Totals()
	return Attested{Relayed: c, Consumed: u, Peers: l.own.Peers(), Score: l.own.Score(float64(l.cfg.ScorePriorBytes))}
}

// PeerState is what the data plane snapshot carries per peer.
type PeerState struct {
	Peer peer.ID
	// Choked peers' relayed frames are dropped with reason "debt".
	Choked bool
	Class  score.Class
	// Credits is whether frames we relay for the peer count as
	// contribution of the peer we hand them to (score.Config.Credits).
	Credits bool
}

// PeerStates appends the state of every connected peer to dst, sorted by
// peer, for the control core to publish to the data plane.
func (l *Ledger) PeerStates(dst []PeerState) []PeerState {
	start := len(dst)
	for _, e := range l.entries() {
		e.mu.Lock()
		if e.p.Account.Connected {
			dst = append(dst, PeerState{Peer: e.p.Account.Peer, Choked: e.p.Policy.Choked, Class: e.p.Score.Class, Credits: l.sc.Credits(&e.p.Score)})
		}
		e.mu.Unlock()
	}
	s := dst[start:]
	sort.Slice(s, func(i, j int) bool { return string(s[i].Peer[:]) < string(s[j].Peer[:]) })
	return dst
}

// View is a copy of one peer's state, for status and the CLI.
type View struct {
	Account account.Account
	Choked  bool
	Class   score.Class
	// Credits is PeerState.Credits.
	Credits   bool
	Score     float64
	OutAcked  uint64
	Limits    policy.Limits
	FirstSeen time.Time
}

// Peer returns a copy of peer p's state.
func (l *Ledger) Peer(p peer.ID) (View, error) {
	e, err := l.lookup(p)
	if err != nil {
		return View{}, err
	}
	now := l.clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	return l.viewLocked(e, now), nil
}

// Peers returns a copy of every peer's state, sorted by peer.
func (l *Ledger) Peers() []View {
	now := l.clock.Now()
	es := l.entries()
	out := make([]View, 0, len(es))
	for _, e := range es {
		e.mu.Lock()
		out = append(out, l.viewLocked(e, now))
		e.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].Account.Peer[:]) < string(out[j].Account.Peer[:]) })
	return out
}

func (l *Ledger) viewLocked(e *entry, now time.Time) View {
	return View{Account: e.p.Account, Choked: e.p.Policy.Choked, Class: e.p.Score.Class,
		Credits: l.sc.Credits(&e.p.Score), Score: l.sc.Score(&e.p.Score, now), OutAcked: e.p.OutAcked,
		Limits: l.pol.Limits(e.p.Account.ReceivedTotal), FirstSeen: time.Unix(0, e.p.FirstSeen)}
}

// Cheques returns the settlement entries: per peer, the last cheque
// accepted from it and the last issued to it (both cumulative, so they are
// all that settles the account), sorted by peer, received first.
func (l *Ledger) Cheques() []cheque.Entry {
	var out []cheque.Entry
	for _, e := range l.entries() {
		e.mu.Lock()
		if e.p.LastIn != nil {
			out = append(out, cheque.Entry{Direction: cheque.Received, Peer: e.p.Account.Peer, Signed: *e.p.LastIn})
		}
		if e.p.LastOut != nil {
			out = append(out, cheque.Entry{Direction: cheque.Issued, Peer: e.p.Account.Peer, Signed: *e.p.LastOut})
		}
		e.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Peer != out[j].Peer {
			return string(out[i].Peer[:]) < string(out[j].Peer[:])
		}
		return out[i].Direction == cheque.Received && out[j].Direction == cheque.Issued
	})
	return out
}

// ExportSettlement writes the settlement file (cheque.WriteJSONL format).
func (l *Ledger) ExportSettlement(w io.Writer) error { return cheque.WriteJSONL(w, l.Cheques()) }

// SignedHead signs the journal's durable head with the relay's key, for
// heartbeats.
func (l *Ledger) SignedHead() (journal.SignedHead, error) {
	return journal.SignHead(l.j.Head(), l.signer)
}

// Close checkpoints and closes the journal and the store.
func (l *Ledger) Close() error {
	err := l.Checkpoint()
	if jerr := l.j.Close(); err == nil && jerr != nil {
		err = fmt.Errorf("ledger: %w", jerr)
	}
	if serr := l.st.Close(); err == nil && serr != nil {
		err = fmt.Errorf("ledger: %w", serr)
	}
	return err
}
