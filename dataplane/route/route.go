// Package route is the relay's route table: hop session id to next-hop
// rewrite, read by every worker core without locks and written only by the
// control core.
//
// A relayed frame's outer POOL header carries the hop session id. The worker
// looks it up here and gets a fixed-size Route: whom to charge, where to send
// the frame and how to rewrite its outer Ethernet, IP and UDP headers.
//
// # Design
//
// The table is split into a power-of-two number of shards, each an immutable
// bucketed array published through an atomic pointer: buckets of eight
// slots whose 15-bit signatures sit together in 16 bytes (four buckets to
// a cache line, as in DPDK's rte_hash), so that a lookup reads a line of
// signatures, then only the slot whose signature matches; a route whose
// home bucket is full goes to the next with room, and the buckets it
// passed carry an overflow mark. A slot is one cache line: the key and
// what workers read of the route; the expiry, which only the control core
// reads, is in a parallel array, and an IPv6 route, too large for the
// line, is kept whole in a spill array that its slot points into.
// LookupBurst pipelines a whole burst: hash all, load all signatures,
// load all matching slots, then compare. A reader loads the shard pointer
// and probes an array nobody
// will ever write again, so lookups are wait-free, need no read-side
// bookkeeping and can never observe a half-written route. An update copies
// only its shard, applies its changes to the copy and publishes it: it costs
// O(routes/shards), and the shard count grows with the configured maximum so
// that a shard holds about targetShardRoutes routes whatever the table size.
// The garbage collector reclaims a replaced shard once the last reader has
// dropped it, which is what makes copy-on-write safe without epochs or
// hazard pointers.
//
// Shards' slots and signatures are carved from large chunks (arena.go)
// whose whole 2 MiB pages are advised for transparent huge pages and
// prefaulted: at a million routes the slots are ~90 MB, 23 000 pages of
// 4 KiB, and every lookup's slot would also be a TLB miss. A chunk goes
// back to the collector once no shard points into it; the table copies
// itself into fresh chunks after a bulk install and whenever it has carved
// more than twice what it uses.
//
// Entries hold no pointers, so the collector never scans the arrays, however
// large the table.
//
// # Memory
//
// A slot is 64 bytes, plus its 8-byte expiry and its 2-byte signature: 74
// bytes. Shards are rebuilt at a load of 0.7 and grow when an insert
// takes them past 0.85, so an IPv4 route costs 74/0.85 = 87 to 74/0.7 =
// 106 bytes: about 106 MB for a million routes installed in bulk (151 MB
// when the 88-byte Route sat in the slot); the signatures of a million
// routes are 3 MB, which mostly stay in the cache. An IPv6 route costs
// its 88-byte Route more, in the spill array. (Its traffic counters live
// in dataplane/counters, 32 bytes per slot and worker core.) Each shard
// adds a 104-byte header and an 8-byte pointer, which matter only when a
// table holds far fewer routes than its shards (1 K routes in a table
// made for 1 M: about 460 bytes per route). Table.Stats reports the exact
// figure; its ChunkBytes, what the chunks carved since the last
// compaction take, can reach about three times the slot and signature
// bytes between compactions.
//
// # Hashing
//
// Session ids are chosen by remote parties, so the hash is keyed with a
// random secret drawn for each table: see hash.go.
package route

import (
	"errors"
	"fmt"
	"net/netip"
)

// SessionID is the 16-byte POOL session id of a hop, the table's key. The
// all-zero id is reserved (it marks an empty slot) and is never a route.
type SessionID [16]byte

// Family is the IP version of a route's outer header.
type Family uint8

// IP families. The zero value is invalid so that a Route whose addresses
// were never set is refused.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// Encap is how the outer POOL frame is carried on the next hop.
type Encap uint8

// Encapsulations. The zero value is invalid.
const (
	// EncapUDP carries POOL in UDP from SrcPort to DstPort.
	EncapUDP Encap = 1
	// EncapIP carries POOL directly in IP, protocol number IPProto.
	EncapIP Encap = 2
)

// IPProto is the IPv4 protocol / IPv6 next header number of POOL carried
// directly in IP (253 is reserved for experimentation by RFC 3692).
const IPProto = 253

// Flags modify how a worker treats frames of a route.
type Flags uint16

// Route flags. Bits not defined here are reserved and must be zero.
const (
	// FlagDisabled keeps the route installed but makes workers drop its
	// frames (counted under their own drop reason), for instance while
	// its peer is choked for debt. Dropping beats deleting: late frames
	// then count as refused rather than as unknown sessions.
	FlagDisabled Flags = 1 << iota
	// FlagResolveMAC tells the worker to take the destination MAC from the
	// neighbour table (dataplane/neigh) by EgressPort and DstIP instead of
	// DstMAC, so that a next hop's MAC change reaches every route through
	// it without rewriting them all.
	FlagResolveMAC

	knownFlags = FlagDisabled | FlagResolveMAC
)

