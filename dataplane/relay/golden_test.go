package relay

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
	"github.com/poolrelay/poolrelay/internal/pcapfile"
	"github.com/poolrelay/poolrelay/sched"
)

// gp is the golden test's frame factory, on gopacket rather than the wire
// codec, so that the relay's output is checked against an independent
// encoder.
type gp struct{ t *testing.T }

// pool returns an outer POOL header for f followed by inner, with its hop
// MAC under k (nil: zero).
func poolBytes(f wire.Fields, inner []byte, k *hopmac.Key) []byte {
	b := make([]byte, wire.HeaderLen+len(inner))
	f.MAC = [wire.MACLen]byte{}
	wire.Header(b).Put(&f, uint16(len(inner)))
	copy(b[wire.HeaderLen:], inner)
	if k != nil {
		k.Sign(b)
	}
	return b
}

type hop struct {
	srcMAC, dstMAC net.HardwareAddr
	src, dst       netip.Addr
	sport, dport   uint16
	ttl            uint8
	// vlan, when not zero, tags the frame with 802.1Q id vlan and
	// priority prio.
	vlan uint16
	prio uint8
}

func (g *gp) udp(h hop, payload []byte) []byte {
	g.t.Helper()
	eth := &layers.Ethernet{SrcMAC: h.srcMAC, DstMAC: h.dstMAC}
	udp := &layers.UDP{SrcPort: layers.UDPPort(h.sport), DstPort: layers.UDPPort(h.dport)}
	var ip gopacket.SerializableLayer
	if h.src.Is6() {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolUDP, HopLimit: h.ttl, SrcIP: h.src.AsSlice(), DstIP: h.dst.AsSlice()}
		udp.SetNetworkLayerForChecksum(ip6)
		ip = ip6
	} else {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip4 := &layers.IPv4{Version: 4, IHL: 5, Id: 0x1234, Flags: layers.IPv4DontFragment, TTL: h.ttl,
			Protocol: layers.IPProtocolUDP, SrcIP: h.src.AsSlice(), DstIP: h.dst.AsSlice()}
		udp.SetNetworkLayerForChecksum(ip4)
		ip = ip4
	}
	if h.vlan == 0 {
		return g.serialize(eth, ip, udp, gopacket.Payload(payload))
	}
	tag := &layers.Dot1Q{VLANIdentifier: h.vlan, Priority: h.prio, Type: eth.EthernetType}
	eth.EthernetType = layers.EthernetTypeDot1Q
	return g.serialize(eth, tag, ip, udp, gopacket.Payload(payload))
}

