package sched

import "fmt"

// Class is a traffic class, one bounded FIFO per class. Lower values are
// served first: Control and Priority in strict priority (each under its token
// bucket cap), then every backlogged class by deficit round robin, with the
// starvation guard reserved for Deprioritised, the lowest class.
type Class uint8

// The four classes, in the order the scheduler considers them.
const (
	// Control carries the relay's own frames (handshakes, heartbeats,
	// cheques, ARP and neighbour replies) injected by the control core.
	Control Class = iota
	// Priority carries frames relayed for major contributors.
	Priority
	// Normal carries frames relayed for balanced and light-consumer peers,
	// and for peers that have no published class yet.
	Normal
	// Deprioritised carries frames relayed for heavy consumers: served
	// last, but never below the floor share and never left waiting longer
	// than the maximum wait.
	Deprioritised

	// NumClasses is the number of classes; valid classes are below it.
	NumClasses = 4
)

var classNames = [NumClasses]string{"control", "priority", "normal", "deprioritised"}

// String returns the class name used in the configuration file and in
// statistics ("control", "priority", "normal", "deprioritised").
func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Valid reports whether c is one of the four classes.
func (c Class) Valid() bool { return c < NumClasses }

// ParseClass returns the class named s, as String spells it.
func ParseClass(s string) (Class, error) {
	for i, n := range classNames {
		if s == n {
			return Class(i), nil
		}
	}
	return 0, fmt.Errorf("sched: unknown class %q: use control, priority, normal or deprioritised", s)
}

// Relayed returns the egress class of a frame relayed for a peer of class
// peer, and whether the frame leaves with the deprioritised mark (the
// POOL header's FlagDeprioritised, set by a relay and never cleared).
// credits is whether the peer gives credit (score.Config.Credits: it has
// relayed for us at least the score's prior); marked is whether the frame
// arrived with the mark.
//
// A relay classes a frame by the peer that handed it over, so without the
// mark a heavy consumer would be deprioritised at its first hop only: from
// there on its frames would ride on that relay's standing (in the
// incentive simulation, package sim, freeriders kept 0.91 of an honest
// relay's goodput). The first relay that deprioritises a frame for a peer
// that gives no credit, a heavy consumer that has not relayed for it,
// marks it, and every relay after it queues the frame as Deprioritised
// whatever its own view of the peer that handed it over. A heavy consumer
// that does relay for us (transit makes honest links lopsided) is
// deprioritised here but not marked: marking those too lowered the honest
// relays' goodput in the simulation and not the freeriders'. The mark only
// ever lowers a frame's class, so nobody gains by forging it, and a relay
// that clears it must have been handed the frame by one that set it, under
// a hop MAC covering it.
func Relayed(peer Class, credits, marked bool) (Class, bool) {
	switch {
	case marked:
		return Deprioritised, true
	case peer == Deprioritised:
		return Deprioritised, !credits
	}
	return peer, false
}
