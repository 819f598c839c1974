package wire

import (
	"encoding/binary"
	"strconv"
)

// Kind is what Classify recognised a frame as.
type Kind uint8

// The kinds of frame. The four POOL kinds are contiguous, so IsPool is one
// comparison.
const (
	// KindOther is a frame that is none of the below (it always comes with
	// a drop reason).
	KindOther Kind = iota
	// KindPoolUDP4 is POOL over UDP over IPv4.
	KindPoolUDP4
	// KindPoolUDP6 is POOL over UDP over IPv6.
	KindPoolUDP6
	// KindPoolIP4 is POOL directly over IPv4 (protocol 253).
	KindPoolIP4
	// KindPoolIP6 is POOL directly over IPv6 (next header 253).
	KindPoolIP6
	// KindARP is an ARP request or reply for IPv4 over Ethernet.
	KindARP
	// KindND is an ICMPv6 neighbour solicitation or advertisement.
	KindND
	// NumKinds is the number of kinds, for per-kind counter arrays.
	NumKinds
)

var kindNames = [NumKinds]string{"other", "pool/udp4", "pool/udp6", "pool/ip4", "pool/ip6", "arp", "nd"}

// String returns a short name for the kind.
func (k Kind) String() string {
	if k < NumKinds {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// IsPool reports whether k is one of the POOL kinds.
func (k Kind) IsPool() bool { return k-KindPoolUDP4 <= KindPoolIP6-KindPoolUDP4 }

// IsIPv6 reports whether k is carried over IPv6.
func (k Kind) IsIPv6() bool { return k == KindPoolUDP6 || k == KindPoolIP6 || k == KindND }

// IsUDP reports whether k is POOL over UDP.
func (k Kind) IsUDP() bool { return k == KindPoolUDP4 || k == KindPoolUDP6 }

// DropReason says why a frame is not processed. The zero value, DropNone,
// means it is.
type DropReason uint8

// The drop reasons. Classify produces all but the last two, which come from
// Rewrite. The order is stable only within one build: counters are indexed
// by it, and exported by name (String).
const (
	DropNone DropReason = iota
	// DropTruncated: the frame ends before a header, or before the length
	// a header announces.
	DropTruncated
	// DropTooManyVLANs: more than MaxVLANTags tags.
	DropTooManyVLANs
	// DropUnknownEtherType: not IPv4, IPv6 or ARP.
	DropUnknownEtherType
	// DropBadIPv4Header: version not 4, IHL below 5, or a total length
	// shorter than the header.
	DropBadIPv4Header
	// DropBadIPv4Checksum: the IPv4 header checksum does not verify.
	DropBadIPv4Checksum
	// DropBadIPv6Header: version not 6.
	DropBadIPv6Header
	// DropIPv6Extension: an extension header the relay does not handle,
	// too many of them, a hop-by-hop header out of place, or a routing
	// header with segments left.
	DropIPv6Extension
	// DropFragment: an IPv4 fragment or an IPv6 fragment header.
	DropFragment
	// DropNotPool: an IP protocol, UDP port or ICMPv6 type that is neither
	// POOL nor neighbour discovery.
	DropNotPool
	// DropBadUDPLength: the UDP length differs from the IP payload length.
	DropBadUDPLength
	// DropUDPZeroChecksum: UDP over IPv6 without a checksum.
	DropUDPZeroChecksum
	// DropBadVersion: the POOL version is not Version.
	DropBadVersion
	// DropUnknownType: the POOL type is not one of the twelve.
	DropUnknownType
	// DropReservedBits: a reserved POOL byte or flag bit is set.
	DropReservedBits
	// DropPayloadLength: the POOL payload length differs from the bytes
	// after the header in the datagram.
	DropPayloadLength
	// DropBadARP: not Ethernet/IPv4 ARP, or neither request nor reply.
	DropBadARP
	// DropBadND: a neighbour solicitation or advertisement that RFC 4861
	// says to discard (hop limit, code, length, checksum, options,
	// addresses).
	DropBadND
	// DropTTLExpired: Rewrite was asked to forward a frame whose TTL or hop
	// limit would reach zero.
	DropTTLExpired
	// DropAddrFamily: Rewrite was given a next hop of the other IP family,
	// or a frame that is not POOL.
	DropAddrFamily
	// NumDropReasons is the number of reasons, for counter arrays.
	NumDropReasons
)

var dropNames = [NumDropReasons]string{
	"none", "truncated", "too many VLAN tags", "unknown ethertype",
	"bad IPv4 header", "bad IPv4 checksum", "bad IPv6 header",
	"unsupported IPv6 extension header", "IP fragment", "not POOL",
	"bad UDP length", "zero UDP checksum over IPv6", "bad POOL version",
	"unknown POOL type", "reserved bits set", "payload length mismatch",
	"bad ARP", "bad neighbour discovery", "TTL expired",
	"next hop address family mismatch",
}

// String returns a short lower-case description of the reason.
func (d DropReason) String() string {
	if d < NumDropReasons {
		return dropNames[d]
	}
	return "drop(" + strconv.Itoa(int(d)) + ")"
}

// Result is what Classify learnt about a frame: a value of 56 bytes with no
// pointers, so that a worker can keep one per frame of a burst and the
// garbage collector never looks at it. Offsets and lengths are in bytes from
// the start of the frame and always lie within it, even on a drop.
//
// Which fields are set depends on how far decoding went: the layers decoded
// before the check that failed are filled in, the rest are zero.
type Result struct {
	// Session, Seq, Flags, Type and Channel are the POOL header's fields,
	// set whenever the frame holds a whole POOL header.
	Session SessionID
	Seq     uint64
	// TCI holds the tag control information of the VLAN tags, outermost
	// first; VLANs says how many there are.
	TCI [MaxVLANTags]uint16
	// L3Len is the length of the IP datagram or ARP packet at L3Off: the
	// IPv4 total length, 40 plus the IPv6 payload length (which can
	// exceed 16 bits), or the ARP packet's 28 bytes. Ethernet padding lies
	// beyond it.
	L3Len uint32
	// EtherType is the type after the VLAN tags.
	EtherType uint16
	// L3Off is the offset of the IP header or ARP packet.
	L3Off uint16
	// L4Off is the offset of the upper-layer header (UDP, POOL over IP or
	// ICMPv6), after any IPv4 options and IPv6 extension headers; L4Len
	// runs to the end of the IP payload.
	L4Off, L4Len uint16
	// PoolOff is the offset of the POOL header.
	PoolOff uint16
	// PayloadOff and PayloadLen delimit the POOL payload (on a relayed hop,
	// the inner frame).
	PayloadOff, PayloadLen uint16
	Flags                  Flags
	Kind                   Kind
	Drop                   DropReason
	Type                   Type
	Channel                uint8
	// TTL is the IPv4 TTL or IPv6 hop limit as received.
	TTL uint8
	// Proto is the IP protocol of the upper layer: the IPv4 protocol, or
	// the IPv6 next header after the extension headers (where the walk
	// stopped, on a drop).
	Proto uint8
	// VLANs is the number of VLAN tags.
	VLANs uint8
}

// VLANID returns the VLAN identifier of tag i (0 is outermost).
func (r *Result) VLANID(i int) uint16 { return r.TCI[i] & 0x0fff }

// Pool returns the POOL header of a frame Classify accepted as POOL.
func (r *Result) Pool(frame []byte) Header {
	o := int(r.PoolOff)
	return Header(frame[o : o+HeaderLen : o+HeaderLen])
}

// Payload returns the POOL payload of a frame Classify accepted as POOL.
func (r *Result) Payload(frame []byte) []byte {
	end := int(r.PayloadOff) + int(r.PayloadLen)
	return frame[r.PayloadOff:end:end]
}

// Classify decodes frame and fills r. Every field of r is overwritten.
// Frames of any content, length or corruption are safe: the worst outcome is
// a drop reason. m gives the UDP destination ports that carry POOL. See the
// package documentation for the decisions Classify takes.
//
// The common path, from Ethernet through IPv4 or IPv6 and UDP to the POOL
// header, is one function on purpose: each call the compiler cannot inline
// costs a frame setup and register spills, and at tens of millions of frames
// per second per core those add up to a good share of the budget. Each layer
// is a subslice whose length check is also the drop check, and headers are
// read through array pointers made from it, so the compiler proves every
// index in bounds and adds no checks of its own. The rarer paths (IPv6
// extension headers, ARP, neighbour discovery) are calls.
func Classify(frame []byte, m *Matcher, r *Result) {
	*r = Result{}
	if len(frame) < EthernetLen {
		r.Drop = DropTruncated
		return
	}

	// Ethernet and VLAN tags: et is the last EtherType or TPID read, rest
	// what follows it.
	et := binary.BigEndian.Uint16(frame[12:14])
	rest := frame[EthernetLen:]
	for et == EtherTypeVLAN || et == EtherTypeQinQ {
		if r.VLANs == MaxVLANTags {
			r.Drop = DropTooManyVLANs
			return
		}
		if len(rest) < VLANTagLen {
			r.Drop = DropTruncated
			return
		}
		t := (*[VLANTagLen]byte)(rest)
		// VLANs is 0 or 1 here; the mask spares a bounds check.
		r.TCI[r.VLANs&1] = binary.BigEndian.Uint16(t[0:])
		r.VLANs++
		et = binary.BigEndian.Uint16(t[2:])
		rest = rest[VLANTagLen:]
	}
	l3 := len(frame) - len(rest)
	r.EtherType = et
	r.L3Off = uint16(l3)

	// IP. Each branch leaves upper (the upper layer, up to the end of the
	// IP payload), its offset l4, and the POOL kind it would make the
	// frame.
	var upper []byte
	var l4 int
	var kind Kind
	switch et {
	case EtherTypeIPv4:
		if len(rest) < IPv4MinLen {
			r.Drop = DropTruncated
			return
		}
		h := (*[IPv4MinLen]byte)(rest)
		hl := int(h[0]&0xf) << 2
		tot := int(binary.BigEndian.Uint16(h[2:]))
		if h[0]>>4 != 4 || hl < IPv4MinLen || tot < hl {
			r.Drop = DropBadIPv4Header
			return
		}
		if tot > len(rest) {
			r.Drop = DropTruncated
			return
		}
		ip := rest[:tot]
		upper, l4 = ip[hl:], l3+hl
		r.L3Len = uint32(tot)
		r.TTL = h[8]
		r.Proto = h[9]
		r.L4Off = uint16(l4)
		r.L4Len = uint16(len(upper))
		var s uint64
		if hl == IPv4MinLen {
			s = sum20(h)
		} else {
			s = sum(ip[:hl], 0)
		}
		if fold(s) != 0xffff {
			r.Drop = DropBadIPv4Checksum
			return
		}
		if binary.BigEndian.Uint16(h[6:])&0x3fff != 0 {
			r.Drop = DropFragment
			return
		}
		switch h[9] {
		case ProtoUDP:
			kind = KindPoolUDP4
		case ProtoPOOL:
			kind = KindPoolIP4
		default:
			r.Drop = DropNotPool
			return
		}
	case EtherTypeIPv6:
		if len(rest) < IPv6Len {
			r.Drop = DropTruncated
			return
		}
		h := (*[IPv6Len]byte)(rest)
		if h[0]>>4 != 6 {
			r.Drop = DropBadIPv6Header
			return
		}
		end := IPv6Len + int(binary.BigEndian.Uint16(h[4:]))
		if end > len(rest) {
			r.Drop = DropTruncated
			return
		}
		upper = rest[IPv6Len:end]
		r.L3Len = uint32(end)
		r.TTL = h[7]
		nh := h[6]
		drop := DropNone
		if nh != ProtoUDP && nh != ProtoPOOL {
			upper, nh, drop = walkIPv6(upper, nh)
		}
		l4 = l3 + end - len(upper)
		r.Proto = nh
		r.L4Off = uint16(l4)
		r.L4Len = uint16(len(upper))
		if drop != DropNone {
			r.Drop = drop
			return
		}
		switch nh {
		case ProtoUDP:
			kind = KindPoolUDP6
		case ProtoPOOL:
			kind = KindPoolIP6
		default: // walkIPv6 lets only these three through
			classifyND(IPv6(h[:]), upper, r)
			return
		}
	case EtherTypeARP:
		r.Kind = KindARP
		if len(rest) < ARPLen {
			r.Drop = DropTruncated
			return
		}
		r.L3Len = ARPLen
		r.Drop = checkARP((*[ARPLen]byte)(rest))
		return
	default:
		r.Drop = DropUnknownEtherType
		return
	}

	// UDP: the destination port decides whether this is POOL at all.
	if kind == KindPoolUDP4 || kind == KindPoolUDP6 {
		if len(upper) < UDPLen {
			r.Drop = DropTruncated
			return
		}
		u := (*[UDPLen]byte)(upper)
		if !m.Has(binary.BigEndian.Uint16(u[2:])) {
			r.Drop = DropNotPool
			return
		}
		r.Kind = kind
		if int(binary.BigEndian.Uint16(u[4:])) != len(upper) {
			r.Drop = DropBadUDPLength
			return
		}
		if kind == KindPoolUDP6 && binary.BigEndian.Uint16(u[6:]) == 0 {
			r.Drop = DropUDPZeroChecksum
			return
		}
		upper, l4 = upper[UDPLen:], l4+UDPLen
	} else {
		r.Kind = kind
	}

	// The POOL header.
	r.PoolOff = uint16(l4)
	if len(upper) < HeaderLen {
		r.Drop = DropTruncated
		return
	}
	p := (*[HeaderLen]byte)(upper)
	n := len(upper) - HeaderLen
	r.Type = Type(p[offVerType] & 0xf)
	r.Flags = Flags(binary.BigEndian.Uint16(p[offFlags:]))
	r.Seq = binary.BigEndian.Uint64(p[offSeq:])
	r.Session = SessionID(p[offSession : offSession+16])
	r.Channel = p[offChannel]
	r.PayloadOff = uint16(l4 + HeaderLen)
	r.PayloadLen = uint16(n)
	r.Drop = checkPool(p, n)
}

// sum20 is sum over an option-less IPv4 header, unrolled: the common case
// costs three loads and a fold.
func sum20(h *[IPv4MinLen]byte) uint64 {
	v0 := binary.BigEndian.Uint64(h[0:])
	v1 := binary.BigEndian.Uint64(h[8:])
	return v0>>32 + v0&0xffffffff + v1>>32 + v1&0xffffffff + uint64(binary.BigEndian.Uint32(h[16:]))
}

// IPv6 next-header values that are extension headers the relay does not
// walk past (RFC 7045's list, less the ones it does).
const (
	protoAH       = 51
	protoMobility = 135
	protoHIP      = 139
	protoShim6    = 140
)

// walkIPv6 walks the extension headers at the start of b, the IPv6
// payload; nh is the type of the first. It returns the rest of the payload
// from where it stopped and the header type there: UDP, POOL or ICMPv6 with
// DropNone, or anything with the reason it stopped.
func walkIPv6(b []byte, nh uint8) ([]byte, uint8, DropReason) {
	for n := 0; ; n++ {
		switch nh {
		case ProtoUDP, ProtoPOOL, ProtoICMPv6:
			return b, nh, DropNone
		case ProtoHopByHop, ProtoRouting, ProtoDestOpts:
			if n == MaxIPv6Extensions || nh == ProtoHopByHop && n > 0 {
				return b, nh, DropIPv6Extension
			}
			if len(b) < 8 {
				return b, nh, DropTruncated
			}
			e := (*[8]byte)(b)
			el := (int(e[1]) + 1) * 8
			if el > len(b) {
				return b, nh, DropTruncated
			}
			if nh == ProtoRouting && e[3] != 0 {
				// Segments left: the datagram is on its way to another
				// node, which a relay classifying it cannot be.
				return b, nh, DropIPv6Extension
			}
			nh = e[0]
			b = b[el:]
		case ProtoFragment:
			return b, nh, DropFragment
		case protoAH, protoMobility, protoHIP, protoShim6:
			return b, nh, DropIPv6Extension
		default:
			return b, nh, DropNotPool
		}
	}
}

// classifyND handles the ICMPv6 message msg that came in the IPv6 header ip.
func classifyND(ip IPv6, msg []byte, r *Result) {
	if len(msg) < 4 {
		r.Drop = DropTruncated
		return
	}
	if t := msg[0]; t != icmpNeighborSolicit && t != icmpNeighborAdvert {
		r.Drop = DropNotPool
		return
	}
	r.Kind = KindND
	r.Drop = checkND(ip, msg)
}