func (g *gp) serialize(ls ...gopacket.SerializableLayer) []byte {
	g.t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		g.t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

func (g *gp) arp(op uint16, srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, ethDst net.HardwareAddr) []byte {
	return g.serialize(&layers.Ethernet{SrcMAC: srcMAC, DstMAC: ethDst, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: op, SourceHwAddress: srcMAC, SourceProtAddress: src.AsSlice(), DstHwAddress: dstMAC, DstProtAddress: dst.AsSlice()})
}

// waitFor polls cond every 10 ms for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGoldenPcap runs the engine on net_pcap over a capture of every kind of
// frame the relay meets, and checks the output capture byte for byte against
// frames gopacket builds for the expected next hops, with the exact drop
// counters and punted frames.
func TestGoldenPcap(t *testing.T) {
	eal := env.Need(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pcap"), filepath.Join(dir, "out.pcap")
	// The capture must exist when the port opens, and the port's MAC is
	// known only then: the peer's frames go to the cast's relay MAC (the
	// worker does not filter on it), the expected output is built with the
	// port's real one.
	relayMAC := net.HardwareAddr(wiretest.RelayMAC[:])
	g := &gp{t: t}
	peerMAC, nextMAC := net.HardwareAddr(wiretest.PeerMAC[:]), net.HardwareAddr(wiretest.NextMAC[:])
	rx := hopmac.New(rxKey)
	inner4, inner6 := wiretest.Inner([]byte("end to end payload, never touched")), wiretest.Inner(bytes.Repeat([]byte{0xab}, 200))
	toUs := hop{srcMAC: peerMAC, dstMAC: relayMAC, src: wiretest.Peer4, dst: wiretest.Relay4, sport: 40000, dport: wire.RelayPort, ttl: 64}
	toUs6 := toUs
	toUs6.src, toUs6.dst = wiretest.Peer6, wiretest.Relay6
	data := func(h hop, s wire.SessionID, seq uint64, inner []byte, k *hopmac.Key) []byte {
		return g.udp(h, poolBytes(wire.Fields{Type: wire.TypeData, Seq: seq, Session: s}, inner, k))
	}
	badMAC := data(toUs, sessV4, 12, inner4, rx)
	badMAC[len(badMAC)-len(inner4)-wire.MACLen+3] ^= 0x40 // inside the tag
	ttl1 := toUs
	ttl1.ttl = 1
	badSum := data(toUs, sessV4, 16, inner4, rx)
	badSum[wire.EthernetLen+10] ^= 0xff
	notPool := toUs
	notPool.dport = 53
	frames := [][]byte{
		data(toUs, sessV4, 10, inner4, rx),     // 0: relayed, seq 0 out
		data(toUs, sessV4, 11, inner4, rx),     // 1: relayed, seq 1 out
		data(toUs, sessV4, 10, inner4, rx),     // 2: replay
		badMAC,                                 // 3: bad_mac
		data(toUs, sessUnknown, 1, inner4, rx), // 4: no_route
		g.udp(toUs, poolBytes(wire.Fields{Type: wire.TypeHeartbeat, Seq: 1, Session: sessV4}, nil, nil)),                          // 5: punt
		g.udp(toUs, poolBytes(wire.Fields{Type: wire.TypeData, Seq: 1, Session: sessV4, Channel: 2}, []byte("enroll"), nil)),      // 6: punt
		g.arp(1, peerMAC, make(net.HardwareAddr, 6), wiretest.Peer4, wiretest.Relay4, layers.EthernetBroadcast),                   // 7: answered
		g.arp(1, peerMAC, make(net.HardwareAddr, 6), wiretest.Peer4, netip.MustParseAddr("192.0.2.99"), layers.EthernetBroadcast), // 8: not_mine
		data(toUs, sessV4, 13, inner4, rx)[:30],             // 9: truncated
		g.udp(notPool, []byte("dns?")),                      // 10: not POOL
		badSum,                                              // 11: bad IPv4 checksum
		data(toUs6, sessV6, 14, inner6, rx),                 // 12: relayed over IPv6, seq 2 out
		data(ttl1, sessV4, 15, inner4, rx),                  // 13: TTL expired
		data(toUs, sessChoked, 1, inner4, rx),               // 14: debt
		data(tagged(toUs, 7, 3), sessV4, 17, inner4, rx),    // 15: relayed, tag popped, seq 3 out
		data(toUs, sessPush, 18, inner4, rx),                // 16: relayed, tag 100 pushed, seq 4 out
		data(tagged(toUs, 7, 5), sessRetag, 19, inner4, rx), // 17: relayed, retagged 200, seq 5 out
	}
	if err := pcapfile.WriteFile(in, frames, time.Unix(1700000000, 0), time.Millisecond); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(fmt.Sprintf("net_pcap_gold,rx_pcap=%s,tx_pcap=%s", in, out))
	e, err := OpenOn(eal, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	portMAC := e.Ports()[0].MAC
	installCast(t, e.Tables(), portMAC)
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	cs := e.Counters()
	waitFor(t, "every frame received", func() bool { return cs.Port(0).RxPackets == uint64(len(frames)) })
	var punted [][]byte
	waitFor(t, "two punted frames", func() bool {
		e.ReadPunted(func(port int, f []byte) {
			if port != 0 {
				t.Errorf("punted from port %d", port)
			}
			punted = append(punted, f)
		})
		return len(punted) >= 2
	})
	waitFor(t, "seven frames sent", func() bool { return cs.Port(0).TxPackets == 7 })
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}

	// Punted: the heartbeat and the relay-control frame, untouched.
	if len(punted) != 2 || !bytes.Equal(punted[0], frames[5]) || !bytes.Equal(punted[1], frames[6]) {
		t.Errorf("punted %d frames, want frames 5 and 6 unchanged", len(punted))
	}
	// Drops, exactly.
	want := map[Reason]uint64{
		ReasonReplay: 1, ReasonBadMAC: 1, ReasonNoRoute: 1, ReasonNotMine: 1, ReasonDebt: 1,
		Reason(wire.DropTruncated): 1, Reason(wire.DropNotPool): 1, Reason(wire.DropBadIPv4Checksum): 1,
		Reason(wire.DropTTLExpired): 1,
	}
	for r := Reason(0); r < NumReasons; r++ {
		if got := cs.Drops(int(r)); got != want[r] {
			t.Errorf("drops %q: %d, want %d", r, got, want[r])
		}
	}
	// Charged: the outer POOL frame (header + payload) of each relayed one.
	relayed := 0
	for _, i := range []int{0, 1, 12, 15, 16, 17} {
		var r wire.Result
		wire.Classify(frames[i], wiretest.Matcher(), &r)
		relayed += wire.HeaderLen + int(r.PayloadLen)
	}
	if p := cs.Peer(peerIn); p.ForPackets != 6 || p.ForBytes != uint64(relayed) {
		t.Errorf("peer %d charged %+v", peerIn, p)
	}
	if p := cs.Peer(peerOut); p.ToPackets != 6 {
		t.Errorf("peer %d relayed towards %+v", peerOut, p)
	}

	// Sent, exactly: the relayed frames as gopacket builds them for the next
	// hop (new Ethernet and IP addresses, TTL 63, seq from the egress key,
	// MAC under the tx key, inner frame identical), and the ARP reply. The
	// whole capture is one burst, so the egress class queues decide the
	// order: the ARP reply (class Control, strict priority) leaves first,
	// then the relayed frames in the order they came (one peer, one class,
	// one FIFO).
	tx := hopmac.New(txKey)
	relayMAC = net.HardwareAddr(portMAC[:])
	next := hop{srcMAC: relayMAC, dstMAC: nextMAC, src: wiretest.Relay4, dst: wiretest.Next4, sport: wire.RelayPort, dport: wire.RelayPort, ttl: 63}
	next6 := next
	next6.src, next6.dst = wiretest.Relay6, wiretest.Next6
	expect := [][]byte{
		g.arp(2, relayMAC, peerMAC, wiretest.Relay4, wiretest.Peer4, peerMAC),
		data(next, sessV4, 0, inner4, tx),
		data(next, sessV4, 1, inner4, tx),
		data(next6, sessV6, 2, inner6, tx),
		data(next, sessV4, 3, inner4, tx),
		data(tagged(next, 100, 0), sessPush, 4, inner4, tx),
		data(tagged(next, 200, 5), sessRetag, 5, inner4, tx),
	}
	got, err := pcapfile.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(expect) {
		t.Fatalf("output capture holds %d frames, want %d", len(got), len(expect))
	}
	for i := range expect {
		if !bytes.Equal(got[i], expect[i]) {
			t.Errorf("output frame %d:\n got %x\nwant %x", i, got[i], expect[i])
		}
	}
	// Decoded, the relayed frames verify under the tx key and carry the
	// inner frames byte for byte.
	for i, inner := range map[int][]byte{1: inner4, 2: inner4, 3: inner6, 4: inner4, 5: inner4, 6: inner4} {
		p := gopacket.NewPacket(got[i], layers.LayerTypeEthernet, gopacket.Default)
		u, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if u == nil {
			t.Fatalf("output frame %d: no UDP layer", i)
		}
		if !tx.Verify(u.Payload) || !bytes.Equal(u.Payload[wire.HeaderLen:], inner) {
			t.Errorf("output frame %d: MAC or inner frame wrong", i)
		}
	}
}

var (
	sessPush  = wire.SessionID{0x71, 1}
	sessRetag = wire.SessionID{0x71, 2}
)

func tagged(h hop, vlan uint16, prio uint8) hop {
	h.vlan, h.prio = vlan, prio
	return h
}

// installCast installs the test cast's routes (with the relay's real MAC as
// the next hop's source), keys and peers in tables.
func installCast(t *testing.T, tables *Tables, relayMAC wire.MAC) {
	t.Helper()
	put := func(s wire.SessionID, r route.Route) {
		r.SrcMAC = relayMAC
		if err := tables.Routes().Put(route.SessionID(s), r); err != nil {
			t.Fatal(err)
		}
	}
	put(sessV4, testRoute(t, false))
	put(sessV6, testRoute(t, true))
	r := testRoute(t, false)
	r.IngressPeer = peerChoked
	put(sessChoked, r)
	r = testRoute(t, false)
	r.VLAN = 100
	put(sessPush, r)
	r.VLAN = 200
	put(sessRetag, r)
	if err := tables.SetHopKeys(keyIn, rxKey, nil); err != nil {
		t.Fatal(err)
	}
	if err := tables.SetHopKeys(keyOut, nil, txKey); err != nil {
		t.Fatal(err)
	}
	if err := tables.SetPeer(peerChoked, sched.Deprioritised, true); err != nil {
		t.Fatal(err)
	}
}
