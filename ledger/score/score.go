// Package score is the generosity score of POOL's operator model and the
// classes derived from it, computed only from bytes this relay observed.
//
// A peer's score is what it relayed for us over what we relayed for it,
// each an exponentially weighted moving average, plus a prior so that a
// peer with no traffic has a defined score instead of 0/0.
//
// # Standing follows contribution; idleness changes nothing
//
// The averages decay with traffic, not with time: every byte exchanged
// with the peer, either way, ages what came before, so that the score is
// the peer's balance over roughly its last HalfVolume bytes with us
// (half of the weight lies in the most recent HalfVolume). A peer that goes
// quiet keeps its score and its class for as long as it stays quiet: a
// proven contributor is not demoted for resting, and a heavy consumer is
// not forgiven for waiting. Only new traffic moves the score, and it moves
// it in the direction of that traffic: a contributor that turns consumer
// falls within a few half-volumes of consumption, a consumer rises only by
// relaying.
//
// The first model, moving averages with a 30 s half-life in time, had both
// averages decay toward zero when the link was idle, so the score fell back
// to the newcomer prior: a relay that had carried 5.5 MB for a peer and used
// 1.3 kB was a heavy consumer again after two idle minutes, and a heavy
// consumer became a light consumer by waiting. In the incentive simulation
// (package sim, 10,000 relays, five idle minutes) idle relays lost class at
// 1,101 of the 1,777 (relay, neighbour) pairs watched; with the
// traffic-clocked averages, at none. Decaying toward a neutral value or
// with two time horizons would only slow the same drift down; a clock that
// ticks with traffic removes it.
//
// A new identity still starts low: the prior weighs NewcomerScore (0.25, a
// heavy consumer) with PriorBytes, so a fresh identity is deprioritised
// until it has relayed for us, and re-keying never escapes a bad record
// (Tribler's lesson). Classes are re-decided on a fixed tick, as BitTorrent
// re-decides its unchokes, and with hysteresis so a score near a boundary
// does not flap.
//
// # Standing is passed on only by peers that have some
//
// A relay that hands a peer frames counts them as relayed by that peer, the
// peer's contribution. Counted for every frame, this let two identities
// trade standing at an honest relay H: Y pumps frames through H to X, H
// counts X as relaying for it, X's own traffic then rides in priority, and
// Y, a heavy consumer, is replaced when choked.
//
// So frames relayed on behalf of a peer that gives no credit (Credits: it
// has relayed less than PriorBytes for us, by the averages) are charged
// like any others but are not the next hop's contribution: the data plane
// counts them apart (account.Counters.RelayedByUncredited) and the ledger
// leaves them out of that peer's score (they neither add to it nor age
// it). Fresh identities therefore cannot create standing among themselves,
// however many there are; it enters only from the relay's own end nodes'
// traffic, which always counts, and spreads with the relaying of peers
// that earned some. Excluding the frames of every heavy consumer instead
// was tried in the simulation and starved honest relays too: transit makes
// many honest links lopsided, so most honest relays fell to heavy consumer
// and stayed there. A new identity still starts low, and idleness still
// changes nothing: Credits depends on the traffic-clocked averages alone.
//
// Credits also decides the data plane's deprioritised mark (sched.Relayed):
// a frame deprioritised for a peer that gives no credit leaves marked, and
// every relay after it deprioritises it too, so a freerider no longer rides
// on its first hop's standing.
//
// Before and after, in the incentive simulation (package sim, make sim:
// 10,000 relays, seed 1, every egress provisioned at 1/1.5 of its demand),
// relative to honest relays' goodput:
//
//	                                  before        after
//	freerider_goodput_ratio           0.912         0.581
//	collusion_gain (vs not trading)   0.110         -0.006
//	collude_pair, collude_clique      1.066, 0.929  0.588, 0.590
//	whitewash_gain                    -0.024        -0.035
//
// with no honest relay disconnected and no idle contributor demoted either
// way. The target freerider_goodput_ratio < 0.5 is met under heavier
// congestion (0.316 with every egress at 1/3 of its demand) but not at 1/1.5: a deprioritised frame is
// served last but never blocked, and the hops after a flow's first have
// room to spare (package sim).
//
// Claims in a peer's heartbeat never move its score: CrossCheck compares
// them with our own counters and reports a mismatch, which is journalled and
// shown but not punished, since two colluding identities can sign each other
// any amount.
package score

import (
	"math"
	"time"
)

// Class is a peer's service class. Higher is better; the data plane maps it
// to a queue priority.
type Class uint8

// Classes of the POOL operator model, with their score ranges.
const (
	// HeavyConsumer: score < 0.5. Deprioritised, never blocked.
	HeavyConsumer Class = iota
	// LightConsumer: 0.5 to 1.0. Normal service.
	LightConsumer
	// Balanced: 1.0 to 2.0. Normal service.
	Balanced
	// MajorContributor: score > 2.0. Priority, first in queue.
	MajorContributor
)

