package control

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/internal/confcheck"
	"github.com/poolrelay/poolrelay/pool/proto"
)

// This file holds what the operator does through the control socket
// (pool_relay unenroll, route add|del, config apply). Like Peers and Routes,
// each method hands its work to Run's goroutine and waits for it.

// Unenroll ends an enrolled peer's session (pool_relay unenroll): an
// authenticated CLOSE to the peer, its routes removed (each journalled as
// ROUTE_CLOSE, the other end told), its hop keys cleared and its slot freed,
// and the disconnection recorded by the ledger. The account stays, debt
// included: a peer that enrolls again owes what it owed. ErrUnknownPeer if
// key is not enrolled. A kept peer (Keep, Options.Peers) is no longer kept
// nor persisted, whether its session is up or it is reconnecting.
func (c *Core) Unenroll(ctx context.Context, key identity.PublicKey) error {
	var err error
	if derr := c.do(ctx, func() {
		ps := c.peers[key]
		kept := c.wanted[key] != nil
		c.forget(key)
		if ps == nil {
			if !kept {
				err = fmt.Errorf("%w: %s", ErrUnknownPeer, key)
			}
			return
		}
		c.drop(ps, ReasonUnenrolled, true, "unenrolled by the operator")
	}); derr != nil {
		return derr
	}
	return err
}

// StaticRoute is a route the operator installs (pool_relay route add)
// between two enrolled peers: frames of Session from From are relayed to To,
// and frames of proto.ReverseSession(Session) from To back to From. Where
// they go (port, addresses, MAC, VLAN) is each peer's session endpoint, as
// for the routes peers open.
type StaticRoute struct {
	Session  [16]byte
	From, To identity.PublicKey
	// Lifetime removes the route after this long; 0 keeps it until
	// CloseRoute or until either peer leaves. It is not capped by
	// route_max_lifetime, which bounds what peers may ask for.
	Lifetime time.Duration
}

// ParseSession parses a hop session id written as 32 hex digits, the form
// pool_relay routes prints.
func ParseSession(s string) ([16]byte, error) {
	var id [16]byte
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("%w: session id %q is not 32 hex digits", ErrInvalidRoute, s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: session id %q is not 32 hex digits", ErrInvalidRoute, s)
	}
	return id, nil
}

// AddRoute installs a static route and its reverse, journalled as
// ROUTE_OPEN, and returns it as Routes would list it. No peer is told: the
// operator arranges for From to send on Session. A static route is neither
// renewed nor closed by the peers' ROUTE_OPEN and ROUTE_CLOSE, and counts
// against neither peer's max_routes_per_peer; it goes when its lifetime ends,
// with CloseRoute, or when either peer's session ends (a peer that enrolls
// again does not get it back).
//
// Errors: ErrUnknownPeer (either end not enrolled), ErrInvalidRoute (From
// is To, the zero session id, a negative lifetime), ErrRouteExists (the id
// or its reverse is already a route or a peer's session), or the data
// plane's (a full table: route.ErrFull).
func (c *Core) AddRoute(ctx context.Context, s StaticRoute) (RouteInfo, error) {
	var (
		info RouteInfo
		err  error
	)
	if derr := c.do(ctx, func() { info, err = c.addRoute(s) }); derr != nil {
		return RouteInfo{}, derr
	}
	return info, err
}

func (c *Core) addRoute(s StaticRoute) (RouteInfo, error) {
	from, to := c.peers[s.From], c.peers[s.To]
	rev := proto.ReverseSession(s.Session)
	switch {
	case from == nil:
		return RouteInfo{}, fmt.Errorf("%w: from %s", ErrUnknownPeer, s.From)
	case to == nil:
		return RouteInfo{}, fmt.Errorf("%w: to %s", ErrUnknownPeer, s.To)
	case from == to:
		return RouteInfo{}, fmt.Errorf("%w: from and to are the same peer", ErrInvalidRoute)
	// The zero id and its reverse are what handshake frames carry.
	case s.Session == [16]byte{} || rev == [16]byte{}:
		return RouteInfo{}, fmt.Errorf("%w: the zero session id", ErrInvalidRoute)
	case s.Lifetime < 0:
		return RouteInfo{}, fmt.Errorf("%w: negative lifetime %v", ErrInvalidRoute, s.Lifetime)
	case c.routes[s.Session] != nil || c.routes[rev] != nil || c.isPeerSession(s.Session) || c.isPeerSession(rev):
		return RouteInfo{}, fmt.Errorf("%w: %x", ErrRouteExists, s.Session)
	}
	var expires time.Time
	if s.Lifetime > 0 {
		expires = c.now().Add(s.Lifetime)
	}
	r, err := c.putRoute(from, to, s.Session, expires, true)
	if err != nil {
		return RouteInfo{}, err
	}
	return r.info(c.o.RouteCounters), nil
}

