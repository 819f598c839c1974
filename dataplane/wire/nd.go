package wire

import (
	"encoding/binary"
	"net/netip"
)

// Neighbour discovery (RFC 4861): the two ICMPv6 messages the relay answers
// and sends, and their link-layer address options.
const (
	// NDLen is the fixed part of a solicitation or advertisement: ICMPv6
	// type, code, checksum, four bytes of flags and reserved, the target.
	NDLen = 24
	// ndWithLinkAddr is NDLen plus one link-layer address option, the
	// length of every message this package writes.
	ndWithLinkAddr = NDLen + 8

	ICMPv6NeighborSolicit = 135
	ICMPv6NeighborAdvert  = 136

	// Advertisement flags, in the byte after the checksum.
	NDFlagRouter    = 0x80
	NDFlagSolicited = 0x40
	NDFlagOverride  = 0x20

	ndOptSourceLinkAddr = 1
	ndOptTargetLinkAddr = 2

	// ndHopLimit is the only hop limit a valid message carries: a router
	// would have decremented it, so 255 proves the sender is on-link.
	ndHopLimit = 255
)

const (
	icmpNeighborSolicit = ICMPv6NeighborSolicit
	icmpNeighborAdvert  = ICMPv6NeighborAdvert
)

// ND is a view of an ICMPv6 neighbour solicitation or advertisement: the
// whole ICMPv6 message, at least NDLen bytes, options included.
type ND []byte

// Type returns the ICMPv6 type: ICMPv6NeighborSolicit or ICMPv6NeighborAdvert.
func (m ND) Type() uint8 { return m[0] }

// Code returns the ICMPv6 code (0).
func (m ND) Code() uint8 { return m[1] }

// Checksum returns the ICMPv6 checksum field.
func (m ND) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:]) }

// Flags returns an advertisement's flags (NDFlagRouter, NDFlagSolicited,
// NDFlagOverride); zero in a solicitation.
func (m ND) Flags() uint8 { return m[4] }

// Target returns the target address: the address asked about, or advertised.
func (m ND) Target() [16]byte { return [16]byte(m[8:24]) }

// TargetAddr returns the target address as a netip.Addr.
func (m ND) TargetAddr() netip.Addr { return netip.AddrFrom16(m.Target()) }

// Options returns the options after the fixed part.
func (m ND) Options() []byte { return m[NDLen:] }

// LinkAddr returns the link-layer address the message carries for its
// sender (the source link-layer option of a solicitation) or for its target
// (the target link-layer option of an advertisement), if it has one.
func (m ND) LinkAddr() (MAC, bool) {
	want := uint8(ndOptSourceLinkAddr)
	if m.Type() == icmpNeighborAdvert {
		want = ndOptTargetLinkAddr
	}
	for o := m.Options(); len(o) >= 2 && o[1] != 0 && int(o[1])*8 <= len(o); o = o[int(o[1])*8:] {
		if o[0] == want && o[1] == 1 {
			return MAC(o[2:8]), true
		}
	}
	return MAC{}, false
}

// Check validates the message as RFC 4861 (sections 7.1.1 and 7.1.2) asks a
// receiver to, given the IPv6 header it came in: hop limit 255, code 0, at
// least NDLen bytes, a correct checksum, neither target nor source
// multicast (RFC 4291 forbids a multicast source, and an answer to one could
// not be valid), options of non-zero length that fit; a solicitation from the unspecified
// address must go to a solicited-node address and carry no source
// link-layer option; an advertisement to a multicast address must not claim
// to be solicited.
func (m ND) Check(ip IPv6) DropReason {
	if len(ip) < IPv6Len {
		return DropTruncated
	}
	return checkND(ip, m)
}

func checkND(ip IPv6, m ND) DropReason {
	if len(m) < NDLen || ip.HopLimit() != ndHopLimit || m.Code() != 0 ||
		(m.Type() != icmpNeighborSolicit && m.Type() != icmpNeighborAdvert) {
		return DropBadND
	}
	if fold(sum(m, PseudoHeaderSum(ip[8:24], ip[24:40], ProtoICMPv6, len(m)))) != 0xffff {
		return DropBadND
	}
	if m[8] == 0xff || ip[8] == 0xff { // multicast target or source
		return DropBadND
	}
	sourceLinkAddr := false
	o := m.Options()
	for len(o) > 0 {
		if len(o) < 2 || o[1] == 0 || int(o[1])*8 > len(o) {
			return DropBadND
		}
		sourceLinkAddr = sourceLinkAddr || o[0] == ndOptSourceLinkAddr
		o = o[int(o[1])*8:]
	}
	dst := ip.Dst()
	if m.Type() == icmpNeighborSolicit {
		if ip.Src() == ([16]byte{}) && (!isSolicitedNode(dst) || sourceLinkAddr) {
			return DropBadND
		}
	} else if dst[0] == 0xff && m.Flags()&NDFlagSolicited != 0 {
		return DropBadND
	}
	return DropNone
}

// SolicitedNode returns the solicited-node multicast address of a
// (ff02::1:ffXX:XXXX with the target's low 24 bits), to which solicitations
// for a are sent.
func SolicitedNode(a [16]byte) [16]byte {
	return [16]byte{0xff, 0x02, 11: 0x01, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]}
}

