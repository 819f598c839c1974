package wire

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers (IPv4 protocol, IPv6 next header) the codec knows.
const (
	ProtoHopByHop = 0
	ProtoUDP      = 17
	ProtoRouting  = 43
	ProtoFragment = 44
	ProtoICMPv6   = 58
	ProtoDestOpts = 60
	// ProtoPOOL carries POOL directly over IP (253 is one of the two
	// experimental values of RFC 3692, which POOL took for itself).
	ProtoPOOL = 253
)

// IPv4 geometry.
const (
	// IPv4MinLen is the length of an IPv4 header without options.
	IPv4MinLen = 20
	// IPv4MaxLen is the longest IPv4 header, IHL 15.
	IPv4MaxLen = 60
	// DefaultTTL is what the builders write when the caller leaves TTL zero
	// (RFC 1700's recommendation, and what Linux sends).
	DefaultTTL = 64
)

// IPv4 is a view of an IPv4 header, at least IPv4MinLen bytes.
type IPv4 []byte

// Version returns the version field (4 for a valid header).
func (h IPv4) Version() uint8 { return h[0] >> 4 }

// HeaderLen returns the header length in bytes (IHL * 4).
func (h IPv4) HeaderLen() int { return int(h[0]&0xf) * 4 }

// TOS returns the type-of-service byte (DSCP and ECN).
func (h IPv4) TOS() uint8 { return h[1] }

// TotalLen returns the datagram length: header, options and payload.
func (h IPv4) TotalLen() uint16 { return binary.BigEndian.Uint16(h[2:]) }

// ID returns the identification field.
func (h IPv4) ID() uint16 { return binary.BigEndian.Uint16(h[4:]) }

// DontFragment reports whether DF is set.
func (h IPv4) DontFragment() bool { return h[6]&0x40 != 0 }

// MoreFragments reports whether MF is set.
func (h IPv4) MoreFragments() bool { return h[6]&0x20 != 0 }

// FragmentOffset returns the fragment offset in 8-byte units.
func (h IPv4) FragmentOffset() uint16 { return binary.BigEndian.Uint16(h[6:]) & 0x1fff }

// IsFragment reports whether the datagram is a fragment: MF set or a
// non-zero offset.
func (h IPv4) IsFragment() bool { return binary.BigEndian.Uint16(h[6:])&0x3fff != 0 }

// TTL returns the time to live.
func (h IPv4) TTL() uint8 { return h[8] }

// Protocol returns the protocol of the payload.
func (h IPv4) Protocol() uint8 { return h[9] }

// Checksum returns the header checksum field.
func (h IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(h[10:]) }

// Src returns the source address.
func (h IPv4) Src() [4]byte { return [4]byte(h[12:16]) }

// Dst returns the destination address.
func (h IPv4) Dst() [4]byte { return [4]byte(h[16:20]) }

// SrcAddr returns the source address as a netip.Addr.
func (h IPv4) SrcAddr() netip.Addr { return netip.AddrFrom4(h.Src()) }

// DstAddr returns the destination address as a netip.Addr.
func (h IPv4) DstAddr() netip.Addr { return netip.AddrFrom4(h.Dst()) }

// Options returns the options bytes between the fixed header and the
// payload; the slice is empty for IHL 5. HeaderLen must not exceed len(h).
func (h IPv4) Options() []byte { return h[IPv4MinLen:h.HeaderLen()] }

// ChecksumValid reports whether the header checksum verifies. HeaderLen must
// not exceed len(h).
func (h IPv4) ChecksumValid() bool { return fold(sum(h[:h.HeaderLen()], 0)) == 0xffff }

// SetVersionIHL sets the version to 4 and the header length to n bytes (a
// multiple of 4 from 20 to 60).
func (h IPv4) SetVersionIHL(n int) { h[0] = 4<<4 | uint8(n/4)&0xf }

// SetTOS sets the type-of-service byte.
func (h IPv4) SetTOS(v uint8) { h[1] = v }

// SetTotalLen sets the datagram length.
func (h IPv4) SetTotalLen(n uint16) { binary.BigEndian.PutUint16(h[2:], n) }

