package neigh

import (
	"time"

	"github.com/poolrelay/poolrelay/internal/confcheck"
)

// Config is the resolver's timing: the [neigh] section.
type Config struct {
	// RetransTime is the wait for an answer to the first probe of an
	// attempt; each further probe of the attempt waits twice as long as the
	// one before.
	RetransTime time.Duration `toml:"retrans_time"`
	// Probes is the number of probes of one attempt: after the last one's
	// wait passes unanswered, the neighbour is marked failed.
	Probes int `toml:"probes"`
	// ReachableTime is how long an answer is trusted: after it, the
	// neighbour is probed again while its MAC stays in use, and dropped only
	// if that attempt fails too.
	ReachableTime time.Duration `toml:"reachable_time"`
	// MaxBackoff caps the wait between failed attempts, which doubles after
	// each consecutive failure, so a dead next hop costs one probe per
	// MaxBackoff rather than a steady stream (and one log line per failure,
	// not per probe).
	MaxBackoff time.Duration `toml:"max_backoff"`
}

// DefaultConfig returns the defaults: three probes 0.5, 1 and 2 s apart (a
// neighbour is failed 3.5 s after the first unanswered probe, close to
// Linux's 3 s), answers trusted for 30 s (Linux's base_reachable_time) and
// failed attempts retried at most a minute apart.
func DefaultConfig() Config {
	return Config{
		RetransTime:   500 * time.Millisecond,
		Probes:        3,
		ReachableTime: 30 * time.Second,
		MaxBackoff:    time.Minute,
	}
}

// Validate reports values out of range.
func (c Config) Validate(errs confcheck.Errors) {
	if c.RetransTime < 10*time.Millisecond || c.RetransTime > time.Minute {
		errs.Addf("retrans_time", "%v is out of range: use 10ms to 1m", c.RetransTime)
	}
	if c.Probes < 1 || c.Probes > 10 {
		errs.Addf("probes", "%d is out of range: use 1 to 10", c.Probes)
	}
	if c.ReachableTime < time.Second || c.ReachableTime > time.Hour {
		errs.Addf("reachable_time", "%v is out of range: use 1s to 1h", c.ReachableTime)
	}
	if c.MaxBackoff < c.RetransTime || c.MaxBackoff > time.Hour {
		errs.Addf("max_backoff", "%v is out of range: use retrans_time (%v) to 1h", c.MaxBackoff, c.RetransTime)
	}
}
