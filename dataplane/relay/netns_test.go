package relay

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/internal/netns"
	"github.com/poolrelay/poolrelay/internal/netns/vdevtest"
)

// The veth tests run the engine on ports bound to the root-namespace ends
// of a netns.Line (see vethRelay), with these device strings (vdevtest's,
// which that package proved on veths through the binding).
func afPacket(id int) func(string) string {
	return func(iface string) string { return vdevtest.AFPacketDevice(id, iface) }
}

func afXDP(id int) func(string) string {
	return func(iface string) string { return vdevtest.AFXDPDevice(id, iface) }
}

// TestVethAFPacket relays between two net_af_packet ports.
func TestVethAFPacket(t *testing.T) { vethRelay(t, afPacket(60), afPacket(61)) }

// TestVethAFPacketOffloadOn relays with the veths' checksum offloads left
// on, as a lab set up by hand has them: the sender's datagrams reach the
// relay with their UDP checksums left to offload, which the relay must
// complete (counted as EventChecksumCompleted) for the receiver's kernel to
// accept them.
func TestVethAFPacketOffloadOn(t *testing.T) {
	vethRelayLine(t, afPacket(68), afPacket(69), netns.LineConfig{ChecksumOffload: true})
}

// TestVethAFXDPOffloadOn is TestVethAFPacketOffloadOn with AF_XDP receiving.
func TestVethAFXDPOffloadOn(t *testing.T) {
	vethRelayLine(t, afXDP(70), afPacket(71), netns.LineConfig{ChecksumOffload: true})
}

// TestVethAFXDP relays from a net_af_xdp port to a net_af_packet port, and
// TestVethAFXDPEgress the other way round, so that AF_XDP's receive and
// transmit paths are both under the relay next to a port of another kind:
// the AF_XDP port has a pool of its own (net_af_xdp registers its pool's
// memory as the XDP socket's UMEM, and Debian's DPDK 22.11 has no
// shared_umem), so frames between the two ports are copied by whichever PMD
// does not own the UMEM. TestVethAFXDPBoth runs two AF_XDP ports.
func TestVethAFXDP(t *testing.T) { vethRelay(t, afXDP(62), afPacket(63)) }

// TestVethAFXDPEgress: see TestVethAFXDP.
func TestVethAFXDPEgress(t *testing.T) { vethRelay(t, afPacket(64), afXDP(65)) }

// The veth tests' traffic: valid frames per hop, and every spoofEvery-th
// round of them a frame with a bad MAC under a wrong key, one whose inner
// frame was changed after signing, two replays and one frame for a session
// without a route. The sender waits for every window frames to be
// delivered or dropped before it sends more, so that a worker or reader
// descheduled on a loaded machine slows it down instead of overflowing a
// veth's XDP ring, the PMD's RX ring or the receiving socket's buffer (a
// loss that would say nothing about the relay: with the worker polling one
// of two cores, an unpaced sender overran the receiver's 208 KB socket
// buffer by half).
const (
	vethPerHop     = 1000
	vethSpoofEvery = 40
	vethWindow     = 32
)

// vethSizes are the inner payload sizes, cycled: the largest fills a
// 1500-byte IP MTU (20 + 8 + 80 outer + 80 inner + 1300 = 1488).
var vethSizes = []int{16, 200, 777, 1300}

// vethRelay is the whole path on real kernel interfaces:
//
//	[sender ns] --veth-- port 0 [relay: Engine on DPDK] port 1 --veth-- [receiver ns]
//
// The sender is an ordinary UDP socket sending hop-authenticated POOL frames
// to the relay's address on port 0 for three routes the test installs (two
// towards one receiver peer under separate egress keys, one towards another
// peer on another UDP port). The receiver's sockets check each delivered
// frame: the next frame of its hop (so nothing was lost, duplicated or
// reordered), from the relay's address on port 1, to the route's UDP port,
// a fresh seq under the egress key (above the hop's previous one and below
// what the key's Sequence handed out; workers reserve seqs by the burst, so
// they need not be consecutive), a MAC that verifies under the egress key,
// the rest of the outer header as sent, and the inner frame byte for byte.
// Spoofed frames (a route's session with a bad MAC), replays and frames for
// an unknown session must reach no one and be charged to no one: every
// frame is accounted for as delivered or dropped under its reason, and the
// per-peer counters hold exactly the valid frames.
func vethRelay(t *testing.T, deviceA, deviceB func(iface string) string) {
	vethRelayLine(t, deviceA, deviceB, netns.LineConfig{})
}

// vethRelayLine is vethRelay on a Line made with lc.
func vethRelayLine(t *testing.T, deviceA, deviceB func(iface string) string, lc netns.LineConfig) {
	vethRelayLog(t, deviceA, deviceB, lc, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
}

// TestVethGoMACs is vethRelay on a relay that found no AES-NI path in
// intel-ipsec-mb (acted out: gmacEngine answers dpdk.ErrNoGMAC, what
// GMACEngine answers on such a CPU): the Engine falls back to Go's GCM
// (crypto/hopmac) for every hop MAC, chosen when its tables are made, says
// so in its start-up line (hop_macs), and relays the same traffic with the
// same checks, bad MACs and replays dropped.
func TestVethGoMACs(t *testing.T) {
	saved := gmacEngine
	gmacEngine = func() (string, error) { return "", dpdk.ErrNoGMAC }
	t.Cleanup(func() { gmacEngine = saved })
	var log bytes.Buffer
	vethRelayLog(t, afPacket(72), afPacket(73), netns.LineConfig{},
		zerolog.New(io.MultiWriter(&log, zerolog.NewTestWriter(t))).Level(zerolog.InfoLevel))
	var started struct {
		Message string `json:"message"`
		HopMACs string `json:"hop_macs"`
		HopAuth bool   `json:"hop_auth"`
	}
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, `"relay started"`) {
			if err := json.Unmarshal([]byte(line), &started); err != nil {
				t.Fatalf("start-up line %q: %v", line, err)
			}
		}
	}
	want := "Go crypto/cipher GCM (" + dpdk.ErrNoGMAC.Error() + ")"
	if started.Message == "" || !started.HopAuth || started.HopMACs != want {
		t.Errorf("start-up line: %+v, want hop_auth and hop_macs %q", started, want)
	}
}