// NumClasses is the number of classes.
const NumClasses = 4

// lower[k] is the score at which class k+1 begins.
var lower = [NumClasses - 1]float64{0.5, 1.0, 2.0}

// String is the class name used in logs, exports and metrics labels.
func (c Class) String() string {
	switch c {
	case HeavyConsumer:
		return "heavy_consumer"
	case LightConsumer:
		return "light_consumer"
	case Balanced:
		return "balanced"
	case MajorContributor:
		return "major_contributor"
	}
	return "unknown"
}

// Of returns the class of a score without hysteresis. The seed's ranges are
// closed at the bottom except the top one: exactly 2.0 is still balanced.
func Of(score float64) Class {
	switch {
	case score > lower[2]:
		return MajorContributor
	case score >= lower[1]:
		return Balanced
	case score >= lower[0]:
		return LightConsumer
	}
	return HeavyConsumer
}

// Config parameterises the score.
type Config struct {
	// HalfVolume is the traffic with the peer, in bytes counted both ways,
	// over which the weight of what came before halves. Time alone never
	// decays the averages.
	HalfVolume float64
	// Hysteresis is the fractional margin past a class boundary that a score
	// must reach to change class (0.1: rise above 2.2 to become a major
	// contributor, fall below 1.8 to stop being one).
	Hysteresis float64
	// PriorBytes weighs the prior: the score of a peer is
	// (by + PriorBytes*NewcomerScore) / (for + PriorBytes).
	PriorBytes float64
	// NewcomerScore is the score of a peer with no traffic yet.
	NewcomerScore float64
}

// Tracker is the score state of one peer.
type Tracker struct {
	// By and For are the moving averages of bytes relayed by the peer for
	// us and by us for the peer, aged by the traffic since, not by time.
	By, For float64
	// At is when traffic with the peer was last added, Unix ns (for
	// display; the score does not depend on it).
	At int64
	// Class is the decided class.
	Class Class
}

// NewTracker returns the tracker of a peer first seen at now: no traffic,
// and the class of the newcomer score.
func (c Config) NewTracker(now time.Time) Tracker {
	return Tracker{At: now.UnixNano(), Class: Of(c.NewcomerScore)}
}

// Add adds the bytes relayed by the peer (for us) and for the peer (by us)
// since the last call, and ages what came before by their sum. The new
// bytes are weighted as if they had arrived evenly over their own volume,
// so the result does not depend on how finely the traffic is reported:
// one call with a megabyte and a thousand calls with a kilobyte each, in
// the same proportion, give the same averages. Zero bytes change nothing,
// however much time has passed.
func (c Config) Add(t *Tracker, now time.Time, by, forPeer uint64) {
	if n := now.UnixNano(); n > t.At {
		t.At = n
	}
	v := float64(by) + float64(forPeer)
	if v == 0 {
		return
	}
	x := v / c.HalfVolume * math.Ln2
	f := math.Exp(-x)
	// Weight of a byte spread evenly over the chunk: (1-e^-x)/x, which is
	// 1 for a chunk much smaller than the half-volume.
	w := 1.0
	if x > 1e-9 {
		w = -math.Expm1(-x) / x
	}
	t.By = t.By*f + float64(by)*w
	t.For = t.For*f + float64(forPeer)*w
}

// Credits reports whether frames relayed for the peer count as
// contribution of the peer they are handed to: only once the peer has
// itself relayed for us at least PriorBytes (by the averages, so
// uncredited bytes and idleness change nothing). Standing is passed on
// only by peers that have some, so fresh identities cannot create it
// among themselves; it starts from the relay's own end nodes' traffic,
// which always counts.
func (c Config) Credits(t *Tracker) bool { return t.By >= c.PriorBytes }

// Score is the peer's generosity score. It depends on the traffic added
// only; now is accepted for the callers' convenience and does not matter.
func (c Config) Score(t *Tracker, now time.Time) float64 {
	return (t.By + c.PriorBytes*c.NewcomerScore) / (t.For + c.PriorBytes)
}

// Decide re-decides the class at now (call it on the class tick) and
// returns the previous class and the score used. A class moves up only once
// the score clears the next boundary by the hysteresis margin, and down only
// once it falls below its own boundary by the margin.
func (c Config) Decide(t *Tracker, now time.Time) (prev Class, score float64) {
	prev = t.Class
	score = c.Score(t, now)
	k := t.Class
	for k < MajorContributor && score >= lower[k]*(1+c.Hysteresis) && (k+1 != MajorContributor || score > lower[k]) {
		k++
	}
	for k > HeavyConsumer && score < lower[k-1]*(1-c.Hysteresis) {
		k--
	}
	t.Class = k
	return prev, score
}

// MarshalText implements encoding.TextMarshaler, so exports show the name.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }
