// Package score is the generosity score of POOL's operator model and the
// classes derived from it, computed only from bytes this relay observed.
//
// A peer's score is what it relayed for us over what we relayed for it,
// each smoothed by an exponentially weighted moving average with a
// configurable half-life (Tor smooths bandwidth with a 30 s half-life), plus
// a prior so that a peer with no traffic has a defined score instead of 0/0.
// The prior is set at a newcomer score below 1, so a fresh identity starts
// low and cannot escape a bad record by re-keying (Tribler's lesson). Classes
// are re-decided on a fixed tick, as BitTorrent re-decides its unchokes, and
// with hysteresis so a score near a boundary does not flap.
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
	// HalfLife of the moving averages.
	HalfLife time.Duration
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
	// us and by us for the peer, decayed to At.
	By, For float64
	// At is when the averages were last decayed, Unix ns.
	At int64
	// Class is the decided class.
	Class Class
}

// NewTracker returns the tracker of a peer first seen at now: no traffic,
// and the class of the newcomer score.
func (c Config) NewTracker(now time.Time) Tracker {
	return Tracker{At: now.UnixNano(), Class: Of(c.NewcomerScore)}
}

// factor is the decay over dt nanoseconds.
func (c Config) factor(dt int64) float64 {
	if dt <= 0 {
		return 1
	}
	return math.Exp2(-float64(dt) / float64(c.HalfLife))
}

// Add decays t to now and adds the bytes relayed by the peer (for us) and for
// the peer (by us) since the last call. A clock stepped back decays nothing.
func (c Config) Add(t *Tracker, now time.Time, by, forPeer uint64) {
	n := now.UnixNano()
	if f := c.factor(n - t.At); f != 1 {
		t.By *= f
		t.For *= f
	}
	if n > t.At {
		t.At = n
	}
	t.By += float64(by)
	t.For += float64(forPeer)
}

// Score is the peer's generosity score at now.
func (c Config) Score(t *Tracker, now time.Time) float64 {
	f := c.factor(now.UnixNano() - t.At)
	return (t.By*f + c.PriorBytes*c.NewcomerScore) / (t.For*f + c.PriorBytes)
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