// vethRelayLog is vethRelayLine with the Engine logging to log.
func vethRelayLog(t *testing.T, deviceA, deviceB func(iface string) string, lc netns.LineConfig, log zerolog.Logger) {
	eal := env.Need(t)
	nenv, err := netns.ForTest(t, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	line, err := nenv.NewLine(lc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Dataplane: dataplane.DefaultConfig(), Peers: 16, KeySlots: 16}
	cfg.Dataplane.Mbufs, cfg.Dataplane.MaxRoutes = 4095, 1024
	for _, p := range []struct {
		name, iface string
		device      func(string) string
		addr        netip.Addr
	}{{"a", line.PortA, deviceA, line.GatewayA}, {"b", line.PortB, deviceB, line.GatewayB}} {
		pc := dataplane.DefaultPortConfig()
		pc.Name, pc.Device = p.name, p.device(p.iface)
		pc.Addresses = []string{netip.PrefixFrom(p.addr, 24).String()}
		// The egress scheduler warns about larger TX rings on an unshaped
		// port (the backlog would form in the device, out of its reach).
		pc.TxDescriptors = 256
		cfg.Ports = append(cfg.Ports, pc)
	}
	e, err := OpenOn(eal, cfg, log)
	if err != nil {
		t.Fatalf("open the engine on %s and %s: %v", cfg.Ports[0].Device, cfg.Ports[1].Device, err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := e.Stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		}
	}
	// Deferred, so the ports close before t.Cleanup removes the veths.
	defer stop()
	ports := e.Ports()
	t.Logf("ports: %s %v on %s, %s %v on %s", cfg.Ports[0].Device, ports[0].MAC, line.PortA,
		cfg.Ports[1].Device, ports[1].MAC, line.PortB)
	// The sender reaches the relay at its address on port 0.
	if err := line.Sender.Neighbor(line.SenderIf, line.GatewayA, net.HardwareAddr(ports[0].MAC[:])); err != nil {
		t.Fatal(err)
	}

	hops := []vethHop{
		{session: wire.SessionID{0xa0, 1}, inPeer: 1, inKey: 1, outPeer: 4, outKey: 4, dstPort: wire.RelayPort},
		{session: wire.SessionID{0xa0, 2}, inPeer: 2, inKey: 2, outPeer: 4, outKey: 5, dstPort: wire.RelayPort},
		{session: wire.SessionID{0xa0, 3}, inPeer: 3, inKey: 3, outPeer: 5, outKey: 6, dstPort: wire.PoolPort},
	}
	var receiverMAC [6]byte
	copy(receiverMAC[:], line.ReceiverMAC)
	tables := e.Tables()
	for i := range hops {
		h := &hops[i]
		h.rx, h.tx = key(byte(0x30+i)), key(byte(0x60+i))
		r := route.Route{
			IngressPeer: h.inPeer, IngressKey: h.inKey, EgressPeer: h.outPeer, EgressKey: h.outKey,
			EgressPort: 1, DstMAC: receiverMAC, SrcMAC: ports[1].MAC,
			SrcPort: wire.RelayPort, DstPort: h.dstPort, Encap: route.EncapUDP,
		}
		if err := r.SetAddrs(line.GatewayB, line.ReceiverAddr); err != nil {
			t.Fatal(err)
		}
		if err := tables.Routes().Put(route.SessionID(h.session), r); err != nil {
			t.Fatal(err)
		}
		if err := tables.SetHopKeys(h.inKey, h.rx, nil); err != nil {
			t.Fatal(err)
		}
		if err := tables.SetHopKeys(h.outKey, nil, h.tx); err != nil {
			t.Fatal(err)
		}
	}

	var col collector
	defer col.close()
	for _, port := range []uint16{wire.RelayPort, wire.PoolPort} {
		c, err := line.Receiver.ListenUDP(netip.AddrPortFrom(line.ReceiverAddr, port))
		if err != nil {
			t.Fatal(err)
		}
		col.read(c, port)
	}
	tx, err := line.Sender.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(line.GatewayA, wire.RelayPort))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}

	// Send, keeping what each valid frame was (by hop and number) and how
	// many frames of each kind went out.
	cs := e.Counters()
	sentFrames := make([][][]byte, len(hops))
	var sent, spoofed, replayed, unrouted int
	// accounted is how many frames have reached their end: delivered to
	// the receiver's sockets or dropped by the relay.
	var drops []uint64
	accounted := func() int {
		n := col.count()
		drops = cs.AllDrops(drops[:0])
		for _, d := range drops {
			n += int(d)
		}
		return n
	}
	send := func(b []byte) {
		t.Helper()
		if _, err := tx.Write(b); err != nil {
			t.Fatal(err)
		}
		sent++
		if sent%vethWindow == 0 && !pollUntil(5*time.Second, func() bool { return accounted() == sent }) {
			t.Fatalf("%d frames sent, %d delivered or dropped, and no more within 5 s", sent, accounted())
		}
	}
	signers := make([]*hopmac.Key, len(hops))
	for i, h := range hops {
		signers[i] = hopmac.New(h.rx)
	}
	wrong := hopmac.New(key(0xee))
	start := time.Now()
	for n := range vethPerHop {
		for i, h := range hops {
			f := hopFrame(h.session, uint64(n+1), innerFrame(i, n, vethSizes[(n+i)%len(vethSizes)]), signers[i])
			sentFrames[i] = append(sentFrames[i], f)
			send(f)
		}
		if n%vethSpoofEvery != vethSpoofEvery-1 {
			continue
		}
		i := n / vethSpoofEvery % len(hops)
		h := hops[i]
		// Fresh seqs far ahead of the window: only the MAC can refuse
		// them, and a refused frame must not move the window (the valid
		// frames after it still get through).
		send(hopFrame(h.session, 1<<32+uint64(n), innerFrame(i, n, 64), wrong))
		f := hopFrame(h.session, 1<<33+uint64(n), innerFrame(i, n, 64), signers[i])
		f[len(f)-1] ^= 1
		send(f)
		spoofed += 2
		// A replay of the frame just sent, and of one from further back.
		send(sentFrames[i][n])
		send(sentFrames[i][n-vethSpoofEvery/2])
		replayed += 2
		send(hopFrame(wire.SessionID{0xbb, byte(n)}, 1, innerFrame(i, n, 64), signers[i]))
		unrouted++
	}
	valid := len(hops) * vethPerHop
	if !pollUntil(5*time.Second, func() bool { return accounted() == sent }) {
		t.Errorf("after 5 s the relay had received %d of %d frames and the receiver %d of %d",
			cs.Port(0).RxPackets, sent, col.count(), valid)
		// Where the kernel lost frames, if it did: the veths' counters and
		// the receiver's UDP counters (RcvbufErrors: a socket overrun).
		var kernel bytes.Buffer
		for _, c := range []struct {
			ns   *netns.NS
			args []string
		}{
			{netns.Root, []string{"ip", "-s", "link", "show", "dev", line.PortB}},
			{line.Receiver, []string{"ip", "-s", "link", "show", "dev", line.ReceiverIf}},
			{line.Receiver, []string{"cat", "/proc/net/snmp"}},
		} {
			if err := c.ns.Run(t.Context(), &kernel, c.args[0], c.args[1:]...); err != nil {
				t.Logf("%v: %v", c.args, err)
			}
		}
		t.Logf("kernel:\n%s", kernel.String())
	}
	elapsed := time.Since(start)
	stop()
	var punted int
	e.ReadPunted(func(int, []byte) { punted++ })
	got, err := col.close()
	if err != nil {
		t.Error(err)
	}

	// What arrived.
	verifiers := make([]*hopmac.Key, len(hops))
	bySession := map[wire.SessionID]int{}
	for i, h := range hops {
		verifiers[i] = hopmac.New(h.tx)
		bySession[h.session] = i
	}
	next := make([]int, len(hops))      // per hop: the next frame number expected
	lastSeq := make([]int64, len(hops)) // per hop: the last egress seq seen
	for i := range lastSeq {
		lastSeq[i] = -1
	}
	relayAt := netip.AddrPortFrom(line.GatewayB, wire.RelayPort)
	bad := 0
	for _, d := range got {
		fail := func(format string, args ...any) {
			bad++
			if bad <= 10 {
				t.Errorf("datagram of %d bytes on port %d from %v: "+format, append([]any{len(d.data), d.port, d.from}, args...)...)
			}
		}
		if len(d.data) < wire.HeaderLen {
			fail("shorter than a POOL header")
			continue
		}
		hd := wire.Header(d.data)
		i, ok := bySession[hd.Session()]
		if !ok {
			fail("session %v is not a route's", hd.Session())
			continue
		}
		h := hops[i]
		hi, n, ok := innerID(d.data[wire.HeaderLen:])
		switch {
		case !ok || hi != i || n != next[i]:
			fail("hop %d frame %d (inner says hop %d frame %d): lost, reordered, duplicated or not a valid frame", i, next[i], hi, n)
			continue
		case d.port != h.dstPort || d.from != relayAt:
			fail("want port %d from %v", h.dstPort, relayAt)
		case int64(hd.Seq()) <= lastSeq[i] || hd.Seq() >= tables.Sent(h.outKey):
			fail("seq %d after %d: not a fresh seq of the egress key, which handed out %d", hd.Seq(), lastSeq[i], tables.Sent(h.outKey))
		case !verifiers[i].Verify(d.data):
			fail("hop MAC does not verify under the egress key")
		}
		want := sentFrames[i][n]
		if !bytes.Equal(d.data[wire.HeaderLen:], want[wire.HeaderLen:]) {
			fail("inner frame changed")
		}
		if !bytes.Equal(d.data[:4], want[:4]) || !bytes.Equal(d.data[12:48], want[12:48]) {
			fail("outer header changed beyond seq and MAC:\n got %x\nwant %x", d.data[:48], want[:48])
		}
		next[i], lastSeq[i] = next[i]+1, int64(hd.Seq())
	}
	t.Logf("per hop delivered %v", next)

	// Every frame accounted for, and charged to the right peers only.
	wantDrops := map[Reason]int{ReasonBadMAC: spoofed, ReasonReplay: replayed, ReasonNoRoute: unrouted}
	dropped := 0
	for r := Reason(0); r < NumReasons; r++ {
		got := int(cs.Drops(int(r)))
		dropped += got
		if got != wantDrops[r] {
			t.Errorf("drops %q: %d, want %d", r, got, wantDrops[r])
		}
	}
	t.Logf("%d frames in %v: sent %d (valid %d, spoofed %d, replayed %d, unrouted %d); delivered %d, dropped %d, punted %d",
		sent, elapsed.Round(time.Millisecond), sent, valid, spoofed, replayed, unrouted, len(got), dropped, punted)
	if len(got)+dropped != sent || len(got) != valid || punted != 0 {
		t.Errorf("delivered %d + dropped %d (punted %d) != sent %d; want %d delivered", len(got), dropped, punted, sent, valid)
	}
	if p0, p1 := cs.Port(0), cs.Port(1); int(p0.RxPackets) != sent || p1.RxPackets != 0 || int(p1.TxPackets) != valid || p0.TxPackets != 0 {
		t.Errorf("ports: 0 %+v, 1 %+v; want %d received on 0 and %d sent on 1, nothing else", p0, p1, sent, valid)
	}
	wantPeers := make([]struct{ forPkts, forBytes, toPkts, toBytes int }, cs.Peers())
	for i, h := range hops {
		for _, f := range sentFrames[i] {
			wantPeers[h.inPeer].forPkts++
			wantPeers[h.inPeer].forBytes += len(f)
			wantPeers[h.outPeer].toPkts++
			wantPeers[h.outPeer].toBytes += len(f)
		}
	}
	for slot, w := range wantPeers {
		p := cs.Peer(uint32(slot))
		if int(p.ForPackets) != w.forPkts || int(p.ForBytes) != w.forBytes || int(p.ToPackets) != w.toPkts || int(p.ToBytes) != w.toBytes {
			t.Errorf("peer %d: %+v, want for %d/%d B, to %d/%d B", slot, p, w.forPkts, w.forBytes, w.toPkts, w.toBytes)
		}
	}
	// With offloads on every valid frame arrived with its checksum left to
	// offload and was completed. With them off, only the frames whose full
	// checksum happens to equal their pseudo-header's sum (about one in
	// 65536, which the relay cannot tell from a partial one, and which
	// completing leaves right) are counted: the test computes which.
	wantCompleted := valid
	if !lc.ChecksumOffload {
		src, dst := netip.MustParseAddrPort(tx.LocalAddr().String()), netip.MustParseAddrPort(tx.RemoteAddr().String())
		wantCompleted = 0
		for i := range hops {
			for _, f := range sentFrames[i] {
				if fullEqualsPseudo(src, dst, f) {
					wantCompleted++
				}
			}
		}
		t.Logf("checksum offload off: %d of %d full checksums equal their pseudo-header sum", wantCompleted, valid)
	}
	if got := int(cs.AllEvents(nil)[EventChecksumCompleted]); got != wantCompleted {
		t.Errorf("checksums completed: %d, want %d", got, wantCompleted)
	}
	for w, st := range e.BurstStats() {
		if st.TxUnsent != 0 {
			t.Errorf("worker %d: %d frames refused by the PMD: %+v", w, st.TxUnsent, st)
		}
	}
}