// CloseRoute removes a route (pool_relay route del), static or opened by a
// peer, named by its session id or its reverse's: both directions go, the
// close is journalled as ROUTE_CLOSE, and both ends are told.
// ErrUnknownRoute if there is no such route.
func (c *Core) CloseRoute(ctx context.Context, session [16]byte) error {
	var err error
	if derr := c.do(ctx, func() {
		r := c.routes[session]
		if r == nil {
			err = fmt.Errorf("%w: %x", ErrUnknownRoute, session)
			return
		}
		if r.config {
			err = fmt.Errorf("%w: %x is a static_route of the configuration: change the configuration (config apply)", ErrInvalidRoute, session)
			return
		}
		c.closeRoute(r, proto.CodeClosed, nil, "closed by the operator")
	}); derr != nil {
		return derr
	}
	return err
}

// SetConfig applies a new [control] section to the running core, on Run's
// goroutine: it waits for Run to take the request (call it once Run has
// started), and returns ErrStopped after Run has ended. It takes no context
// because a rollback must not be cancellable halfway.
// It validates cfg first and changes nothing if cfg is invalid or changes a
// setting fixed at start, so that the configuration running before the call
// is still running after a failure.
//
// Applied at once: enroll and listed_keys (a peer that enrolled with us and
// is no longer allowed is disconnected; peers we enrolled with are not ours
// to refuse), heartbeat_interval (the next heartbeat of each peer moves to
// one interval after its last), heartbeat_tolerance (heartbeats and every
// control message, for sessions already up too), peer_timeout, the
// puzzle_* settings, max_puzzle and enroll_timeout (for enrollments started
// afterwards), route_max_lifetime (for routes opened or renewed afterwards;
// routes already up keep their expiry), max_routes_per_peer (for requests
// afterwards; a peer already past it keeps its routes).
//
// The static peers and routes (static_peer, static_route) are made those of
// cfg: added, removed, or replaced where their table or key file's key
// changed (a replaced peer gets a new slot, and its routes are reinstalled);
// an unchanged peer keeps its slot, counters and routes. A static peer or
// route that cannot be installed fails the whole call (ErrStatic), with
// nothing changed.
//
// Fixed at start, an error wrapping ErrNeedsRestart that names them: tick
// (the ticker's period, or the caller's Ticks), cookie_bucket (the
// handshake's cookie jar) and max_peers (the data plane's peer and key slots
// are sized at start).
func (c *Core) SetConfig(cfg Config) error {
	errs := confcheck.New("control")
	cfg.Validate(errs)
	if err := errs.Err(); err != nil {
		return err
	}
	policy := cfg.Policy()
	cfg.ListedKeys = slices.Clone(cfg.ListedKeys)
	cfg.StaticPeers, cfg.StaticRoutes = slices.Clone(cfg.StaticPeers), slices.Clone(cfg.StaticRoutes)
	var err error
	if derr := c.do(context.Background(), func() { err = c.setConfig(cfg, policy) }); derr != nil {
		return derr
	}
	return err
}

func (c *Core) setConfig(cfg Config, policy handshake.Policy) error {
	var fixed []string
	if cfg.Tick != c.cfg.Tick {
		fixed = append(fixed, "tick")
	}
	if cfg.CookieBucket != c.cfg.CookieBucket {
		fixed = append(fixed, "cookie_bucket")
	}
	if cfg.MaxPeers != c.cfg.MaxPeers {
		fixed = append(fixed, "max_peers")
	}
	if len(fixed) > 0 {
		return fmt.Errorf("%w: %s", ErrNeedsRestart, strings.Join(fixed, ", "))
	}
	// The only step that can fail goes first; Validate checked the same
	// thing, so it does not.
	if err := c.resp.SetPuzzle(cfg.Puzzle()); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	// The static peers and routes next: checked whole before anything
	// changes, so a failure leaves them, and the puzzle put back, as they
	// were.
	if err := c.applyStatic(cfg); err != nil {
		_ = c.resp.SetPuzzle(c.cfg.Puzzle())
		return err
	}
	old := c.cfg
	c.cfg, c.policy = cfg, policy
	if cfg.HeartbeatInterval != old.HeartbeatInterval {
		for _, ps := range c.peers {
			if ps.hbSent > 0 {
				ps.nextHB = ps.hbAt.Add(cfg.HeartbeatInterval)
			}
		}
	}
	if cfg.Enroll != old.Enroll || !slices.Equal(cfg.ListedKeys, old.ListedKeys) {
		for _, ps := range c.peers {
			if ps.sess.Role() == handshake.RoleResponder && !policy(ps.key) {
				c.drop(ps, ReasonRefused, true, "no longer allowed by the enrollment policy")
			}
		}
	}
	c.log.Info().Dur("heartbeat_interval", cfg.HeartbeatInterval).Dur("peer_timeout", cfg.PeerTimeout).
		Str("enroll", cfg.Enroll).Int("listed_keys", len(cfg.ListedKeys)).Msg("configuration applied")
	return nil
}
