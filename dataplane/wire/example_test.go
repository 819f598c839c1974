package wire_test

import (
	"fmt"
	"net/netip"

	"github.com/poolrelay/poolrelay/dataplane/wire"
)

// A relay's worker, reduced to one frame: classify, then forward a relayed
// DATA frame to its next hop with a fresh per-hop seq and MAC, or answer ARP.
func Example() {
	relayMAC := wire.MAC{0x02, 0, 0, 0, 0, 0x02}
	m := wire.NewMatcher(wire.PoolPort, wire.RelayPort)
	nh, err := wire.NewNextHop(relayMAC, wire.MAC{0x02, 0, 0, 0, 0, 0x03},
		netip.MustParseAddrPort("192.0.2.2:9254"), netip.MustParseAddrPort("198.51.100.3:9254"))
	if err != nil {
		panic(err)
	}

	// A frame as a peer would send it.
	buf := make([]byte, 2048)
	n, err := wire.Build(buf, &wire.FrameSpec{
		Dst: relayMAC, Src: wire.MAC{0x02, 0, 0, 0, 0, 0x01},
		SrcIP: netip.MustParseAddr("192.0.2.1"), DstIP: netip.MustParseAddr("192.0.2.2"),
		SrcPort: 40000, DstPort: wire.RelayPort,
		Pool:    wire.Fields{Type: wire.TypeData, Seq: 41, Session: wire.SessionID{1}},
		Payload: make([]byte, 100), // the inner frame
	})
	if err != nil {
		panic(err)
	}
	frame := buf[:n]

	var r wire.Result
	wire.Classify(frame, m, &r)
	switch {
	case r.Drop != wire.DropNone:
		fmt.Println("drop:", r.Drop)
	case r.Kind.IsPool() && r.Type == wire.TypeData && r.Channel == wire.ChannelData:
		// (Verify the hop MAC and the seq, look the route up by r.Session.)
		if d := wire.Rewrite(frame, &r, &nh); d != wire.DropNone {
			fmt.Println("drop:", d)
			return
		}
		var p wire.UDPPatch
		p.Begin(frame, &r, int(r.PoolOff)+4, wire.HeaderLen-4) // seq to MAC
		h := r.Pool(frame)
		h.SetSeq(42)
		h.SetMAC([wire.MACLen]byte{}) // the MAC is computed with the field zero
		h.SetMAC([wire.MACLen]byte{0xaa})
		p.End(frame)
		fmt.Println(r.Kind, r.Type, "to", wire.IPv4(frame[r.L3Off:]).DstAddr(), "ttl", wire.IPv4(frame[r.L3Off:]).TTL(),
			"seq", h.Seq(), "udp checksum ok:", wire.UDPChecksumValid(frame, &r))
	case r.Kind == wire.KindARP:
		wire.AnswerARP(frame, &r, relayMAC)
	}
	// Output: pool/udp4 DATA to 198.51.100.3 ttl 63 seq 42 udp checksum ok: true
}
