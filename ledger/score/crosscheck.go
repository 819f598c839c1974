package score

import (
	"math"
	"strings"

	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/peer"
)

// Band is the honest drift tolerated between two ends' counters: frames lost
// on the wire and frames in flight when the two snapshots were taken.
type Band struct {
	// Fraction of the larger of the two values (0.02 is 2%).
	Fraction float64
	// SlackBytes and SlackPackets are absolute allowances.
	SlackBytes, SlackPackets uint64
}

// allowed is the largest difference tolerated between a and c given slack.
func (b Band) allowed(a, c, slack uint64) uint64 {
	rel := b.Fraction * float64(max(a, c))
	if rel >= math.MaxUint64 {
		return math.MaxUint64
	}
	s := uint64(rel) + slack
	if s < slack {
		return math.MaxUint64
	}
	return s
}

// Mismatch describes the counter pair that disagreed most.
type Mismatch struct {
	// What names our counter ("relayed_for.bytes", ...); the peer's
	// counterpart is its mirror ("relayed_by.bytes").
	What string
	// Ours and Theirs are the two values, Allowed the tolerated difference.
	Ours, Theirs, Allowed uint64
}

// CrossCheck compares our cumulative counters about a peer with the
// counters the peer signed about us (taken from its heartbeat after the
// signature was verified). Each of our directions mirrors one of the peer's:
// what we relayed for it is what it handed to us. It reports the pair with
// the largest excess beyond the band, and false when all pairs agree.
func CrossCheck(ours, theirs account.Counters, b Band) (Mismatch, bool) {
	pairs := [...]struct {
		what        string
		ours, their uint64
	}{
		{"relayed_for.bytes", ours.RelayedFor.Bytes, theirs.RelayedBy.Bytes},
		{"relayed_for.packets", ours.RelayedFor.Packets, theirs.RelayedBy.Packets},
		{"relayed_by.bytes", ours.RelayedBy.Bytes, theirs.RelayedFor.Bytes},
		{"relayed_by.packets", ours.RelayedBy.Packets, theirs.RelayedFor.Packets},
		{"control_in.bytes", ours.ControlIn.Bytes, theirs.ControlOut.Bytes},
		{"control_in.packets", ours.ControlIn.Packets, theirs.ControlOut.Packets},
		{"control_out.bytes", ours.ControlOut.Bytes, theirs.ControlIn.Bytes},
		{"control_out.packets", ours.ControlOut.Packets, theirs.ControlIn.Packets},
	}
	var worst Mismatch
	var worstExcess uint64
	found := false
	for _, p := range pairs {
		diff := max(p.ours, p.their) - min(p.ours, p.their)
		slack := b.SlackBytes
		if strings.HasSuffix(p.what, ".packets") {
			slack = b.SlackPackets
		}
		allowed := b.allowed(p.ours, p.their, slack)
		if diff > allowed && (!found || diff-allowed > worstExcess) {
			found, worstExcess = true, diff-allowed
			worst = Mismatch{What: p.what, Ours: p.ours, Theirs: p.their, Allowed: allowed}
		}
	}
	return worst, found
}

// Own is the relay's own generosity as its peers report it: each peer's
// latest signed counters say what we relayed for it (its RelayedBy) and what
// it relayed for us (its RelayedFor). It is for display (status), not for
// any decision. Own is not safe for concurrent use.
type Own struct {
	claims map[peer.ID]account.Counters
}

// Report records the latest counters a peer signed about us. Counters are
// cumulative, so the latest claim replaces the previous one.
func (o *Own) Report(p peer.ID, claim account.Counters) {
	if o.claims == nil {
		o.claims = make(map[peer.ID]account.Counters)
	}
	o.claims[p] = claim
}

// Totals returns the bytes we relayed for our peers and the bytes they
// relayed for us, summed over their latest claims.
func (o *Own) Totals() (contributed, consumed uint64) {
	for _, c := range o.claims {
		contributed += c.RelayedBy.Bytes
		consumed += c.RelayedFor.Bytes
	}
	return contributed, consumed
}

// Score is contributed/consumed with a prior of priorBytes on each side, so
// that a relay nobody has reported on yet shows 1.0 rather than 0/0.
func (o *Own) Score(priorBytes float64) float64 {
	c, u := o.Totals()
	return Generosity(c, u, priorBytes)
}

// Generosity is the POOL operator doc's generosity_score =
// bytes_contributed / bytes_consumed, with priorBytes added to both sides:
// without traffic it is 1.0 (balanced) instead of 0/0, and the first few
// frames cannot swing it to an extreme class.
func Generosity(contributed, consumed uint64, priorBytes float64) float64 {
	return (float64(contributed) + priorBytes) / (float64(consumed) + priorBytes)
}

// Peers is the number of peers that have reported.
func (o *Own) Peers() int { return len(o.claims) }

// Witness cross-checks a stream of heartbeat claims from one peer against
// our own counters. Both sides' totals are compared as increments since a
// baseline taken at the first claim, not as lifetime totals: either side may
// have restarted (a relay that crashed loses the traffic counted since its
// last checkpoint, and a restarted peer reports a new epoch), and comparing
// lifetime totals would then show a mismatch forever. A claim with a new
// epoch, or below the baseline, starts a new baseline.
type Witness struct {
	ours, theirs account.Counters
	have         bool
}

// Check compares the peer's claim with our counters (lifetime totals, as
// the account keeps them) and reports a mismatch beyond the band.
func (w *Witness) Check(ours, theirs account.Counters, b Band) (Mismatch, bool) {
	if !w.have || theirs.Epoch != w.theirs.Epoch || !atLeast(theirs, w.theirs) || !atLeast(ours, w.ours) {
		w.ours, w.theirs, w.have = ours, theirs, true
		return Mismatch{}, false
	}
	return CrossCheck(since(ours, w.ours), since(theirs, w.theirs), b)
}

func atLeast(c, base account.Counters) bool {
	for i, v := range flat(c) {
		if v < flat(base)[i] {
			return false
		}
	}
	return true
}

func since(c, base account.Counters) account.Counters {
	d := func(a, b account.Traffic) account.Traffic {
		return account.Traffic{Packets: a.Packets - b.Packets, Bytes: a.Bytes - b.Bytes}
	}
	return account.Counters{RelayedFor: d(c.RelayedFor, base.RelayedFor), RelayedBy: d(c.RelayedBy, base.RelayedBy),
		ControlIn: d(c.ControlIn, base.ControlIn), ControlOut: d(c.ControlOut, base.ControlOut)}
}

func flat(c account.Counters) [8]uint64 {
	return [8]uint64{c.RelayedFor.Packets, c.RelayedFor.Bytes, c.RelayedBy.Packets, c.RelayedBy.Bytes,
		c.ControlIn.Packets, c.ControlIn.Bytes, c.ControlOut.Packets, c.ControlOut.Bytes}
}