func isSolicitedNode(a [16]byte) bool {
	return [13]byte(a[:13]) == [13]byte{0xff, 0x02, 11: 0x01, 12: 0xff}
}

// multicastMAC returns the Ethernet address an IPv6 multicast address maps
// to (RFC 2464: 33:33 and the address's last four bytes).
func multicastMAC(a [16]byte) MAC { return MAC{0x33, 0x33, a[12], a[13], a[14], a[15]} }

// allNodes is ff02::1, where an answer to a solicitation from the
// unspecified address (duplicate address detection) goes.
var allNodes = [16]byte{0xff, 0x02, 15: 0x01}

// AnswerND turns a neighbour solicitation that Classify accepted into the
// advertisement for its target, in place, and returns the new frame length.
// The caller decides first that the target (ND(frame[r.L4Off:]).Target())
// is one of its addresses. The answer keeps the VLAN tags, comes from mac and
// from the target address, carries mac as the target link-layer address,
// and sets the Override flag, and the Solicited flag unless it answers
// duplicate address detection (solicitation from ::, answered to all
// nodes). IPv6 extension headers of the solicitation are not kept.
//
// The advertisement is 86 bytes plus the tags and may be longer than the
// solicitation: AnswerND uses frame's capacity beyond its length and fails
// if it is too small. It returns false, and leaves the frame alone, for
// anything but a valid solicitation.
func AnswerND(frame []byte, r *Result, mac MAC) (int, bool) {
	if r.Kind != KindND || r.Drop != DropNone {
		return 0, false
	}
	l3 := int(r.L3Off)
	n := l3 + IPv6Len + ndWithLinkAddr
	if cap(frame) < n || int(r.L4Off)+NDLen > len(frame) {
		return 0, false
	}
	ns := ND(frame[r.L4Off : int(r.L4Off)+int(r.L4Len)])
	if ns.Type() != icmpNeighborSolicit {
		return 0, false
	}
	ip := IPv6(frame[l3 : l3+IPv6Len])
	target, src := ns.Target(), ip.Src()
	dstMAC := Ethernet(frame).Src()
	if lla, ok := ns.LinkAddr(); ok {
		dstMAC = lla
	}
	dst, flags := src, uint8(NDFlagSolicited|NDFlagOverride)
	if src == ([16]byte{}) {
		dst, dstMAC, flags = allNodes, multicastMAC(allNodes), NDFlagOverride
	}

	frame = frame[:n]
	e := Ethernet(frame)
	e.SetDst(dstMAC)
	e.SetSrc(mac)
	ip = IPv6(frame[l3 : l3+IPv6Len])
	ip.SetVersionClassFlow(0, 0)
	ip.SetPayloadLen(ndWithLinkAddr)
	ip.SetNextHeader(ProtoICMPv6)
	ip.SetHopLimit(ndHopLimit)
	ip.SetSrc(target)
	ip.SetDst(dst)
	putND(frame[l3+IPv6Len:n], ip, icmpNeighborAdvert, flags, target, ndOptTargetLinkAddr, mac)
	return n, true
}

// putND writes a solicitation or advertisement with one link-layer address
// option into m (ndWithLinkAddr bytes) and its checksum under ip's
// addresses.
func putND(m []byte, ip IPv6, typ, flags uint8, target [16]byte, opt uint8, mac MAC) {
	m = m[:ndWithLinkAddr]
	m[0], m[1], m[2], m[3] = typ, 0, 0, 0
	m[4], m[5], m[6], m[7] = flags, 0, 0, 0
	copy(m[8:24], target[:])
	m[24], m[25] = opt, 1
	copy(m[26:32], mac[:])
	binary.BigEndian.PutUint16(m[2:], Checksum(m, PseudoHeaderSum(ip[8:24], ip[24:40], ProtoICMPv6, len(m))))
}

// BuildNeighborSolicit writes into buf a neighbour solicitation from mac and
// src for target, sent to target's solicited-node address with the given
// VLAN tags, and returns the frame's length.
func BuildNeighborSolicit(buf []byte, tags []VLANTag, mac MAC, src, target netip.Addr) (int, error) {
	if !src.Is6() || !target.Is6() || src.Is4In6() || target.Is4In6() {
		return 0, ErrAddrFamily
	}
	dst := SolicitedNode(target.As16())
	l3, err := putL2(buf, multicastMAC(dst), mac, tags, EtherTypeIPv6, IPv6Len+ndWithLinkAddr)
	if err != nil {
		return 0, err
	}
	ip := IPv6(buf[l3 : l3+IPv6Len])
	ip.SetVersionClassFlow(0, 0)
	ip.SetPayloadLen(ndWithLinkAddr)
	ip.SetNextHeader(ProtoICMPv6)
	ip.SetHopLimit(ndHopLimit)
	ip.SetSrc(src.As16())
	ip.SetDst(dst)
	n := l3 + IPv6Len + ndWithLinkAddr
	putND(buf[l3+IPv6Len:n], ip, icmpNeighborSolicit, 0, target.As16(), ndOptSourceLinkAddr, mac)
	return pad(buf, n), nil
}
