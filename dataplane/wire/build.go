package wire

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Errors the builders return. They describe the caller's input, never the
// buffer's old contents, and are safe to compare with errors.Is.
var (
	ErrShortBuffer  = errors.New("wire: buffer too short for the frame")
	ErrAddrFamily   = errors.New("wire: addresses of the wrong IP family, or of different families")
	ErrTooManyVLANs = errors.New("wire: more than two VLAN tags")
	ErrBadVLANTag   = errors.New("wire: VLAN tag with a TPID other than 0x8100 or 0x88a8")
	ErrTooLong      = errors.New("wire: payload too long for the POOL, UDP or IP length fields")
)

// Encap is how a built frame carries POOL above IP.
type Encap uint8

const (
	// EncapUDP carries POOL in UDP (the zero value).
	EncapUDP Encap = iota
	// EncapIP carries POOL directly in IP protocol 253.
	EncapIP
)

// FrameSpec describes a POOL frame for Build. The zero values of the
// optional fields give an untagged frame with TTL DefaultTTL, no IPv4 DF,
// traffic class and flow label zero, and a UDP checksum.
type FrameSpec struct {
	Dst, Src MAC
	// VLANs are the tags, outermost first, at most MaxVLANTags. A zero
	// TPID means EtherTypeVLAN.
	VLANs []VLANTag
	// SrcIP and DstIP are both IPv4 or both IPv6 (not IPv4-mapped).
	SrcIP, DstIP netip.Addr
	// SrcPort and DstPort are the UDP ports; ignored with EncapIP.
	SrcPort, DstPort uint16
	Encap            Encap
	// TTL is the IPv4 TTL or IPv6 hop limit; zero means DefaultTTL.
	TTL uint8
	// TOS is the IPv4 type of service or IPv6 traffic class.
	TOS uint8
	// ID is the IPv4 identification; FlowLabel the IPv6 flow label.
	ID        uint16
	FlowLabel uint32
	// DontFragment sets IPv4 DF.
	DontFragment bool
	// NoUDPChecksum leaves an IPv4 UDP checksum zero (IPv6 ignores it: the
	// checksum is mandatory there).
	NoUDPChecksum bool
	// Pool is the POOL header; its payload length is len(Payload).
	Pool Fields
	// Payload follows the POOL header: on a relayed hop, the inner frame.
	Payload []byte
}

// Build writes the frame s describes into buf, with correct lengths and
// checksums, and returns its length (Ethernet padding to MinFrameLen
// included, though no POOL frame is that short). It does not allocate. On
// error buf may have been partly written.
//
// The POOL MAC field is written as s.Pool.MAC: a caller that computes the
// MAC over the built frame writes it afterwards with PatchUDP, which keeps
// the UDP checksum right.
func Build(buf []byte, s *FrameSpec) (int, error) {
	v6 := s.SrcIP.Is6()
	if v6 != s.DstIP.Is6() || !s.SrcIP.IsValid() || !s.DstIP.IsValid() || s.SrcIP.Is4In6() || s.DstIP.Is4In6() {
		return 0, ErrAddrFamily
	}
	poolLen := HeaderLen + len(s.Payload)
	if len(s.Payload) > MaxPayloadLen {
		return 0, ErrTooLong
	}
	l4Len := poolLen // the IP payload
	if s.Encap == EncapUDP {
		l4Len += UDPLen
	}
	l3Len := IPv4MinLen + l4Len
	etype := uint16(EtherTypeIPv4)
	if v6 {
		l3Len, etype = IPv6Len+l4Len, EtherTypeIPv6
	}
	// IPv4 counts its header in the 16-bit total length; IPv6 does not.
	if l4Len > 0xffff || !v6 && l3Len > 0xffff {
		return 0, ErrTooLong
	}
	l3, err := putL2(buf, s.Dst, s.Src, s.VLANs, etype, l3Len)
	if err != nil {
		return 0, err
	}
	ttl := s.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	proto := uint8(ProtoPOOL)
	if s.Encap == EncapUDP {
		proto = ProtoUDP
	}
	l4 := l3 + IPv4MinLen
	var pseudo uint64
	if v6 {
		l4 = l3 + IPv6Len
		ip := IPv6(buf[l3:l4])
		ip.SetVersionClassFlow(s.TOS, s.FlowLabel)
		ip.SetPayloadLen(uint16(l4Len))
		ip.SetNextHeader(proto)
		ip.SetHopLimit(ttl)
		ip.SetSrc(s.SrcIP.As16())
		ip.SetDst(s.DstIP.As16())
		pseudo = PseudoHeaderSum(ip[8:24], ip[24:40], ProtoUDP, l4Len)
	} else {
		ip := IPv4(buf[l3:l4])
		ip.SetVersionIHL(IPv4MinLen)
		ip.SetTOS(s.TOS)
		ip.SetTotalLen(uint16(l3Len))
		ip.SetID(s.ID)
		ip.SetFragment(s.DontFragment, false, 0)
		ip.SetTTL(ttl)
		ip.SetProtocol(proto)
		ip.SetSrc(s.SrcIP.As4())
		ip.SetDst(s.DstIP.As4())
		ip.UpdateChecksum()
		pseudo = PseudoHeaderSum(ip[12:16], ip[16:20], ProtoUDP, l4Len)
	}
	pool := l4
	if s.Encap == EncapUDP {
		pool += UDPLen
	}
	end := pool + poolLen
	Header(buf[pool:end]).Put(&s.Pool, uint16(len(s.Payload)))
	copy(buf[pool+HeaderLen:end], s.Payload)
	if s.Encap == EncapUDP {
		u := UDP(buf[l4:pool])
		u.SetSrcPort(s.SrcPort)
		u.SetDstPort(s.DstPort)
		u.SetLength(uint16(l4Len))
		u.SetChecksum(0)
		if v6 || !s.NoUDPChecksum {
			u.SetChecksum(udpChecksum(buf[l4:end], pseudo))
		}
	}
	return pad(buf, end), nil
}

// udpChecksum returns the checksum to store for a UDP datagram whose
// checksum field is zero: zero comes out as 0xffff, since zero on the wire
// means "no checksum" (RFC 768).
func udpChecksum(datagram []byte, pseudo uint64) uint16 {
	if c := Checksum(datagram, pseudo); c != 0 {
		return c
	}
	return 0xffff
}

// putL2 writes the Ethernet header and tags for an EtherType etype payload
// of n bytes, checks that buf holds the whole frame, and returns the offset
// of the payload.
func putL2(buf []byte, dst, src MAC, tags []VLANTag, etype uint16, n int) (int, error) {
	if len(tags) > MaxVLANTags {
		return 0, ErrTooManyVLANs
	}
	l3 := EthernetLen + VLANTagLen*len(tags)
	if len(buf) < max(l3+n, MinFrameLen) {
		return 0, ErrShortBuffer
	}
	e := Ethernet(buf)
	e.SetDst(dst)
	e.SetSrc(src)
	for i, t := range tags {
		if t.TPID == 0 {
			t.TPID = EtherTypeVLAN
		}
		if t.TPID != EtherTypeVLAN && t.TPID != EtherTypeQinQ {
			return 0, ErrBadVLANTag
		}
		e.SetTag(i, t)
	}
	binary.BigEndian.PutUint16(buf[l3-2:], etype)
	return l3, nil
}

// pad zeroes buf from n up to MinFrameLen and returns the frame length.
func pad(buf []byte, n int) int {
	if n >= MinFrameLen {
		return n
	}
	clear(buf[n:MinFrameLen])
	return MinFrameLen
}
