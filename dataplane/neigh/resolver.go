package neigh

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/confcheck"
)

// Probe is an ARP request (IPv4 Target) or a neighbour solicitation (IPv6
// Target) to send on Port: broadcast for ARP, to Target's solicited-node
// multicast group for IPv6, from SrcMAC and Src, asking for Target's MAC.
// With the wire codec: wire.BuildARPRequest(buf, tags, p.SrcMAC, p.Src,
// p.Target) or wire.BuildNeighborSolicit with the same arguments.
//
// Probes that refresh a known neighbour are multicast too: one probe per
// neighbour per ReachableTime is no load, and one frame shape for every
// probe keeps the builder trivial.
type Probe struct {
	Port   uint16
	SrcMAC MAC
	Src    netip.Addr
	Target netip.Addr
}

// State is where a neighbour is in its resolution.
type State uint8

// Neighbour states.
const (
	// Incomplete: being probed, no MAC known yet.
	Incomplete State = iota + 1
	// Reachable: a reply confirmed the MAC less than ReachableTime ago.
	Reachable
	// Refreshing: the confirmation is older than ReachableTime; the MAC
	// stays published while probes ask again.
	Refreshing
	// Failed: the last attempt went unanswered; no MAC is published and the
	// next attempt waits out a backoff.
	Failed
	// Static: configured; never probed, never changed by replies.
	Static
)

var stateNames = [...]string{"", "incomplete", "reachable", "refreshing", "failed", "static"}

