package wire

import "encoding/binary"

// UDP geometry.
const (
	// UDPLen is the length of the UDP header.
	UDPLen = 8
	// PoolPort is POOL's UDP port, and RelayPort the one relays listen on
	// (POOL spec v1).
	PoolPort  = 9253
	RelayPort = 9254
)

// UDP is a view of a UDP header, at least UDPLen bytes.
type UDP []byte

// SrcPort returns the source port.
func (u UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(u[0:]) }

// DstPort returns the destination port.
func (u UDP) DstPort() uint16 { return binary.BigEndian.Uint16(u[2:]) }

// Length returns the length field: header and payload.
func (u UDP) Length() uint16 { return binary.BigEndian.Uint16(u[4:]) }

// Checksum returns the checksum field (zero over IPv4: not computed).
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[6:]) }

// SetSrcPort sets the source port.
func (u UDP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(u[0:], p) }

// SetDstPort sets the destination port.
func (u UDP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(u[2:], p) }

// SetLength sets the length field.
func (u UDP) SetLength(n uint16) { binary.BigEndian.PutUint16(u[4:], n) }

// SetChecksum sets the checksum field.
func (u UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(u[6:], c) }

// Matcher is the set of UDP destination ports that carry POOL: a bitmap of
// all 65536 ports, so that the classifier's test is one load and one shift
// whatever the configuration. Build it once (NewMatcher) before the workers
// start and do not modify it while they read it.
type Matcher struct {
	bits [65536 / 64]uint64
}

// NewMatcher returns a Matcher for the given ports. PoolPort and RelayPort
// are not implied: pass them (the data plane's udp_ports list them by
// default).
func NewMatcher(ports ...uint16) *Matcher {
	m := new(Matcher)
	for _, p := range ports {
		m.Add(p)
	}
	return m
}

// Add puts port in the set.
func (m *Matcher) Add(port uint16) { m.bits[port>>6] |= 1 << (port & 63) }

// Has reports whether port is in the set.
func (m *Matcher) Has(port uint16) bool { return m.bits[port>>6]&(1<<(port&63)) != 0 }

// UDPChecksumValid reports whether the UDP checksum of a frame that
// Classify found to be POOL over UDP verifies; a zero checksum over IPv4
// (not in use) counts as valid. It reads the whole datagram, so it is for
// tests, tools and the control core, not for the packet path (see the
// package documentation).
func UDPChecksumValid(frame []byte, r *Result) bool {
	if !r.Kind.IsUDP() {
		return false
	}
	d := frame[r.L4Off : int(r.L4Off)+int(r.L4Len)]
	if len(d) < UDPLen {
		return false
	}
	if !r.Kind.IsIPv6() && UDP(d).Checksum() == 0 {
		return true
	}
	return fold(sum(d, udpPseudoSum(frame, r))) == 0xffff
}

// udpPseudoSum is the pseudo-header sum of the UDP datagram of a frame that
// Classify found to be POOL over UDP: its IP header's addresses and the
// datagram's length (r.L4Len).
func udpPseudoSum(frame []byte, r *Result) uint64 {
	if r.Kind.IsIPv6() {
		ip := frame[r.L3Off : int(r.L3Off)+IPv6Len]
		return PseudoHeaderSum(ip[8:24], ip[24:40], ProtoUDP, int(r.L4Len))
	}
	ip := frame[r.L3Off : int(r.L3Off)+IPv4MinLen]
	return PseudoHeaderSum(ip[12:16], ip[16:20], ProtoUDP, int(r.L4Len))
}