// TestVethAFXDPBoth runs both relay ports on AF_XDP (each with its own pool).
func TestVethAFXDPBoth(t *testing.T) { vethRelay(t, afXDP(66), afXDP(67)) }

// fullEqualsPseudo reports whether the UDP checksum the sender's kernel
// computes in full for payload from src to dst equals the folded sum of the
// datagram's pseudo-header: the value a checksum left to offload holds.
func fullEqualsPseudo(src, dst netip.AddrPort, payload []byte) bool {
	n := 8 + len(payload)
	var pseudo uint32
	add := func(b []byte) uint32 {
		var s uint32
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
		return s
	}
	fold := func(s uint32) uint16 {
		for s>>16 != 0 {
			s = s&0xffff + s>>16
		}
		return uint16(s)
	}
	sa, da := src.Addr().Unmap().AsSlice(), dst.Addr().Unmap().AsSlice()
	pseudo = add(sa) + add(da) + uint32(wire.ProtoUDP) + uint32(n)
	hdr := []byte{byte(src.Port() >> 8), byte(src.Port()), byte(dst.Port() >> 8), byte(dst.Port()), byte(n >> 8), byte(n), 0, 0}
	full := ^fold(pseudo + add(hdr) + add(payload))
	if full == 0 {
		full = 0xffff
	}
	return full == fold(pseudo)
}