// String returns the state's lower-case name.
func (s State) String() string {
	if int(s) < len(stateNames) && s != 0 {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Errors of Request. Callers test them with errors.Is.
var (
	// ErrNoPort means the port index is beyond the configured ports.
	ErrNoPort = errors.New("neigh: no such port")
	// ErrBadAddress means the address is invalid, unspecified, multicast,
	// broadcast or zoned: nothing a next hop can have.
	ErrBadAddress = errors.New("neigh: not a unicast address")
	// ErrOwnAddress means the address is the relay's own on that port.
	ErrOwnAddress = errors.New("neigh: address is the relay's own")
	// ErrNoSource means the port has no address of the target's family to
	// send a probe from.
	ErrNoSource = errors.New("neigh: port has no address of that family to probe from")
)

// entry is one neighbour the resolver knows.
type entry struct {
	state State
	mac   MAC
	// src is the address probes are sent from, chosen once at Request.
	src netip.Addr
	// sent is the number of probes of the current attempt.
	sent int
	// failures counts consecutive failed attempts, for the backoff.
	failures int
	// due is when Tick acts next: send the next probe, declare failure,
	// start a new attempt, or start refreshing.
	due time.Time
}

// Resolver resolves next hops' MACs for the control core and publishes the
// results to workers. Its methods are safe for concurrent use (a mutex
// serialises them), so Learn may be fed from the punt path while Tick runs
// on a timer; none is meant for workers, which read Published.
type Resolver struct {
	// Immutable after New.
	cfg   Config
	ports []Port
	addrs *Addrs
	clock clock.Clock
	log   zerolog.Logger
	pub   *Published

	// mu guards entries.
	mu      sync.Mutex
	entries map[key]*entry
}

// New returns a resolver for ports (index i is port i) with the static
// neighbours of the configuration already published to pub.
func New(cfg Config, ports []Port, static []dataplane.Neighbor, clk clock.Clock, log zerolog.Logger, pub *Published) (*Resolver, error) {
	errs := confcheck.New("neigh")
	cfg.Validate(errs)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if clk == nil || pub == nil {
		return nil, errors.New("neigh: New needs a clock and a Published")
	}
	r := &Resolver{
		cfg:     cfg,
		ports:   slices.Clone(ports),
		addrs:   NewAddrs(ports),
		clock:   clk,
		log:     log,
		pub:     pub,
		entries: map[key]*entry{},
	}
	byName := map[string]uint16{}
	for i, p := range ports {
		byName[p.Name] = uint16(i)
	}
	for _, n := range static {
		port, ok := byName[n.Port]
		if !ok {
			return nil, fmt.Errorf("neigh: static neighbour %s: %w: %q", n.IP, ErrNoPort, n.Port)
		}
		ip, err := netip.ParseAddr(n.IP)
		if err != nil {
			return nil, fmt.Errorf("neigh: static neighbour: %w", err)
		}
		mac, err := dataplane.ParseMAC(n.MAC)
		if err != nil {
			return nil, fmt.Errorf("neigh: static neighbour %s: %w", n.IP, err)
		}
		r.entries[keyOf(port, ip.Unmap())] = &entry{state: Static, mac: mac}
	}
	r.publishLocked()
	return r, nil
}

// Addrs returns the relay's own addresses, for workers.
func (r *Resolver) Addrs() *Addrs { return r.addrs }

// Request asks for the MAC of ip on port and keeps it resolved (refreshing
// it every ReachableTime) until Release. If a probe must go out now, it is
// appended to dst; the result is returned either way. Requesting a
// neighbour that is known, being probed or backing off after a failure sends
// nothing: repeated requests never defeat the backoff.
func (r *Resolver) Request(dst []Probe, port uint16, ip netip.Addr) ([]Probe, error) {
	ip = ip.Unmap()
	if int(port) >= len(r.ports) {
		return dst, fmt.Errorf("neigh: port %d: %w", port, ErrNoPort)
	}
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip.Zone() != "" || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return dst, fmt.Errorf("neigh: %v: %w", ip, ErrBadAddress)
	}
	if r.addrs.Mine(port, ip) {
		return dst, fmt.Errorf("neigh: %v on port %d: %w", ip, port, ErrOwnAddress)
	}
	src, ok := r.addrs.Source(port, ip)
	if !ok {
		return dst, fmt.Errorf("neigh: %v on port %d: %w", ip, port, ErrNoSource)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := keyOf(port, ip)
	if _, ok := r.entries[k]; ok {
		return dst, nil
	}
	e := &entry{state: Incomplete, src: src}
	r.entries[k] = e
	return r.probeLocked(dst, k, e, r.clock.Now()), nil
}

// Release stops resolving ip on port and removes it from the published
// table. Static neighbours stay.
func (r *Resolver) Release(port uint16, ip netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := keyOf(port, ip.Unmap())
	e, ok := r.entries[k]
	if !ok || e.state == Static {
		return
	}
	delete(r.entries, k)
	if e.state == Reachable || e.state == Refreshing {
		r.publishLocked()
	}
}

// Learn takes in what a neighbour said about itself: the sender of an ARP
// reply or request, or the target of a neighbour advertisement (or the
// source of a solicitation) with its link-layer address option. It updates a
// neighbour the resolver is resolving and reports whether it did; anything
// else is ignored, so unsolicited traffic cannot fill the table or
// overwrite a static entry.
func (r *Resolver) Learn(port uint16, ip netip.Addr, mac MAC) bool {
	ip = ip.Unmap()
	if mac == (MAC{}) || mac[0]&1 != 0 {
		// A zero or multicast MAC is never a neighbour's.
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := keyOf(port, ip)
	e, ok := r.entries[k]
	if !ok || e.state == Static {
		return false
	}
	now := r.clock.Now()
	published := e.state == Reachable || e.state == Refreshing
	switch {
	case !published:
		if e.failures > 0 {
			r.log.Info().Uint16("port", port).Stringer("ip", ip).Str("mac", macString(mac)).Int("failed_attempts", e.failures).Msg("neighbour answers again")
		} else {
			r.log.Debug().Uint16("port", port).Stringer("ip", ip).Str("mac", macString(mac)).Msg("neighbour resolved")
		}
	case e.mac != mac:
		// Worth an operator's eye: a NIC swap, a failover, or someone
		// answering for an address that is not theirs.
		r.log.Warn().Uint16("port", port).Stringer("ip", ip).Str("old_mac", macString(e.mac)).Str("mac", macString(mac)).Msg("neighbour MAC changed")
	}
	changed := !published || e.mac != mac
	*e = entry{state: Reachable, mac: mac, src: e.src, due: now.Add(r.cfg.ReachableTime)}
	if changed {
		r.publishLocked()
	}
	return true
}

// Tick does what is due: sends the next probe of attempts in progress,
// fails neighbours whose last probe went unanswered, starts the next
// attempt for failed ones whose backoff has passed, and starts refreshing
// neighbours confirmed longer than ReachableTime ago. Probes to send are
// appended to dst, ordered by port and address. Call it at Next, or simply
// every few hundred milliseconds.
func (r *Resolver) Tick(dst []Probe) []Probe {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	start := len(dst)
	changed := false
	for k, e := range r.entries {
		if e.state == Static || now.Before(e.due) {
			continue
		}
		switch e.state {
		case Reachable:
			e.state, e.sent = Refreshing, 0
			dst = r.probeLocked(dst, k, e, now)
		case Incomplete, Refreshing:
			if e.sent < r.cfg.Probes {
				dst = r.probeLocked(dst, k, e, now)
				continue
			}
			changed = changed || e.state == Refreshing
			e.failures++
			e.state, e.mac = Failed, MAC{}
			e.due = now.Add(r.backoff(e.failures))
			// One line per failed attempt, not per probe, and the
			// backoff spaces attempts out.
			r.log.Warn().Uint16("port", k.port).Stringer("ip", addrOf(k)).Int("attempts", e.failures).Dur("retry_in", e.due.Sub(now)).Msg("neighbour does not answer")
		case Failed:
			e.state, e.sent = Incomplete, 0
			dst = r.probeLocked(dst, k, e, now)
		}
	}
	if changed {
		r.publishLocked()
	}
	slices.SortFunc(dst[start:], func(a, b Probe) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), a.Target.Compare(b.Target))
	})
	return dst
}

