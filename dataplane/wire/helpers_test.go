package wire_test

import (
	"encoding/binary"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
)

// The tests' POOL ports: the two standard ones and a configured one.
const extraPort = 4242

var (
	testMatcher = wiretest.Matcher(extraPort)
	testPorts   = map[int]bool{wire.PoolPort: true, wire.RelayPort: true, extraPort: true}
)

func classify(frame []byte) wire.Result {
	var r wire.Result
	wire.Classify(frame, testMatcher, &r)
	return r
}

// build returns wiretest.Spec(v6) with mods applied, built.
func build(t testing.TB, v6 bool, mods ...func(*wire.FrameSpec)) []byte {
	t.Helper()
	s := wiretest.Spec(v6)
	for _, m := range mods {
		m(&s)
	}
	return wiretest.Frame(t, &s)
}

func withVLANs(tags ...wire.VLANTag) func(*wire.FrameSpec) {
	return func(s *wire.FrameSpec) { s.VLANs = tags }
}

func withEncapIP(s *wire.FrameSpec) { s.Encap = wire.EncapIP }

// fixIPv4 recomputes the IPv4 header checksum of a frame whose header
// starts at l3.
func fixIPv4(frame []byte, l3 int) { wire.IPv4(frame[l3:]).UpdateChecksum() }

// fixUDP recomputes the UDP checksum from scratch.
func fixUDP(frame []byte, r *wire.Result) {
	u := wire.UDP(frame[r.L4Off:])
	u.SetChecksum(0)
	u.SetChecksum(udpChecksum(frame, r))
}

// udpChecksum computes the checksum a UDP datagram should carry, with the
// package's own functions.
func udpChecksum(frame []byte, r *wire.Result) uint16 {
	datagram := frame[r.L4Off : int(r.L4Off)+int(r.L4Len)]
	var pseudo uint64
	if r.Kind.IsIPv6() {
		ip := wire.IPv6(frame[r.L3Off:])
		pseudo = wire.PseudoHeaderSum(ip[8:24], ip[24:40], wire.ProtoUDP, len(datagram))
	} else {
		ip := wire.IPv4(frame[r.L3Off:])
		pseudo = wire.PseudoHeaderSum(ip[12:16], ip[16:20], wire.ProtoUDP, len(datagram))
	}
	saved := wire.UDP(datagram).Checksum()
	wire.UDP(datagram).SetChecksum(0)
	c := wire.Checksum(datagram, pseudo)
	wire.UDP(datagram).SetChecksum(saved)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// udpChecksumValid reports whether the UDP checksum of a classified frame
// verifies (a zero IPv4 checksum counts as valid: not in use).
func udpChecksumValid(frame []byte, r *wire.Result) bool {
	c := wire.UDP(frame[r.L4Off:]).Checksum()
	if c == 0 && !r.Kind.IsIPv6() {
		return true
	}
	return c == udpChecksum(frame, r) || (c == 0xffff && udpChecksum(frame, r) == 0xffff)
}

// insert returns frame with b inserted at off.
func insert(frame []byte, off int, b []byte) []byte {
	out := make([]byte, 0, len(frame)+len(b)+wiretest.BufLen)
	out = append(out, frame[:off]...)
	out = append(out, b...)
	return append(out, frame[off:]...)
}

// withIPv4Options inserts options (a multiple of 4 bytes) into the IPv4
// header at l3 and fixes IHL, total length and checksum.
func withIPv4Options(frame []byte, l3 int, opts []byte) []byte {
	frame = insert(frame, l3+wire.IPv4MinLen, opts)
	ip := wire.IPv4(frame[l3:])
	ip.SetVersionIHL(wire.IPv4MinLen + len(opts))
	ip.SetTotalLen(ip.TotalLen() + uint16(len(opts)))
	fixIPv4(frame, l3)
	return frame
}

// ext is an IPv6 extension header to insert: its type, and its bytes with
// the next-header byte left for withIPv6Ext to fill in.
type ext struct {
	typ  uint8
	body []byte
}

// extHdr returns an extension header of n*8 bytes (n >= 1) with the
// length byte set and byte 3 (a routing header's segments left) = b3.
func extHdr(typ uint8, n int, b3 uint8) ext {
	b := make([]byte, 8*n)
	b[1] = uint8(n - 1)
	b[3] = b3
	return ext{typ, b}
}

// withIPv6Ext inserts extension headers after the IPv6 header at l3,
// chaining the next-header fields, and fixes the payload length.
func withIPv6Ext(frame []byte, l3 int, exts ...ext) []byte {
	ip := wire.IPv6(frame[l3:])
	next := ip.NextHeader()
	var chain []byte
	for i, e := range exts {
		b := append([]byte(nil), e.body...)
		if i+1 < len(exts) {
			b[0] = exts[i+1].typ
		} else {
			b[0] = next
		}
		chain = append(chain, b...)
	}
	if len(exts) > 0 {
		ip.SetNextHeader(exts[0].typ)
	}
	ip.SetPayloadLen(ip.PayloadLen() + uint16(len(chain)))
	return insert(frame, l3+wire.IPv6Len, chain)
}

// fixND recomputes the ICMPv6 checksum of a classified ND frame.
func fixND(frame []byte, r *wire.Result) {
	ip := wire.IPv6(frame[r.L3Off:])
	m := frame[r.L4Off : int(r.L4Off)+int(r.L4Len)]
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint16(m[2:], wire.Checksum(m, wire.PseudoHeaderSum(ip[8:24], ip[24:40], wire.ProtoICMPv6, len(m))))
}

// solicit builds a neighbour solicitation from the peer for the relay's
// address, with tags.
func solicit(t testing.TB, tags ...wire.VLANTag) []byte {
	t.Helper()
	buf := make([]byte, wiretest.BufLen)
	n, err := wire.BuildNeighborSolicit(buf, tags, wiretest.PeerMAC, wiretest.Peer6, wiretest.Relay6)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// arpRequest builds an ARP request from the peer for the relay's address.
func arpRequest(t testing.TB, tags ...wire.VLANTag) []byte {
	t.Helper()
	buf := make([]byte, wiretest.BufLen)
	n, err := wire.BuildARPRequest(buf, tags, wiretest.PeerMAC, wiretest.Peer4, wiretest.Relay4)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}
