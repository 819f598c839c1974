package account

import (
	"encoding/binary"
	"math"
	"math/bits"
	"time"

	"github.com/poolrelay/poolrelay/ledger/cheque"
	"github.com/poolrelay/poolrelay/ledger/peer"
)

// Traffic is a packet and byte count.
type Traffic struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

func (t Traffic) add(u Traffic) Traffic {
	return Traffic{addSat(t.Packets, u.Packets), addSat(t.Bytes, u.Bytes)}
}

// sub returns t-u per field, and false if any field of u exceeds t's.
func (t Traffic) sub(u Traffic) (Traffic, bool) {
	if u.Packets > t.Packets || u.Bytes > t.Bytes {
		return Traffic{}, false
	}
	return Traffic{t.Packets - u.Packets, t.Bytes - u.Bytes}, true
}

// Counters are cumulative per-peer traffic totals, as the control core
// aggregates them from the data plane's per-core counters. Directions are
// seen from the relay that keeps the account.
type Counters struct {
	// Epoch identifies one run of the counter source (e.g. the data plane's
	// start time in nanoseconds). A restarted source starts again from zero
	// and must present a larger epoch: that is how a restart is told apart
	// from a late, stale snapshot.
	Epoch uint64 `json:"epoch"`
	// RelayedFor: frames the peer handed us that we relayed for it (the peer
	// initiated them, so it pays, at our prices).
	RelayedFor Traffic `json:"relayed_for"`
	// RelayedBy: frames we handed the peer to relay for us (we pay, at its
	// prices).
	RelayedBy Traffic `json:"relayed_by"`
	// RelayedByUncredited: the part of RelayedBy relayed on behalf of
	// peers that give no credit (score.Config.Credits: they have relayed
	// less for us than the score's prior weighs), counted by the data
	// plane from the peer state the control core publishes. Charged like
	// the rest of RelayedBy; it only does not count as the peer's
	// contribution to its score (ledger.Observe), so that identities
	// without standing cannot pass standing to each other (the Sybil
	// trade of package sim). Not part of the canonical encoding (claims,
	// journal, checkpoint): after a restart of the control part alone its
	// first delta may exceed what is new, and is clamped to RelayedBy's.
	RelayedByUncredited Traffic `json:"relayed_by_uncredited"`
	// ControlIn: control frames the peer sent us (charged to it at our
	// control prices).
	ControlIn Traffic `json:"control_in"`
	// ControlOut: control frames we sent the peer (charged to us at its
	// control prices).
	ControlOut Traffic `json:"control_out"`
}

func (c Counters) add(d Counters) Counters {
	return Counters{Epoch: c.Epoch, RelayedFor: c.RelayedFor.add(d.RelayedFor),
		RelayedBy: c.RelayedBy.add(d.RelayedBy), RelayedByUncredited: c.RelayedByUncredited.add(d.RelayedByUncredited),
		ControlIn: c.ControlIn.add(d.ControlIn), ControlOut: c.ControlOut.add(d.ControlOut)}
}

// IsZero reports whether no traffic is counted (the epoch is ignored).
func (c Counters) IsZero() bool {
	c.Epoch = 0
	return c == Counters{}
}

// Account is what this relay records about one peer.
type Account struct {
	Peer peer.ID
	// Ours are the terms we announced to the peer, Theirs the terms it
	// announced to us.
	Ours, Theirs Terms

	// Balance is positive when the peer owes us, negative when we owe it.
	Balance int64
	// Surplus is what the peer paid beyond its debt. It absorbs the peer's
	// later charges before Balance grows, and it never turns into a debt of
	// ours: overpaying must not oblige the payee to pay back.
	Surplus uint64

	// SentTotal and SentSeq describe the last cheque we issued to the peer.
	SentTotal, SentSeq uint64
	// ReceivedTotal and ReceivedSeq describe the last cheque we accepted.
	ReceivedTotal, ReceivedSeq uint64

	// Usage is the lifetime traffic with this peer (its Epoch is unused).
	Usage Counters
	// Base is the last cumulative snapshot applied; deltas are taken from it.
	Base Counters

	// Forgiven is the peer's debt we forgave; ForgivenToUs is our debt the
	// peer forgave (as we compute it from its announced rate).
	Forgiven, ForgivenToUs uint64

	// Connected is true between Connect and Disconnect.
	Connected bool
	// ConnectedAt is the start of the current (or last) connection, Unix ns.
	ConnectedAt int64
	// ForgivenUntil is how far forgiveness has been applied, Unix ns. It
	// starts at the connection time, never at the epoch: Swarm measured it
	// from the epoch and forgave a fresh peer decades of debt.
	ForgivenUntil int64
}

