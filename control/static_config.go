package control

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/internal/confcheck"
	"github.com/poolrelay/poolrelay/pool/proto"
)

// StaticPeer is a [[control.static_peer]] table: a lab peer declared in the
// configuration instead of enrolled by handshake, for traffic generators on
// the relay's own machine (pool_gen, Pktgen-DPDK). It gets a peer slot and
// an account like an enrolled peer, and its traffic is counted and charged
// the same way; what it lacks is a session, so no heartbeats, cheques or
// rekeys, and its hop keys come from a pre-shared key file
// (hopmac.LoadPSK, hopmac.LabKeys) instead of a handshake.
type StaticPeer struct {
	// Name identifies the peer in static routes and in the CLI's output:
	// letters, digits, '-' and '_', at most 32.
	Name string `toml:"name"`
	// Port is the name of the relay port ([[port]] name) the peer is
	// reached on.
	Port string `toml:"port"`
	// IP is the peer's address on that port, and UDPPort its POOL port: the
	// next hop of frames relayed towards it. UDPPort 0 carries POOL straight
	// in IP (protocol 253).
	IP      string `toml:"ip"`
	UDPPort int    `toml:"udp_port"`
	// MAC is the peer's Ethernet address, or "learn" to resolve it by ARP /
	// neighbour discovery on Port.
	MAC string `toml:"mac"`
	// KeyFile holds the pre-shared 32-byte hop key (32 bytes, or 64 hex
	// digits), mode 0600 or stricter. Required unless Unauthenticated.
	KeyFile string `toml:"key_file"`
	// Unauthenticated relays the peer's frames without hop MAC or replay
	// checks and sends it frames without fresh seqs and MACs: for replay
	// tools that compute neither. Never implied: only this key, for this
	// peer, turns it on, and KeyFile must then be empty.
	Unauthenticated bool `toml:"unauthenticated"`
}

// StaticRange is a [[control.static_route]] table: Count hop sessions,
// starting at Session, relayed from one static peer to another, each with
// its reverse (proto.ReverseSession) from To back to From. Session ids of a
// range are consecutive as 128-bit big-endian numbers, so that one line
// covers the thousands of sessions a generator cycles through.
type StaticRange struct {
	// From and To name static peers.
	From string `toml:"from"`
	To   string `toml:"to"`
	// Session is the first hop session id, 32 hex digits.
	Session string `toml:"session"`
	// Count is the number of sessions, 1 to MaxStaticSessions.
	Count int `toml:"count"`
}

// MaxStaticSessions bounds one static range's range: a range is installed
// and removed in one route table batch, which copies the shards it touches,
// and 2^20 sessions (with their reverses) is the largest table the default
// configuration allows.
const MaxStaticSessions = 1 << 20

// LearnMAC is the StaticPeer.MAC value that resolves the MAC on the wire.
const LearnMAC = "learn"

var reStaticName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ErrStatic wraps a static peer or route the core cannot install (a key
// file that went away since the configuration was checked, a port without
// an address of the peer's family, sessions in use by enrolled peers).
var ErrStatic = errors.New("control: static peers and routes")

// sessionRange is a static route's sessions as 128-bit numbers, both ends
// included.
type sessionRange struct{ lo, hi u128 }

// u128 is a session id as a big-endian 128-bit number.
type u128 struct{ hi, lo uint64 }

func u128Of(id [16]byte) u128 {
	return u128{binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:])}
}

func (u u128) id() [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return b
}

func (u u128) add(n uint64) (u128, bool) {
	lo := u.lo + n
	hi := u.hi
	if lo < u.lo {
		hi++
		if hi == 0 {
			return u128{}, false
		}
	}
	return u128{hi, lo}, true
}

func (u u128) less(v u128) bool { return u.hi < v.hi || (u.hi == v.hi && u.lo < v.lo) }

// reverse is the range of the reverse sessions: the top bit flipped, which
// keeps a range that does not cross it contiguous.
func (r sessionRange) reverse() sessionRange {
	return sessionRange{u128{r.lo.hi ^ 1<<63, r.lo.lo}, u128{r.hi.hi ^ 1<<63, r.hi.lo}}
}

// ids calls fn with each session id of the range and its reverse.
func (r sessionRange) ids(fn func(id, rev [16]byte)) {
	for u := r.lo; ; {
		id := u.id()
		fn(id, proto.ReverseSession(id))
		if u == r.hi {
			return
		}
		u, _ = u.add(1)
	}
}

// rangeOf parses a static route's first session and count into its range,
// refusing a range that holds the zero id or its reverse (what handshake
// frames carry), or that crosses the top bit (it would hold some of its own
// reverses).
func rangeOf(session string, count int) (sessionRange, error) {
	first, err := ParseSession(session)
	if err != nil {
		return sessionRange{}, err
	}
	if count < 1 || count > MaxStaticSessions {
		return sessionRange{}, fmt.Errorf("%w: count %d must be between 1 and %d", ErrInvalidRoute, count, MaxStaticSessions)
	}
	lo := u128Of(first)
	hi, ok := lo.add(uint64(count - 1))
	switch {
	case !ok:
		return sessionRange{}, fmt.Errorf("%w: %d sessions from %s run past the last session id", ErrInvalidRoute, count, session)
	case lo.hi>>63 != hi.hi>>63:
		return sessionRange{}, fmt.Errorf("%w: %d sessions from %s cross 80000000000000000000000000000000, where ids turn into reverses of others", ErrInvalidRoute, count, session)
	case lo.hi&^(1<<63) == 0 && lo.lo == 0:
		return sessionRange{}, fmt.Errorf("%w: the range holds the zero session id or its reverse, which handshakes use", ErrInvalidRoute)
	}
	return sessionRange{lo, hi}, nil
}

