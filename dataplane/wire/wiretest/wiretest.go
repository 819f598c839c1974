// Package wiretest builds POOL frames for tests: a fixed cast of addresses
// (a peer, the relay, the next hop), specs for the frames a relay sees, and
// helpers that build them into fresh buffers. It allocates freely and is
// for tests only; the packet path uses package wire's builders directly.
package wiretest

import (
	"net/netip"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/wire"
)

// The cast. Addresses come from the documentation ranges (RFC 5737,
// RFC 3849) and locally administered MACs, so no test frame can be mistaken
// for real traffic.
var (
	PeerMAC  = wire.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	RelayMAC = wire.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
	NextMAC  = wire.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x03}

	Peer4  = netip.MustParseAddr("192.0.2.1")
	Relay4 = netip.MustParseAddr("192.0.2.2")
	Next4  = netip.MustParseAddr("198.51.100.3")

	Peer6  = netip.MustParseAddr("2001:db8::1")
	Relay6 = netip.MustParseAddr("2001:db8::2")
	Next6  = netip.MustParseAddr("2001:db8:1::3")

	// Session is the hop session of the default frames.
	Session = wire.SessionID{0x5e, 0x55, 0x10, 0x4e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
)

// BufLen is the size of the buffers Frame returns: a standard mbuf's data
// room, so in-place answers that grow the frame have space.
const BufLen = 2048

// Inner returns an inner POOL frame (DATA, channel 0) carrying payload: what
// an end host sends and the relay carries untouched.
func Inner(payload []byte) []byte {
	b := make([]byte, wire.HeaderLen+len(payload))
	f := wire.Fields{Type: wire.TypeData, Seq: 1, Session: wire.SessionID{0xe2, 0xe0}}
	wire.Header(b).Put(&f, uint16(len(payload)))
	copy(b[wire.HeaderLen:], payload)
	return b
}

// Spec returns the spec of a relayed frame from the peer to the relay's
// port: POOL over UDP over IPv4 (or IPv6), type DATA, channel 0, seq 1,
// hop session Session, carrying an inner frame with a 64-byte payload.
func Spec(ipv6 bool) wire.FrameSpec {
	s := wire.FrameSpec{
		Dst:     RelayMAC,
		Src:     PeerMAC,
		SrcIP:   Peer4,
		DstIP:   Relay4,
		SrcPort: 40000,
		DstPort: wire.RelayPort,
		Pool:    wire.Fields{Type: wire.TypeData, Seq: 1, Session: Session},
		Payload: Inner(make([]byte, 64)),
	}
	if ipv6 {
		s.SrcIP, s.DstIP = Peer6, Relay6
	}
	return s
}

// FuzzAddrs turns a fuzzer's bytes into a source and a destination address
// of the family v6 says: IPv4 from the first 4 bytes of each, IPv6 from the
// first 16, zero-padded. ok is false for an IPv4-mapped IPv6 address, which
// no frame carries as IPv6: the fuzz case is to be skipped.
func FuzzAddrs(v6 bool, src, dst []byte) (s, d netip.Addr, ok bool) {
	var s16, d16 [16]byte
	copy(s16[:], src)
	copy(d16[:], dst)
	if !v6 {
		return netip.AddrFrom4([4]byte(s16[:4])), netip.AddrFrom4([4]byte(d16[:4])), true
	}
	s, d = netip.AddrFrom16(s16), netip.AddrFrom16(d16)
	return s, d, !s.Is4In6() && !d.Is4In6()
}

// Frame builds s into a fresh BufLen-capacity buffer and returns the frame,
// failing tb if the spec does not build.
func Frame(tb testing.TB, s *wire.FrameSpec) []byte {
	tb.Helper()
	buf := make([]byte, BufLen)
	n, err := wire.Build(buf, s)
	if err != nil {
		tb.Fatalf("wiretest: build %+v: %v", s, err)
	}
	return buf[:n]
}

// Matcher returns a Matcher for the POOL port, the relay port and extra.
func Matcher(extra ...uint16) *wire.Matcher {
	m := wire.NewMatcher(wire.PoolPort, wire.RelayPort)
	for _, p := range extra {
		m.Add(p)
	}
	return m
}
