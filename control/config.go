package control

import (
	"time"

	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/internal/confcheck"
	"github.com/poolrelay/poolrelay/ledger/peer"
)

// Enrollment policies.
const (
	EnrollOpen   = "open"
	EnrollListed = "listed"
)

// Config is the [control] section: enrollment policy, the handshake's puzzle,
// heartbeats and routes.
type Config struct {
	// Enroll is "open" (any identity may enroll) or "listed" (only
	// ListedKeys).
	Enroll string `toml:"enroll"`
	// ListedKeys are the Ed25519 identity keys (64 hex digits) allowed to
	// enroll under "listed".
	ListedKeys []string `toml:"listed_keys"`
	// HeartbeatInterval is how often a heartbeat goes to each peer.
	HeartbeatInterval time.Duration `toml:"heartbeat_interval"`
	// HeartbeatTolerance is how far a heartbeat's signed time (and any
	// control message's timestamp) may be from our clock.
	HeartbeatTolerance time.Duration `toml:"heartbeat_tolerance"`
	// PeerTimeout: a peer silent this long is disconnected.
	PeerTimeout time.Duration `toml:"peer_timeout"`
	// Tick is how often the core reads the data plane's counters, runs the
	// ledger and sweeps expired routes.
	Tick time.Duration `toml:"tick"`
	// Puzzle: difficulty in normal operation and past the flood rate, its
	// cap, the INIT rate (per second) that counts as a flood and how fast
	// the estimate decays.
	PuzzleBase      uint8         `toml:"puzzle_base"`
	PuzzleFlood     uint8         `toml:"puzzle_flood"`
	PuzzleMax       uint8         `toml:"puzzle_max"`
	PuzzleFloodRate float64       `toml:"puzzle_flood_rate"`
	PuzzleHalfLife  time.Duration `toml:"puzzle_half_life"`
	// CookieBucket is the handshake cookie's time bucket.
	CookieBucket time.Duration `toml:"cookie_bucket"`
	// MaxPuzzle is the hardest puzzle we solve when we enroll elsewhere.
	MaxPuzzle uint8 `toml:"max_puzzle"`
	// RouteMaxLifetime caps (and is the default of) a route's lifetime.
	RouteMaxLifetime time.Duration `toml:"route_max_lifetime"`
	// MaxPeers bounds enrolled peers: the data plane's peer and key slots.
	MaxPeers int `toml:"max_peers"`
	// MaxRoutesPerPeer bounds the routes one peer may open.
	MaxRoutesPerPeer int `toml:"max_routes_per_peer"`
	// EnrollTimeout bounds an outbound enrollment.
	EnrollTimeout time.Duration `toml:"enroll_timeout"`
	// StaticPeers are lab peers declared here rather than enrolled, and
	// StaticRoutes the session ranges relayed between them (see
	// StaticPeer). Installed at start and by SetConfig.
	StaticPeers  []StaticPeer  `toml:"static_peer"`
	StaticRoutes []StaticRange `toml:"static_route"`
}

// DefaultConfig returns the defaults documented in configs/default.toml.
func DefaultConfig() Config {
	p := handshake.DefaultPuzzleConfig()
	return Config{
		Enroll:             EnrollOpen,
		ListedKeys:         []string{},
		HeartbeatInterval:  5 * time.Second,
		HeartbeatTolerance: 30 * time.Second,
		PeerTimeout:        30 * time.Second,
		Tick:               time.Second,
		PuzzleBase:         p.Base,
		PuzzleFlood:        p.Flood,
		PuzzleMax:          p.Max,
		PuzzleFloodRate:    p.FloodRate,
		PuzzleHalfLife:     p.HalfLife,
		CookieBucket:       handshake.DefaultCookieBucket,
		MaxPuzzle:          handshake.DefaultMaxDifficulty,
		RouteMaxLifetime:   time.Hour,
		MaxPeers:           4096,
		MaxRoutesPerPeer:   1024,
		EnrollTimeout:      30 * time.Second,
	}
}