// Next returns when Tick next has something to do; ok is false when no
// neighbour is being resolved.
func (r *Resolver) Next() (t time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.entries {
		if e.state != Static && (!ok || e.due.Before(t)) {
			t, ok = e.due, true
		}
	}
	return t, ok
}

// Lookup returns the MAC and state of ip on port as the resolver knows it;
// ok is false for a neighbour never requested nor configured.
func (r *Resolver) Lookup(port uint16, ip netip.Addr) (mac MAC, state State, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[keyOf(port, ip.Unmap())]
	if !ok {
		return MAC{}, 0, false
	}
	return e.mac, e.state, true
}

// probeLocked appends the next probe of e's attempt and schedules what
// follows: the n-th probe of an attempt waits RetransTime·2^(n-1).
func (r *Resolver) probeLocked(dst []Probe, k key, e *entry, now time.Time) []Probe {
	e.due = now.Add(r.cfg.RetransTime << e.sent)
	e.sent++
	return append(dst, Probe{Port: k.port, SrcMAC: r.ports[k.port].MAC, Src: e.src, Target: addrOf(k)})
}

// backoff is the wait after the n-th consecutive failed attempt before the
// next: it continues the doubling of the probes' waits (an attempt's last
// probe waited RetransTime·2^(Probes-1)), capped at MaxBackoff.
func (r *Resolver) backoff(failures int) time.Duration {
	shift := r.cfg.Probes - 1 + failures
	if shift > 40 || r.cfg.RetransTime<<shift > r.cfg.MaxBackoff {
		return r.cfg.MaxBackoff
	}
	return r.cfg.RetransTime << shift
}

// publishLocked publishes a new Table of every neighbour with a usable MAC.
func (r *Resolver) publishLocked() {
	m := make(map[key]MAC, len(r.entries))
	for k, e := range r.entries {
		switch e.state {
		case Static, Reachable, Refreshing:
			m[k] = e.mac
		}
	}
	r.pub.store(&Table{macs: m})
}

// Neighbor is one entry of Snapshot.
type Neighbor struct {
	Port  uint16
	IP    netip.Addr
	MAC   MAC
	State State
}

// Snapshot returns every neighbour the resolver knows, ordered by port and
// address, for status displays.
func (r *Resolver) Snapshot() []Neighbor {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Neighbor, 0, len(r.entries))
	for _, k := range slices.SortedFunc(maps.Keys(r.entries), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.port, b.port), addrOf(a).Compare(addrOf(b)))
	}) {
		e := r.entries[k]
		out = append(out, Neighbor{Port: k.port, IP: addrOf(k), MAC: e.mac, State: e.state})
	}
	return out
}

func addrOf(k key) netip.Addr { return netip.AddrFrom16(k.ip).Unmap() }

func macString(m MAC) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[x>>4], hex[x&15])
	}
	return string(b)
}