// Connect starts a connection at now under the two announcements. The
// balance is kept: reconnecting does not erase a debt.
func (a *Account) Connect(now time.Time, ours, theirs Terms) {
	a.Ours, a.Theirs = ours, theirs
	a.Connected = true
	a.ConnectedAt = now.UnixNano()
	a.ForgivenUntil = a.ConnectedAt
}

// Disconnect applies forgiveness up to now and ends the connection; no time
// is forgiven while disconnected.
func (a *Account) Disconnect(now time.Time) {
	a.Forgive(now)
	a.Connected = false
}

// Abandon ends a connection that was cut without notice (the relay
// restarted): nothing is forgiven for the time since forgiveness was last
// applied, because the peer may not have been connected for it.
func (a *Account) Abandon() { a.Connected = false }

// Observe applies a cumulative counter snapshot and returns the delta it
// charged. Within one epoch the counters only grow, so a field below the base
// means the snapshot is stale (reordered): the larger of the two is kept and
// nothing is counted twice. A larger epoch means the source restarted from
// zero, so the whole snapshot is new traffic. A smaller epoch is a straggler
// from before a restart and is ignored.
func (a *Account) Observe(c Counters) Counters {
	var d Counters
	switch {
	case c.Epoch < a.Base.Epoch:
		return Counters{}
	case c.Epoch > a.Base.Epoch:
		d = c
		a.Base = c
	default:
		d.RelayedFor, a.Base.RelayedFor = grow(a.Base.RelayedFor, c.RelayedFor)
		d.RelayedBy, a.Base.RelayedBy = grow(a.Base.RelayedBy, c.RelayedBy)
		d.RelayedByUncredited, a.Base.RelayedByUncredited = grow(a.Base.RelayedByUncredited, c.RelayedByUncredited)
		d.ControlIn, a.Base.ControlIn = grow(a.Base.ControlIn, c.ControlIn)
		d.ControlOut, a.Base.ControlOut = grow(a.Base.ControlOut, c.ControlOut)
	}
	d.Epoch = 0
	// The uncredited part of RelayedBy is a part of it: a base the
	// checkpoint does not hold (a restart of the control part alone) must
	// not make it more.
	d.RelayedByUncredited.Packets = min(d.RelayedByUncredited.Packets, d.RelayedBy.Packets)
	d.RelayedByUncredited.Bytes = min(d.RelayedByUncredited.Bytes, d.RelayedBy.Bytes)
	a.Usage = a.Usage.add(d)
	a.chargePeer(a.Ours.Prices.Charge(d.RelayedFor, d.ControlIn))
	a.chargeUs(a.Theirs.Prices.Charge(d.RelayedBy, d.ControlOut))
	return d
}

// Mirror returns what the peer's counters c (signed about us) say in our
// directions: what it relayed for us is what we had relayed by it, what it
// sent us in control frames is our ControlIn, and so on. The epoch is not
// carried over: it belongs to the peer's counter source, not to ours.
func (c Counters) Mirror() Counters {
	return Counters{RelayedFor: c.RelayedBy, RelayedBy: c.RelayedFor, ControlIn: c.ControlOut, ControlOut: c.ControlIn}
}

