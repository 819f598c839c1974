package control

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/pool/transport"
)

// Reconnection: the core keeps a session with every peer it was told to
// keep (Keep), enrolling with it as initiator whenever no session is up. A
// relay restarted after a crash thus brings its peerings back by itself,
// and the other end, seeing a new handshake from an identity it still has a
// session with, replaces the stale session at once (establish).

// Backoff between reconnection attempts: the first at once (within
// reconnectFirst, jittered so that relays restarted together do not
// handshake in lockstep), then doubling up to reconnectMax. 30 s caps what
// an unreachable peer costs (one INIT every half minute) while a peer that
// comes back is reached again within about as long as peer_timeout.
const (
	reconnectFirst = 500 * time.Millisecond
	reconnectMin   = time.Second
	reconnectMax   = 30 * time.Second
	// reconnectAttempt bounds one attempt: a peer that answers completes a
	// handshake in milliseconds (a puzzle in a few seconds), and a short
	// attempt retries a lost INIT sooner than enroll_timeout would.
	reconnectAttempt = 10 * time.Second
)

// Want is a peer to keep a session with: its identity, where to enroll with
// it, and the POOL address it must prove (optional; the identity is always
// checked).
type Want struct {
	Key      identity.PublicKey
	Endpoint transport.Endpoint
	Server   address.Address
}

// wanted is a Want with its reconnection state.
type wanted struct {
	Want
	// down is when its session was last seen missing (zero while up);
	// next when the next attempt may start; attempts counts the attempts
	// since it went down.
	down, next time.Time
	attempts   int
	inFlight   bool
	lastErr    error
	// terms are the terms last persisted; stored is true once it is in
	// the PeerStore.
	terms  account.Terms
	stored bool
}

// Reconnect describes a kept peer without a session.
type Reconnect struct {
	Want
	// Since is when its session went missing; Attempts the enrollments
	// tried since; Next when the next one starts; LastError why the last
	// one failed (empty before the first ends).
	Since     time.Time
	Attempts  int
	Next      time.Time
	LastError string
}

// Keep makes the core keep a session with w.Key: enroll with it now if no
// session is up (after a short random delay), and again, with jittered
// exponential backoff, whenever the session goes, until Forget. Keeping a
// key already kept updates its endpoint and address.
func (c *Core) Keep(ctx context.Context, w Want) error {
	return c.do(ctx, func() {
		if old := c.wanted[w.Key]; old != nil {
			old.Want = w
			return
		}
		now := c.now()
		c.wanted[w.Key] = &wanted{Want: w, down: now, next: now.Add(jitter(reconnectFirst)), stored: c.o.Peers != nil}
	})
}

// Forget stops keeping a session with key (and removes it from
// Options.Peers); a session up stays up (Unenroll ends it).
func (c *Core) Forget(ctx context.Context, key identity.PublicKey) error {
	return c.do(ctx, func() { c.forget(key) })
}

// Reconnecting lists the kept peers that have no session now.
func (c *Core) Reconnecting(ctx context.Context) ([]Reconnect, error) {
	var out []Reconnect
	err := c.do(ctx, func() {
		for _, w := range c.wanted {
			if c.peers[w.Key] != nil {
				continue
			}
			r := Reconnect{Want: w.Want, Since: w.down, Attempts: w.attempts, Next: w.next}
			if w.lastErr != nil {
				r.LastError = w.lastErr.Error()
			}
			out = append(out, r)
		}
	})
	return out, err
}

// reconnect starts the attempts that are due; called on every tick.
func (c *Core) reconnect(now time.Time) {
	for _, w := range c.wanted {
		if c.peers[w.Key] != nil {
			w.down, w.attempts, w.lastErr = time.Time{}, 0, nil
			continue
		}
		if w.down.IsZero() {
			// The session just went: try again at once, jittered.
			w.down, w.next = now, now.Add(jitter(reconnectFirst))
		}
		if w.inFlight || now.Before(w.next) || c.pending[pendingKey{w.Endpoint.Port, w.Endpoint.Addr}] != nil {
			continue
		}
		w.inFlight = true
		w.attempts++
		c.stats.inc(Reconnects)
		deadline := min(c.cfg.EnrollTimeout, reconnectAttempt)
		c.startEnroll(w.Endpoint, w.Server, w.Key, deadline, nil, func(_ identity.PublicKey, err error) {
			w.inFlight = false
			if err == nil {
				return
			}
			w.lastErr = err
			w.next = c.now().Add(backoff(w.attempts))
			c.log.Debug().Err(err).Str("peer", w.Key.String()[:16]).Int("attempt", w.attempts).
				Time("next", w.next).Msg("reconnection failed")
		})
	}
}

// backoff is the wait after the n-th failed attempt: reconnectMin doubled
// per attempt up to reconnectMax, each jittered to between half and all of
// it.
func backoff(n int) time.Duration {
	d := reconnectMax
	if n < 16 {
		d = min(reconnectMin<<(n-1), reconnectMax)
	}
	return d/2 + jitter(d/2)
}

// jitter is a uniformly random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}

// keepRelay keeps a relay peer whose session just came up, and persists it
// when something of it changed.
func (c *Core) keepRelay(ps *peerState) {
	w := c.wanted[ps.key]
	if w == nil {
		w = &wanted{}
		c.wanted[ps.key] = w
	}
	changed := w.Key != ps.key || w.Endpoint.Addr != ps.ep.Addr || w.Endpoint.Port != ps.ep.Port
	w.Key, w.Endpoint = ps.key, ps.ep
	// A persisted peer is written again only when its address or terms
	// changed: a reconnection costs no disk write.
	if changed || ps.theirs != w.terms || !w.stored {
		w.terms, w.stored = ps.theirs, true
		c.o.Peers.Put(KeptPeer{Key: ps.key, Address: ps.ep.Addr, Terms: ps.theirs})
	}
}

// forget stops keeping key and removes it from the store.
func (c *Core) forget(key identity.PublicKey) {
	if c.wanted[key] == nil {
		return
	}
	delete(c.wanted, key)
	if c.o.Peers != nil {
		c.o.Peers.Remove(key)
	}
}