// Puzzle returns the handshake puzzle configuration.
func (c Config) Puzzle() handshake.PuzzleConfig {
	return handshake.PuzzleConfig{Base: c.PuzzleBase, Flood: c.PuzzleFlood, Max: c.PuzzleMax,
		FloodRate: c.PuzzleFloodRate, HalfLife: c.PuzzleHalfLife}
}

// Policy returns the enrollment policy. Call Validate first.
func (c Config) Policy() handshake.Policy {
	if c.Enroll == EnrollOpen {
		return handshake.OpenPolicy
	}
	keys := make([]identity.PublicKey, 0, len(c.ListedKeys))
	for _, s := range c.ListedKeys {
		if id, err := peer.Parse(s); err == nil {
			keys = append(keys, identity.PublicKey(id))
		}
	}
	return handshake.ListPolicy(keys...)
}

// Validate checks the [control] section.
func (c Config) Validate(errs confcheck.Errors) {
	switch c.Enroll {
	case EnrollOpen:
	case EnrollListed:
		if len(c.ListedKeys) == 0 {
			errs.Addf("listed_keys", "enroll = \"listed\" with no listed keys would refuse everyone")
		}
	default:
		errs.Addf("enroll", "%q must be \"open\" or \"listed\"", c.Enroll)
	}
	for i, s := range c.ListedKeys {
		if _, err := peer.Parse(s); err != nil {
			errs.Addf("listed_keys", "entry %d (%q) is not a 64-hex-digit Ed25519 key", i, s)
		}
	}
	if c.HeartbeatInterval < 100*time.Millisecond {
		errs.Addf("heartbeat_interval", "%v is below 100ms: each heartbeat costs an Ed25519 signature per peer", c.HeartbeatInterval)
	}
	if c.HeartbeatTolerance < time.Second {
		errs.Addf("heartbeat_tolerance", "%v is below 1s: clocks and paths need some slack", c.HeartbeatTolerance)
	}
	if c.PeerTimeout < 2*c.HeartbeatInterval {
		errs.Addf("peer_timeout", "%v must be at least two heartbeat intervals (%v)", c.PeerTimeout, 2*c.HeartbeatInterval)
	}
	if c.Tick <= 0 || c.Tick > c.HeartbeatInterval {
		errs.Addf("tick", "%v must be positive and at most heartbeat_interval", c.Tick)
	}
	if err := c.Puzzle().Validate(); err != nil {
		errs.Addf("puzzle_base", "%v", err)
	}
	if c.CookieBucket < time.Second {
		errs.Addf("cookie_bucket", "%v is below 1s: clients could not answer in time", c.CookieBucket)
	}
	if c.MaxPuzzle > handshake.MaxDifficulty {
		errs.Addf("max_puzzle", "%d exceeds %d", c.MaxPuzzle, handshake.MaxDifficulty)
	}
	if c.RouteMaxLifetime < time.Second {
		errs.Addf("route_max_lifetime", "%v is below 1s", c.RouteMaxLifetime)
	}
	if c.MaxPeers < 1 || c.MaxPeers > 1<<20 {
		errs.Addf("max_peers", "%d must be between 1 and 1048576", c.MaxPeers)
	}
	if c.MaxRoutesPerPeer < 1 {
		errs.Addf("max_routes_per_peer", "%d must be at least 1", c.MaxRoutesPerPeer)
	}
	if c.EnrollTimeout < time.Second {
		errs.Addf("enroll_timeout", "%v is below 1s", c.EnrollTimeout)
	}
	if len(c.StaticPeers) > c.MaxPeers {
		errs.Addf("static_peer", "%d static peers exceed max_peers (%d)", len(c.StaticPeers), c.MaxPeers)
	}
	c.validateStatic(errs)
}