// Route is what a worker needs to relay a frame of one hop session: whom to
// charge, which keys authenticate the two hops, how to rewrite the outer
// headers for the next hop and where to count its frames. It is 88 bytes
// and holds no pointers, so the table's arrays are never scanned by the
// garbage collector. The table stores it packed (see the package doc):
// what it returns equals what was put.
//
// Peer and key slots are indexes into tables owned by other packages (per-core
// counters in dataplane/counters, hop keys filled by the hop-authentication
// issue); the route table only carries them.
type Route struct {
	// IngressPeer is the peer slot the frame is relayed for: the peer that
	// authenticated the incoming hop and is charged for it.
	IngressPeer uint32
	// IngressKey is the key slot that verifies the incoming hop's MAC. It
	// lives here, beside the rest, so that a frame costs one lookup for
	// authentication and forwarding alike.
	IngressKey uint32
	// EgressKey is the key slot that MACs the outgoing hop.
	EgressKey uint32
	// EgressPeer is the peer slot of the next hop: the peer the frame is
	// relayed towards.
	EgressPeer uint32
	// EgressPort is the index of the port the frame leaves by.
	EgressPort uint16
	// VLAN is the 802.1Q VLAN id to tag the frame with on egress; 0 sends it
	// untagged.
	VLAN uint16
	// DstMAC and SrcMAC are the outer Ethernet addresses on the next hop.
	DstMAC, SrcMAC [6]byte
	// SrcIP and DstIP are the outer IP addresses on the next hop, in
	// 16-byte form: an IPv4 address is stored IPv4-mapped (::ffff:a.b.c.d),
	// as netip.Addr.As16 gives it, so its 4 bytes are at [12:16].
	SrcIP, DstIP [16]byte
	// SrcPort and DstPort are the outer UDP ports when Encap is EncapUDP.
	SrcPort, DstPort uint16
	// Family is the outer IP version.
	Family Family
	// Encap selects UDP or IP protocol 253 on the next hop.
	Encap Encap
	// Flags modify forwarding; see the Flag constants.
	Flags Flags
	// Counter is the route's slot in the per-route counters
	// (dataplane/counters.Routes), allocated by the control core when it
	// installs the route: the worker counts the frames it relays by it
	// there. 0 is the slot shared by routes installed without one.
	Counter uint32
	// Expires is when the control core's expiry sweep removes the route, in
	// Unix nanoseconds; 0 never expires. Workers do not test it: a route is
	// valid until the sweep removes it, which keeps clock reads off the
	// packet path. For the same reason the table keeps it apart from what
	// workers read, and Table.LookupBurst returns it as 0.
	Expires int64
}

// Errors returned by the table. Callers test them with errors.Is.
var (
	// ErrFull means the update would take the table past its maximum.
	ErrFull = errors.New("route: table full")
	// ErrZeroID means a route was given the reserved all-zero session id.
	ErrZeroID = errors.New("route: the all-zero session id is reserved")
	// ErrInvalidRoute means a Route failed Validate.
	ErrInvalidRoute = errors.New("route: invalid route")
)

// SetAddrs sets SrcIP, DstIP and Family from two addresses of the same
// family (an IPv4-mapped IPv6 address counts as IPv4).
func (r *Route) SetAddrs(src, dst netip.Addr) error {
	src, dst = src.Unmap(), dst.Unmap()
	switch {
	case !src.IsValid() || !dst.IsValid():
		return fmt.Errorf("%w: source and destination addresses must be set", ErrInvalidRoute)
	case src.Is4() != dst.Is4():
		return fmt.Errorf("%w: source and destination addresses are of different families", ErrInvalidRoute)
	case src.Is4():
		r.Family = IPv4
	default:
		r.Family = IPv6
	}
	r.SrcIP, r.DstIP = src.As16(), dst.As16()
	return nil
}

// SrcAddr returns SrcIP as a netip.Addr of the route's family.
func (r *Route) SrcAddr() netip.Addr { return r.addr(r.SrcIP) }

// DstAddr returns DstIP as a netip.Addr of the route's family.
func (r *Route) DstAddr() netip.Addr { return r.addr(r.DstIP) }

func (r *Route) addr(b [16]byte) netip.Addr {
	a := netip.AddrFrom16(b)
	if r.Family == IPv4 {
		return a.Unmap()
	}
	return a
}

// Validate reports a route that a worker could not forward by: unknown
// family, encapsulation or flags, addresses that do not match the family, or
// a UDP route without a destination port. The table refuses such routes, so
// workers need not check. Errors wrap ErrInvalidRoute.
func (r *Route) Validate() error {
	var why string
	switch {
	case r.Family != IPv4 && r.Family != IPv6:
		why = "family must be IPv4 or IPv6"
	case r.Family == IPv4 && !(netip.AddrFrom16(r.SrcIP).Is4In6() && netip.AddrFrom16(r.DstIP).Is4In6()):
		why = "an IPv4 route needs IPv4-mapped addresses (use SetAddrs)"
	case r.Family == IPv6 && (netip.AddrFrom16(r.SrcIP).Is4In6() || netip.AddrFrom16(r.DstIP).Is4In6()):
		why = "an IPv6 route has an IPv4-mapped address"
	case r.Encap != EncapUDP && r.Encap != EncapIP:
		why = "encapsulation must be EncapUDP or EncapIP"
	case r.Encap == EncapUDP && r.DstPort == 0:
		why = "a UDP route needs a destination port"
	case r.Flags&^knownFlags != 0:
		why = "reserved flag bits are set"
	case r.VLAN > 4094:
		why = "VLAN id must be 0 (untagged) to 4094"
	case r.Expires < 0:
		why = "expiry must be 0 (never) or a Unix time in nanoseconds"
	default:
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidRoute, why)
}