// staticPeerSpec is a StaticPeer checked and decoded, with its keys.
type staticPeerSpec struct {
	cfg   StaticPeer
	ip    netip.Addr
	mac   [6]byte
	learn bool
	// rx and tx are the direction keys; nil for an unauthenticated peer.
	rx, tx []byte
}

// decodeStaticPeer checks p and reads its key file.
func decodeStaticPeer(p StaticPeer) (staticPeerSpec, []fieldProblem) {
	s := staticPeerSpec{cfg: p}
	var probs []fieldProblem
	bad := func(key, format string, args ...any) {
		probs = append(probs, fieldProblem{key, fmt.Sprintf(format, args...)})
	}
	if !reStaticName.MatchString(p.Name) {
		bad("name", "%q must be 1 to 32 letters, digits, '-' or '_'", p.Name)
	}
	if p.Port == "" {
		bad("port", "empty: name the [[port]] the peer is reached on")
	}
	ip, err := netip.ParseAddr(p.IP)
	switch {
	case err != nil:
		bad("ip", "%q is not an IP address", p.IP)
	case ip.Unmap().IsUnspecified() || ip.Unmap().IsMulticast():
		bad("ip", "%q is not a unicast address", p.IP)
	default:
		s.ip = ip.Unmap()
	}
	if p.UDPPort < 0 || p.UDPPort > 65535 {
		bad("udp_port", "%d is not a UDP port (0 carries POOL in IP, protocol 253)", p.UDPPort)
	}
	if p.MAC == LearnMAC {
		s.learn = true
	} else if hw, err := net.ParseMAC(p.MAC); err != nil || len(hw) != 6 {
		bad("mac", "%q is neither a MAC address such as 02:00:00:00:00:01 nor \"learn\"", p.MAC)
	} else if hw[0]&1 != 0 {
		bad("mac", "%q is a multicast address", p.MAC)
	} else {
		s.mac = [6]byte(hw)
	}
	switch {
	case p.Unauthenticated && p.KeyFile != "":
		bad("key_file", "set for an unauthenticated peer: its frames are not verified, so it takes no key (remove key_file, or unauthenticated = true)")
	case !p.Unauthenticated && p.KeyFile == "":
		bad("key_file", "empty: a static peer needs a pre-shared key file, or unauthenticated = true for a replay tool")
	case !p.Unauthenticated:
		psk, err := hopmac.LoadPSK(p.KeyFile)
		if err != nil {
			bad("key_file", "%v", err)
			break
		}
		s.rx, s.tx = hopmac.LabKeys(psk)
	}
	return s, probs
}

type fieldProblem struct{ key, msg string }

// validateStatic checks the static peers and routes: each peer's keys
// (reading its key file), unique names, routes between known peers, and
// ranges that overlap neither each other nor each other's reverses.
func (c Config) validateStatic(errs confcheck.Errors) {
	names := map[string]bool{}
	keys := map[string]string{}
	for i, p := range c.StaticPeers {
		pe := errs.Index("static_peer", i)
		s, probs := decodeStaticPeer(p)
		for _, pr := range probs {
			pe.Addf(pr.key, "%s", pr.msg)
		}
		// Two peers under one key would each number their frames from
		// zero under it, and so would the relay towards each: nonces
		// would repeat (hopmac's package doc).
		if s.rx != nil {
			if other, ok := keys[string(s.rx)]; ok {
				pe.Addf("key_file", "holds the same key as static peer %q's: give each peer a key of its own", other)
			}
			keys[string(s.rx)] = p.Name
		}
		if names[p.Name] {
			pe.Addf("name", "%q names another static peer too", p.Name)
		}
		names[p.Name] = true
	}
	type span struct {
		r     sessionRange
		route int
	}
	var spans []span
	for i, r := range c.StaticRoutes {
		re := errs.Index("static_route", i)
		if !names[r.From] {
			re.Addf("from", "%q is not a static peer (static routes join [[control.static_peer]] tables)", r.From)
		}
		if !names[r.To] {
			re.Addf("to", "%q is not a static peer (static routes join [[control.static_peer]] tables)", r.To)
		}
		if r.From == r.To && r.From != "" {
			re.Addf("to", "%q is also the route's from: a route joins two peers", r.To)
		}
		sr, err := rangeOf(r.Session, r.Count)
		if err != nil {
			key := "session"
			if r.Count < 1 || r.Count > MaxStaticSessions {
				key = "count"
			}
			re.Addf(key, "%v", err)
			continue
		}
		spans = append(spans, span{sr, i}, span{sr.reverse(), i})
	}
	sort.Slice(spans, func(a, b int) bool { return spans[a].r.lo.less(spans[b].r.lo) })
	// cur is the span reaching furthest so far: one that overlaps a later
	// span need not be its neighbour in the order.
	var cur span
	for k, s := range spans {
		if k > 0 && !cur.r.hi.less(s.r.lo) && cur.route != s.route {
			errs.Index("static_route", max(cur.route, s.route)).Addf("session",
				"its sessions (or their reverses) overlap those of static_route[%d]", min(cur.route, s.route))
		}
		if k == 0 || cur.r.hi.less(s.r.hi) {
			cur = s
		}
	}
}

// StaticSessions is the number of route table entries the static routes
// take: each session and its reverse.
func (c Config) StaticSessions() int {
	n := 0
	for _, r := range c.StaticRoutes {
		if r.Count > 0 {
			n += 2 * r.Count
		}
	}
	return n
}

// staticEqual reports whether two static peer specs install the same thing.
func staticEqual(a, b *staticPeerSpec) bool {
	return a.cfg == b.cfg && bytes.Equal(a.rx, b.rx) && bytes.Equal(a.tx, b.tx)
}
