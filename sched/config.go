package sched

import "github.com/poolrelay/poolrelay/internal/confcheck"

// Config is the [sched] section: the class queues and the policy that one
// scheduler per (worker, egress port, TX queue) applies. The egress rate
// itself is per port ([[port]] egress_rate_mbps) and reaches New through
// Egress.
type Config struct {
	// FloorPercent is the share of the bytes sent that the Deprioritised
	// class is guaranteed while it has frames queued, 0 to 50. 0 turns the
	// floor off; MaxWaitMicros still keeps the class from starving.
	FloorPercent int `toml:"floor_percent"`
	// MaxWaitMicros bounds how long the head-of-line Deprioritised frame
	// waits at the head of its queue before it is served next.
	MaxWaitMicros int `toml:"max_wait_us"`
	// ShaperBurstMicros is the depth of the egress shaper's token bucket, in
	// microseconds at the shaped rate: what Dequeue may hand out at once
	// after the queue was idle. Time rather than bytes, because the bucket
	// absorbs the gaps between the worker's polls, whatever the port's
	// speed; every byte of it may sit in the NIC's TX ring, so it is also
	// the latency the shaper lets the NIC add. Unused on unshaped ports.
	ShaperBurstMicros int `toml:"shaper_burst_us"`
	// DefaultClass is the class of frames relayed for a peer that has no
	// published class yet: "priority", "normal" or "deprioritised".
	DefaultClass string `toml:"default_class"`

	// Control and Priority are served in strict priority up to their rate.
	Control  StrictClassConfig `toml:"control"`
	Priority StrictClassConfig `toml:"priority"`
	// Normal and Deprioritised are served by deficit round robin only.
	Normal        ClassConfig `toml:"normal"`
	Deprioritised ClassConfig `toml:"deprioritised"`
}

// ClassConfig configures a class served by deficit round robin.
type ClassConfig struct {
	// QueueFrames is the queue's capacity in frames; a frame arriving at a
	// full queue is dropped and counted (tail drop).
	QueueFrames int `toml:"queue_frames"`
	// QuantumBytes is the class's deficit round robin quantum: backlogged
	// classes share what strict priority leaves in proportion to their
	// quanta. At least the largest frame keeps each pick O(1).
	QuantumBytes int `toml:"quantum_bytes"`
}

// StrictClassConfig configures a strict-priority class. Its token bucket
// caps how much it takes ahead of the others; beyond the cap its frames are
// served by deficit round robin like any other class, so the cap limits
// precedence, never throughput on an otherwise idle link.
type StrictClassConfig struct {
	// QueueFrames is the queue's capacity in frames (tail drop).
	QueueFrames int `toml:"queue_frames"`
	// QuantumBytes is the class's deficit round robin quantum once it is
	// over its rate.
	QuantumBytes int `toml:"quantum_bytes"`
	// RatePercent is the token bucket's rate, in percent of the egress rate
	// (the port's shaped rate, or its line rate when it is not shaped).
	RatePercent int `toml:"rate_percent"`
	// BurstBytes is the token bucket's depth: how far the class may run
	// ahead of its rate in strict priority.
	BurstBytes int `toml:"burst_bytes"`
}

// DefaultConfig returns the defaults documented in the package doc and in
// configs/default.toml.
func DefaultConfig() Config {
	return Config{
		FloorPercent:      10,
		MaxWaitMicros:     1000,
		ShaperBurstMicros: 50,
		DefaultClass:      "normal",
		Control:           StrictClassConfig{QueueFrames: 256, QuantumBytes: 3000, RatePercent: 5, BurstBytes: 16384},
		Priority:          StrictClassConfig{QueueFrames: 1024, QuantumBytes: 3000, RatePercent: 60, BurstBytes: 65536},
		Normal:            ClassConfig{QueueFrames: 2048, QuantumBytes: 3000},
		Deprioritised:     ClassConfig{QueueFrames: 2048, QuantumBytes: 1500},
	}
}

// Limits of the configuration values. Queues are bounded so a scheduler's
// memory stays small (16 bytes per slot, four queues per port and worker);
// quanta below 64 bytes (the smallest Ethernet frame) would need many
// rounds per pick.
const (
	minQueueFrames = 16
	maxQueueFrames = 1 << 16
	minQuantum     = 64
	maxQuantum     = 1 << 20
	minBurst       = 64
	maxBurst       = 1 << 26
	maxFloor       = 50
	maxWaitLimitUs = 1_000_000
	// A shaper burst beyond 10 ms would let the NIC ring, not the class
	// queues, hold the backlog on any port speed.
	maxShaperBurstUs = 10_000
)

// Validate reports every problem with the section.
func (c Config) Validate(errs confcheck.Errors) {
	if c.FloorPercent < 0 || c.FloorPercent > maxFloor {
		errs.Addf("floor_percent", "%d is out of range: use 0 (off) to %d", c.FloorPercent, maxFloor)
	}
	if c.MaxWaitMicros < 1 || c.MaxWaitMicros > maxWaitLimitUs {
		errs.Addf("max_wait_us", "%d is out of range: use 1 to %d (1000 is typical)", c.MaxWaitMicros, maxWaitLimitUs)
	}
	if c.ShaperBurstMicros < 1 || c.ShaperBurstMicros > maxShaperBurstUs {
		errs.Addf("shaper_burst_us", "%d is out of range: use 1 to %d (50 is typical)", c.ShaperBurstMicros, maxShaperBurstUs)
	}
	switch cl, err := ParseClass(c.DefaultClass); {
	case err != nil:
		errs.Addf("default_class", "unknown class %q: use priority, normal or deprioritised", c.DefaultClass)
	case cl == Control:
		errs.Addf("default_class", "control is reserved for the relay's own frames: use priority, normal or deprioritised")
	}
	c.Control.validate(errs.Sub("control"))
	c.Priority.validate(errs.Sub("priority"))
	c.Normal.validate(errs.Sub("normal"))
	c.Deprioritised.validate(errs.Sub("deprioritised"))
	// Strict priority runs ahead of deficit round robin: if the two caps and
	// the floor took the whole link, Normal would get nothing.
	if sum := c.Control.RatePercent + c.Priority.RatePercent + c.FloorPercent; sum >= 100 {
		errs.Addf("priority.rate_percent", "control.rate_percent + priority.rate_percent + floor_percent is %d: keep it below 100 so that normal traffic is never starved", sum)
	}
}

func (c ClassConfig) validate(errs confcheck.Errors) {
	validateQueue(errs, c.QueueFrames, c.QuantumBytes)
}

func (c StrictClassConfig) validate(errs confcheck.Errors) {
	validateQueue(errs, c.QueueFrames, c.QuantumBytes)
	if c.RatePercent < 1 || c.RatePercent > 99 {
		errs.Addf("rate_percent", "%d is out of range: use 1 to 99", c.RatePercent)
	}
	if c.BurstBytes < minBurst || c.BurstBytes > maxBurst {
		errs.Addf("burst_bytes", "%d is out of range: use %d to %d", c.BurstBytes, minBurst, maxBurst)
	}
}

func validateQueue(errs confcheck.Errors, frames, quantum int) {
	if frames < minQueueFrames || frames > maxQueueFrames {
		errs.Addf("queue_frames", "%d is out of range: use %d to %d", frames, minQueueFrames, maxQueueFrames)
	}
	if quantum < minQuantum || quantum > maxQuantum {
		errs.Addf("quantum_bytes", "%d is out of range: use %d to %d (at least the largest frame, e.g. 1518)", quantum, minQuantum, maxQuantum)
	}
}