// SetID sets the identification field.
func (h IPv4) SetID(v uint16) { binary.BigEndian.PutUint16(h[4:], v) }

// SetFragment sets the DF and MF flags and the fragment offset (8-byte
// units, 13 bits).
func (h IPv4) SetFragment(df, mf bool, offset uint16) {
	v := offset & 0x1fff
	if df {
		v |= 0x4000
	}
	if mf {
		v |= 0x2000
	}
	binary.BigEndian.PutUint16(h[6:], v)
}

// SetTTL sets the time to live without touching the checksum.
func (h IPv4) SetTTL(v uint8) { h[8] = v }

// SetProtocol sets the protocol field.
func (h IPv4) SetProtocol(p uint8) { h[9] = p }

// SetChecksum sets the checksum field.
func (h IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[10:], c) }

// SetSrc sets the source address.
func (h IPv4) SetSrc(a [4]byte) { copy(h[12:16], a[:]) }

// SetDst sets the destination address.
func (h IPv4) SetDst(a [4]byte) { copy(h[16:20], a[:]) }

// UpdateChecksum recomputes the header checksum from the header's bytes.
func (h IPv4) UpdateChecksum() {
	h.SetChecksum(0)
	h.SetChecksum(Checksum(h[:h.HeaderLen()], 0))
}

// IPv6 geometry.
const (
	// IPv6Len is the length of the fixed IPv6 header.
	IPv6Len = 40
	// MaxIPv6Extensions bounds the extension headers Classify walks past
	// before it gives up: hop-by-hop, destination options, routing and
	// destination options again is the longest chain RFC 8200's recommended
	// order produces without the headers a relay cannot handle anyway.
	MaxIPv6Extensions = 4
)

// IPv6 is a view of the fixed IPv6 header, at least IPv6Len bytes.
type IPv6 []byte

// Version returns the version field (6 for a valid header).
func (h IPv6) Version() uint8 { return h[0] >> 4 }

// TrafficClass returns the traffic class.
func (h IPv6) TrafficClass() uint8 { return uint8(binary.BigEndian.Uint16(h[0:]) >> 4) }

// FlowLabel returns the 20-bit flow label.
func (h IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(h[0:]) & 0xfffff }

// PayloadLen returns the payload length: extension headers and upper layer.
func (h IPv6) PayloadLen() uint16 { return binary.BigEndian.Uint16(h[4:]) }

// NextHeader returns the type of the header after the fixed header.
func (h IPv6) NextHeader() uint8 { return h[6] }

// HopLimit returns the hop limit.
func (h IPv6) HopLimit() uint8 { return h[7] }

// Src returns the source address.
func (h IPv6) Src() [16]byte { return [16]byte(h[8:24]) }

// Dst returns the destination address.
func (h IPv6) Dst() [16]byte { return [16]byte(h[24:40]) }

// SrcAddr returns the source address as a netip.Addr.
func (h IPv6) SrcAddr() netip.Addr { return netip.AddrFrom16(h.Src()) }

// DstAddr returns the destination address as a netip.Addr.
func (h IPv6) DstAddr() netip.Addr { return netip.AddrFrom16(h.Dst()) }

// SetVersionClassFlow sets the version to 6, the traffic class and the flow
// label (its top 12 bits are ignored).
func (h IPv6) SetVersionClassFlow(tc uint8, flow uint32) {
	binary.BigEndian.PutUint32(h[0:], 6<<28|uint32(tc)<<20|flow&0xfffff)
}

// SetPayloadLen sets the payload length.
func (h IPv6) SetPayloadLen(n uint16) { binary.BigEndian.PutUint16(h[4:], n) }

// SetNextHeader sets the next header field.
func (h IPv6) SetNextHeader(p uint8) { h[6] = p }

// SetHopLimit sets the hop limit.
func (h IPv6) SetHopLimit(v uint8) { h[7] = v }

// SetSrc sets the source address.
func (h IPv6) SetSrc(a [16]byte) { copy(h[8:24], a[:]) }

// SetDst sets the destination address.
func (h IPv6) SetDst(a [16]byte) { copy(h[24:40], a[:]) }
