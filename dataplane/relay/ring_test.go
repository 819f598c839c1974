package relay

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
	"github.com/poolrelay/poolrelay/sched"
)

// loopEngine starts an engine on the net_ring port dev, whose TX ring is
// its RX ring, with sessV4's route sending frames out of that same port
// under key slot slot, which holds k both ways: a relayed frame injected
// goes round, re-authenticated with a fresh seq each time, until its TTL
// runs out. The engine stops when the test ends.
func loopEngine(t *testing.T, dev string, slot uint32, k []byte) *Engine {
	t.Helper()
	e, err := OpenOn(env.Need(t), testConfig(dev), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop() })
	r := testRoute(t, false)
	r.IngressKey, r.EgressKey, r.SrcMAC, r.Counter = slot, slot, e.Ports()[0].MAC, ctrV4
	if err := e.Tables().Routes().Put(route.SessionID(sessV4), r); err != nil {
		t.Fatal(err)
	}
	if err := e.Tables().SetHopKeys(slot, k, k); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	return e
}

// loopFrame is a relayed frame of sessV4 with ttl and seq 100, its hop
// MACed under k.
func loopFrame(t *testing.T, ttl uint8, k []byte) []byte {
	s := wiretest.Spec(false)
	s.TTL, s.Pool.Seq = ttl, 100
	s.Pool.MAC = macOf(&s.Pool, s.Payload, hopmac.New(k))
	return wiretest.Frame(t, &s)
}

// TestRingLoopback runs the engine on a net_ring port, whose TX ring is its
// RX ring. A relayed frame injected by the control core comes back in,
// and its route sends it out of the same port under a key that verifies
// its own output, so it goes round, re-authenticated with a fresh seq each
// time, until its TTL runs out: exactly TTL-1 relays and one drop. An ARP
// request for the relay comes back, is answered, and the answer comes back
// and is punted.
func TestRingLoopback(t *testing.T) {
	loopKey := key(0x55)
	e := loopEngine(t, "net_ring_loop", 5, loopKey)
	mac := e.Ports()[0].MAC
	const ttl = 10
	frame := loopFrame(t, ttl, loopKey)
	if err := e.Inject(0, frame); err != nil {
		t.Fatal(err)
	}
	arp := make([]byte, wiretest.BufLen)
	n, err := wire.BuildARPRequest(arp, nil, wiretest.PeerMAC, wiretest.Peer4, wiretest.Relay4)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Inject(0, arp[:n]); err != nil {
		t.Fatal(err)
	}
	ns := make([]byte, wiretest.BufLen)
	nn, err := wire.BuildNeighborSolicit(ns, nil, wiretest.PeerMAC, wiretest.Peer6, wiretest.Relay6)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Inject(0, ns[:nn]); err != nil {
		t.Fatal(err)
	}
	if err := e.Inject(7, arp[:n]); err == nil {
		t.Error("inject on a port that does not exist succeeded")
	}

	cs := e.Counters()
	waitFor(t, "the TTL to run out", func() bool { return cs.Drops(int(wire.DropTTLExpired)) == 1 })
	var punted [][]byte
	waitFor(t, "the ARP reply and the neighbour advertisement", func() bool {
		e.ReadPunted(func(_ int, f []byte) { punted = append(punted, f) })
		return len(punted) >= 2
	})
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := cs.Peer(peerIn).ForPackets; got != ttl-1 {
		t.Errorf("relayed %d times, want %d", got, ttl-1)
	}
	if got := e.RouteCounters().Route(ctrV4).Packets; got != ttl-1 {
		t.Errorf("the route counted %d frames, want %d", got, ttl-1)
	}
	if got := cs.Port(0).RxPackets; got != ttl+4 {
		t.Errorf("received %d frames, want %d", got, ttl+4)
	}
	for r := Reason(0); r < NumReasons; r++ {
		if want := uint64(0); r == Reason(wire.DropTTLExpired) {
			continue
		} else if got := cs.Drops(int(r)); got != want {
			t.Errorf("drops %q: %d", r, got)
		}
	}
	if len(punted) != 2 {
		t.Fatalf("punted %d frames, want the ARP reply and the advertisement", len(punted))
	}
	a := wire.ARP(punted[0][wire.EthernetLen:])
	if a.Op() != wire.ARPOpReply || a.SenderMAC() != mac || a.SenderIP() != wiretest.Relay4.As4() {
		t.Errorf("punted %x, want the ARP reply from %v", punted[0], mac)
	}
	// The advertisement, longer than the solicitation: answered in the
	// mbuf's room, decoded here with gopacket.
	p := gopacket.NewPacket(punted[1], layers.LayerTypeEthernet, gopacket.Default)
	na, _ := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if na == nil || !na.TargetAddress.Equal(wiretest.Relay6.AsSlice()) || len(na.Options) != 1 ||
		!bytes.Equal(na.Options[0].Data, mac[:]) || !bytes.Equal(p.LinkLayer().LinkFlow().Src().Raw(), mac[:]) {
		t.Errorf("punted %x, want the neighbour advertisement for %v from %v", punted[1], wiretest.Relay6, mac)
	}
	if st := e.BurstStats()[0]; st.Injected != 3 || st.TxUnsent != 0 {
		t.Errorf("burst stats %+v", st)
	}
	// Through the class queues: the three injected frames and the two
	// answers in class Control, the relays in the peer's default class.
	if st := e.EgressStats(); len(st) != 1 || st[0].Class[sched.Control].SentPkts != 5 ||
		st[0].Class[sched.Normal].SentPkts != ttl-1 || st[0].Injected != 3 {
		t.Errorf("egress stats %+v", st)
	}
	if !bytes.Equal(frame[:6], wiretest.RelayMAC[:]) {
		t.Error("Inject changed the caller's frame")
	}
}

