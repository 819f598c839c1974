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