// Shortfall returns, per field, how far c exceeds u (zero where it does
// not): what a record u lacks next to a record c of the same traffic.
func (c Counters) Shortfall(u Counters) Counters {
	over := func(a, b Traffic) Traffic {
		var d Traffic
		if a.Packets > b.Packets {
			d.Packets = a.Packets - b.Packets
		}
		if a.Bytes > b.Bytes {
			d.Bytes = a.Bytes - b.Bytes
		}
		return d
	}
	return Counters{RelayedFor: over(c.RelayedFor, u.RelayedFor), RelayedBy: over(c.RelayedBy, u.RelayedBy),
		ControlIn: over(c.ControlIn, u.ControlIn), ControlOut: over(c.ControlOut, u.ControlOut)}
}

// Adopt adds traffic d that this relay did not count itself (charges a
// restart lost before they were checkpointed, as reconciliation finds them)
// to Usage and charges it as Observe would: RelayedFor and ControlIn to the
// peer at our prices, RelayedBy and ControlOut to us at its prices. Base is
// left alone: it tracks the data plane's counters, which d is not part of.
// It returns the two charges.
func (a *Account) Adopt(d Counters) (toPeer, toUs uint64) {
	d.Epoch = 0
	a.Usage = a.Usage.add(d)
	toPeer = a.Ours.Prices.Charge(d.RelayedFor, d.ControlIn)
	toUs = a.Theirs.Prices.Charge(d.RelayedBy, d.ControlOut)
	a.chargePeer(toPeer)
	a.chargeUs(toUs)
	return toPeer, toUs
}

// grow returns the increase of each field of c over base and the new base
// (the per-field maximum).
func grow(base, c Traffic) (delta, next Traffic) {
	next = base
	if c.Packets > base.Packets {
		delta.Packets, next.Packets = c.Packets-base.Packets, c.Packets
	}
	if c.Bytes > base.Bytes {
		delta.Bytes, next.Bytes = c.Bytes-base.Bytes, c.Bytes
	}
	return delta, next
}

// chargePeer adds v to what the peer owes, drawing on its surplus first.
func (a *Account) chargePeer(v uint64) {
	if a.Surplus >= v {
		a.Surplus -= v
		return
	}
	v -= a.Surplus
	a.Surplus = 0
	a.Balance = addInt(a.Balance, v)
}

// chargeUs adds v to what we owe the peer.
func (a *Account) chargeUs(v uint64) { a.Balance = subInt(a.Balance, v) }

// Debt is what the peer owes us (0 when we owe it).
func (a *Account) Debt() uint64 {
	if a.Balance <= 0 {
		return 0
	}
	return uint64(a.Balance)
}

// Owed is what we owe the peer (0 when it owes us).
func (a *Account) Owed() uint64 {
	if a.Balance >= 0 {
		return 0
	}
	return uint64(-(a.Balance + 1)) + 1
}

// Net is Balance minus Surplus: the quantity that the two ends' records of
// each other must mirror (A's Net about B = -B's Net about A, up to loss).
func (a *Account) Net() int64 { return subInt(a.Balance, a.Surplus) }

// Forgive applies time-based forgiveness from ForgivenUntil to now while
// connected: the peer's debt shrinks at our announced rate, ours at its
// announced rate, never past zero. It returns the amounts forgiven. A clock
// stepped backwards forgives nothing and restarts the count at now.
func (a *Account) Forgive(now time.Time) (byUs, byPeer uint64) {
	t := now.UnixNano()
	if !a.Connected || t <= a.ForgivenUntil {
		if t < a.ForgivenUntil {
			a.ForgivenUntil = t
		}
		return 0, 0
	}
	dt := uint64(t - a.ForgivenUntil)
	a.ForgivenUntil = t
	switch {
	case a.Balance > 0 && a.Ours.ForgivePerSecond > 0:
		byUs = min(perSecond(a.Ours.ForgivePerSecond, dt), uint64(a.Balance))
		a.Balance -= int64(byUs)
		a.Forgiven = addSat(a.Forgiven, byUs)
	case a.Balance < 0 && a.Theirs.ForgivePerSecond > 0:
		byPeer = min(perSecond(a.Theirs.ForgivePerSecond, dt), a.Owed())
		a.Balance = addInt(a.Balance, byPeer)
		a.ForgivenToUs = addSat(a.ForgivenToUs, byPeer)
	}
	return byUs, byPeer
}