// TestJumboLoopback is TestRingLoopback's relayed frame at jumbo size: with
// a port MTU of 9000 the engine sizes its mbufs for the port's largest
// frame (one segment, as the worker handles every frame), so an 8,900-byte
// IP packet is injected, verified, re-signed and relayed round the ring
// until its TTL runs out, where a default pool (2,048-byte buffers) would
// refuse the MTU at start.
func TestJumboLoopback(t *testing.T) {
	k := key(0x66)
	cfg := testConfig("net_ring_jumbo")
	cfg.Ports[0].MTU = 9000
	e, err := OpenOn(env.Need(t), cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("open with MTU 9000: %v", err)
	}
	t.Cleanup(func() { e.Stop() })
	r := testRoute(t, false)
	r.IngressKey, r.EgressKey, r.SrcMAC, r.Counter = 6, 6, e.Ports()[0].MAC, ctrV4
	if err := e.Tables().Routes().Put(route.SessionID(sessV4), r); err != nil {
		t.Fatal(err)
	}
	if err := e.Tables().SetHopKeys(6, k, k); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	const ttl = 5
	s := wiretest.Spec(false)
	s.TTL, s.Pool.Seq = ttl, 100
	// The inner payload grown by what the 64-byte one leaves short of an
	// 8,900-byte IP packet.
	short := wire.EthernetLen + 8900 - len(wiretest.Frame(t, &s))
	s.Payload = wiretest.Inner(bytes.Repeat([]byte{0xa5}, 64+short))
	s.Pool.MAC = macOf(&s.Pool, s.Payload, hopmac.New(k))
	buf := make([]byte, 9100) // wiretest.Frame's buffer holds 2,048 bytes
	n, err := wire.Build(buf, &s)
	if err != nil {
		t.Fatal(err)
	}
	frame := buf[:n]
	if len(frame) != wire.EthernetLen+8900 {
		t.Fatalf("frame of %d bytes, want %d", len(frame), wire.EthernetLen+8900)
	}
	if err := e.Inject(0, frame); err != nil {
		t.Fatal(err)
	}
	cs := e.Counters()
	waitFor(t, "the TTL to run out", func() bool { return cs.Drops(int(wire.DropTTLExpired)) == 1 })
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := cs.Peer(peerIn).ForPackets; got != ttl-1 {
		t.Errorf("relayed %d times, want %d", got, ttl-1)
	}
	// A relayed frame is charged its UDP payload: the IP packet less its
	// IPv4 and UDP headers.
	if got, want := cs.Peer(peerIn).ForBytes, uint64((ttl-1)*(8900-20-8)); got != want {
		t.Errorf("relayed %d bytes, want %d", got, want)
	}
	for r := Reason(0); r < NumReasons; r++ {
		if got := cs.Drops(int(r)); got != 0 && r != Reason(wire.DropTTLExpired) {
			t.Errorf("drops %q: %d", r, got)
		}
	}
}

// An AF_XDP port cannot take a jumbo MTU (a frame is one UMEM chunk of at
// most a page): the engine says so by port name, with the largest MTU it
// can take, before it touches the device.
func TestAFXDPJumboRefused(t *testing.T) {
	cfg := testConfig("net_af_xdp_jumbo,iface=pooljumbo0")
	cfg.Ports[0].MTU = 9000
	_, err := OpenOn(env.Need(t), cfg, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "port p0: MTU 9000: an AF_XDP port takes frames of one") ||
		!strings.Contains(err.Error(), "so an MTU of at most 3818") {
		t.Fatalf("open: %v, want the AF_XDP chunk limit", err)
	}
}