// perSecond is rate*ns/1e9 without overflow, saturating.
func perSecond(rate, ns uint64) uint64 {
	hi, lo := bits.Mul64(rate, ns)
	if hi >= uint64(time.Second) {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, uint64(time.Second))
	return q
}

// Receive credits an accepted cheque c from the peer: only the increase
// over the last accepted total counts; it pays the debt first, and whatever
// exceeds the debt becomes surplus, never a debt of ours. It returns the
// increase and the part of it that became surplus, or cheque.ErrReplay /
// cheque.ErrNotIncreasing (the account is then unchanged). The signature,
// issuer, beneficiary and network must have been checked already.
func (a *Account) Receive(c *cheque.Cheque) (increase, toSurplus uint64, err error) {
	increase, err = cheque.Increase(cheque.Last{Cumulative: a.ReceivedTotal, Sequence: a.ReceivedSeq}, c)
	if err != nil {
		return 0, 0, err
	}
	a.ReceivedTotal, a.ReceivedSeq = c.Cumulative, c.Sequence
	if debt := a.Debt(); increase > debt {
		// Pay off the debt (if any: a peer may pay while we owe it) and
		// keep the rest as surplus. What we owe the peer stays owed.
		toSurplus = increase - debt
		a.Balance -= int64(debt)
		a.Surplus = addSat(a.Surplus, toSurplus)
	} else {
		a.Balance -= int64(increase)
	}
	return increase, toSurplus, nil
}

// NextCheque returns the cheque that pays everything we owe the peer, or
// false when we owe nothing. It does not change the account: Pay does, once
// the cheque is signed and durable.
func (a *Account) NextCheque(network uint32, self peer.ID, now time.Time) (cheque.Cheque, bool) {
	owed := a.Owed()
	if owed == 0 || a.SentTotal > math.MaxUint64-owed {
		return cheque.Cheque{}, false
	}
	return cheque.Cheque{
		Network: network, Issuer: self, Beneficiary: a.Peer,
		Cumulative: a.SentTotal + owed, Sequence: a.SentSeq + 1, Date: uint64(max(now.Unix(), 0)),
	}, true
}

// Pay records a cheque we issued to the peer and returns its increase over
// the previous one. A cheque that does not increase (replayed from the
// journal after it was already applied) changes nothing.
func (a *Account) Pay(c *cheque.Cheque) uint64 {
	if c.Sequence <= a.SentSeq || c.Cumulative <= a.SentTotal {
		return 0
	}
	inc := c.Cumulative - a.SentTotal
	a.SentTotal, a.SentSeq = c.Cumulative, c.Sequence
	a.Balance = addInt(a.Balance, inc)
	return inc
}

// addInt returns b+v, saturating at MaxInt64.
func addInt(b int64, v uint64) int64 {
	if v > math.MaxInt64 || b > math.MaxInt64-int64(v) {
		return math.MaxInt64
	}
	return b + int64(v)
}

// subInt returns b-v, saturating at MinInt64.
func subInt(b int64, v uint64) int64 {
	if v > math.MaxInt64 || b < math.MinInt64+int64(v) {
		return math.MinInt64
	}
	return b - int64(v)
}

// CountersSize is the length of the canonical encoding of Counters.
const CountersSize = 9 * 8

// AppendCanonical appends the counters' canonical encoding (CountersSize
// bytes, big-endian, in field order): the one form that journal entries and
// the checkpoint store both hash or persist, so the two can never diverge.
func (c *Counters) AppendCanonical(dst []byte) []byte {
	for _, v := range [...]uint64{c.Epoch, c.RelayedFor.Packets, c.RelayedFor.Bytes,
		c.RelayedBy.Packets, c.RelayedBy.Bytes, c.ControlIn.Packets, c.ControlIn.Bytes,
		c.ControlOut.Packets, c.ControlOut.Bytes} {
		dst = binary.BigEndian.AppendUint64(dst, v)
	}
	return dst
}
