package control

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/control/controltest"
	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/endnode"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/journal"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/ledger/score"
	"github.com/poolrelay/poolrelay/pool/proto"
	"github.com/poolrelay/poolrelay/pool/transport"
	"github.com/poolrelay/poolrelay/sched"
)

// enrolled brings up a relay and two end nodes, A (sender) and B (echo),
// both enrolled, with a route from A to B and an end-to-end session.
func enrolled(t *testing.T) (*world, *testNode, *testNode, *endnode.Sender) {
	w := newWorld(t, nil)
	a, b := w.addNode(0xa1, false), w.addNode(0xb2, true)
	for _, n := range []*testNode{a, b} {
		if err := n.Enroll(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "both peers enrolled", func() bool { return w.core.Counter(PeersEnrolled) == 2 })
	bAddr := b.Address(1, 1)
	s, err := a.OpenRoute(ctx(t), bAddr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	snd, err := a.Connect(ctx(t), s, bAddr)
	if err != nil {
		t.Fatal(err)
	}
	return w, a, b, snd
}

func TestEnrollRouteAndRelay(t *testing.T) {
	w, a, b, snd := enrolled(t)
	if w.core.Counter(RoutesOpened) != 1 || w.plane.Routes().Len() != 2 {
		t.Fatalf("routes opened %d, table %d", w.core.Counter(RoutesOpened), w.plane.Routes().Len())
	}
	r, ok := w.plane.Routes().Lookup(route.SessionID(snd.Route()))
	if !ok || r.DstPort != b.udp.Addr().Port() || r.IngressPeer == r.EgressPeer {
		t.Fatalf("forward route %+v", r)
	}
	rev, ok := w.plane.Routes().Lookup(route.SessionID(proto.ReverseSession(snd.Route())))
	if !ok || rev.DstPort != a.udp.Addr().Port() || rev.IngressPeer != r.EgressPeer || rev.EgressKey != r.IngressKey {
		t.Fatalf("reverse route %+v", rev)
	}
	payload := bytes.Repeat([]byte{0x5a}, 1000)
	sendPaced(t, a, snd, payload, 100)
	if b.got.Load() != 100 || a.Stats.HopRejected.Load()+a.Stats.InnerRejected.Load() != 0 {
		t.Fatalf("B got %d; A rejected hop %d inner %d", b.got.Load(), a.Stats.HopRejected.Load(), a.Stats.InnerRejected.Load())
	}
	// The inner frame crossed the relay untouched: the payload never
	// appears in the clear on the wire.
	if f := a.tap.lastOfType(wire.TypeData, 0); bytes.Contains(f, payload[:64]) {
		t.Fatal("end-to-end payload in the clear")
	}
	// A frame spoofed with A's route id and a bad MAC reaches no one and is
	// charged to no one.
	before := w.plane.Peer(r.IngressPeer)
	spoof := bytes.Clone(a.tap.lastOfType(wire.TypeData, 0))
	hopmacSeq := wire.Header(spoof).Seq() + 1000
	wire.Header(spoof).SetSeq(hopmacSeq)
	sendRaw(t, w.relay.Addr(), spoof)
	eventually(t, "spoofed frame dropped", func() bool { return w.plane.Dropped.Load() >= 1 })
	if after := w.plane.Peer(r.IngressPeer); after != before {
		t.Fatalf("spoofed frame charged: %+v -> %+v", before, after)
	}
	// Route open and the enrolments are journalled by the ledger/core.
	w.step(time.Second)
	assertJournal(t, w, event.Enroll, 2)
	assertJournal(t, w, event.RouteOpen, 1)
}

func assertJournal(t *testing.T, w *world, typ event.Type, want int) {
	t.Helper()
	j := w.led.Journal()
	n := 0
	eventually(t, "journal "+typ.String(), func() bool {
		n = 0
		_ = j.Records(1, func(r *journal.Record) error {
			if r.Type == typ {
				n++
			}
			return nil
		})
		return n >= want
	})
}

func TestHeartbeatsCrossChecked(t *testing.T) {
	w, a, b, snd := enrolled(t)
	sendPaced(t, a, snd, make([]byte, 500), 20)
	// Two heartbeat rounds: each side signs and checks the other's.
	for range 2 {
		w.step(5 * time.Second)
	}
	eventually(t, "relay accepted 4 heartbeats", func() bool { return w.core.Counter(HeartbeatsAccepted) >= 4 })
	eventually(t, "nodes accepted the relay's", func() bool {
		return a.Stats.HeartbeatsAccepted.Load() >= 2 && b.Stats.HeartbeatsAccepted.Load() >= 2
	})
	if m := w.core.Counter(HeartbeatMismatch); m != 0 {
		t.Fatalf("%d mismatches between honest counters", m)
	}
	// Each node is charged for the frames it sent and credited nothing for
	// the frames delivered to it: delivery is not relaying, and counting it
	// would promote a pure sink to the top class.
	for _, n := range []*testNode{a, b} {
		pid, err := peer.FromPublicKey(n.id.PublicKey().Ed25519())
		if err != nil {
			t.Fatal(err)
		}
		v, err := w.led.Peer(pid)
		if err != nil {
			t.Fatal(err)
		}
		u := v.Account.Usage
		// (RelayedFor also holds the few frames of the end-to-end
		// handshake, which the node does not count as data.)
		if sent := n.Stats.DataSent.Load(); u.RelayedFor.Packets < sent || u.RelayedFor.Packets > sent+4 || u.RelayedBy.Packets != 0 {
			t.Fatalf("node charged for %d frames (sent %d), credited for %d", u.RelayedFor.Packets, n.Stats.DataSent.Load(), u.RelayedBy.Packets)
		}
	}
	// The echoes measured the link both ways: on the fake clock frames
	// take no time, so the RTT is zero and nothing was lost; what matters
	// is that a measure exists and a node reports it to the relay.
	peers, err := w.core.Peers(ctx(t))
	if err != nil || len(peers) != 2 {
		t.Fatal(peers, err)
	}
	for _, p := range peers {
		if p.Measured.LossPPM != 0 || p.HeartbeatsSeen < 2 || p.Telemetry.MTU != 1500 {
			t.Fatalf("peer %+v", p)
		}
	}
	// Now the relay's data plane counts far more for A than A sent: A's
	// signed counters no longer match, and the ledger records a mismatch.
	w.plane.Extra.Store(1 << 22)
	_ = snd.Send(make([]byte, 100))
	eventually(t, "echo", func() bool { return a.Stats.DataReceived.Load() == 21 })
	for range 2 {
		w.step(5 * time.Second)
	}
	eventually(t, "mismatch counted", func() bool { return w.core.Counter(HeartbeatMismatch) >= 1 })
	assertJournal(t, w, event.Mismatch, 1)
}

// sendPaced sends n frames in bursts of 10, each burst echoed back before
// the next: loopback UDP drops what overflows a socket buffer, and this test
// is about the relay, not about the kernel's buffers.
func sendPaced(t *testing.T, a *testNode, snd *endnode.Sender, payload []byte, n int) {
	t.Helper()
	base := a.Stats.DataReceived.Load()
	for i := 0; i < n; i += 10 {
		for range min(10, n-i) {
			if err := snd.Send(payload); err != nil {
				t.Fatal(err)
			}
		}
		want := base + uint64(min(i+10, n))
		eventually(t, "echoes back at A", func() bool { return a.Stats.DataReceived.Load() == want })
	}
}

// sendRaw sends a frame to the relay from a fresh socket (an attacker).
func sendRaw(t *testing.T, to netip.AddrPort, f []byte) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(f); err != nil {
		t.Fatal(err)
	}
}

func TestForgedReplayedTruncatedStaleControl(t *testing.T) {
	w, a, _, _ := enrolled(t)
	w.step(5 * time.Second)
	eventually(t, "heartbeat from A", func() bool { return w.core.Counter(HeartbeatsAccepted) >= 2 })
	hb := a.tap.lastOfType(wire.TypeHeartbeat, proto.ChannelControl)
	if hb == nil {
		t.Fatal("no heartbeat recorded")
	}
	cases := []struct {
		name  string
		frame []byte
		want  Counter
	}{
		{"replayed", bytes.Clone(hb), ControlReplay},
		// A fresh seq, so that the replay window does not stop it first.
		{"forged", func() []byte {
			f := bytes.Clone(hb)
			wire.Header(f).SetSeq(wire.Header(f).Seq() + 100)
			f[len(f)-3] ^= 0x40
			return f
		}(), ControlAuth},
		{"truncated", hb[:len(hb)-10], ControlTruncated},
		{"wrong generation", func() []byte { f := bytes.Clone(hb); f[wire.HeaderLen+7] = 9; return f }(), ControlGeneration},
	}
	// A recorded RESPONSE replayed from elsewhere, and a REKEY forged for
	// A's session by someone without its keys.
	cases = append(cases, struct {
		name  string
		frame []byte
		want  Counter
	}{"replayed RESPONSE", a.tap.lastOfType(wire.TypeResponse, proto.ChannelControl), HandshakeBadCookie})
	rekey := make([]byte, handshake.RekeySize)
	rekey[0], rekey[1], rekey[15] = 1, byte(handshake.KindRekey), 5
	cases = append(cases, struct {
		name  string
		frame []byte
		want  Counter
	}{"forged REKEY", proto.AppendHandshake(nil, handshake.KindRekey, [16]byte(wire.Header(hb).Session()), 1, rekey), ControlAuth})
	for _, c := range cases {
		before := w.core.Counter(c.want)
		sendRaw(t, w.relay.Addr(), c.frame)
		eventually(t, c.name+" counted", func() bool { return w.core.Counter(c.want) == before+1 })
	}
	// The same RESPONSE from A's own address is a retransmission (A lost
	// the ACK): the relay sends the ACK again and keeps one session.
	before := w.core.Counter(AcksResent)
	if err := a.udp.Send(transport.Endpoint{Addr: w.relay.Addr()}, a.tap.lastOfType(wire.TypeResponse, proto.ChannelControl)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ACK resent", func() bool { return w.core.Counter(AcksResent) == before+1 })
	if w.core.Counter(PeersEnrolled) != 2 {
		t.Fatal("a retransmitted RESPONSE made a second session")
	}
	// Stale: an authentic frame held back past the tolerance. Keep the
	// session alive meanwhile.
	for range 7 {
		w.step(5 * time.Second)
	}
	before = w.core.Counter(ControlStale)
	sendRaw(t, w.relay.Addr(), hb)
	eventually(t, "stale counted", func() bool { return w.core.Counter(ControlStale) == before+1 })
	if w.core.Counter(PeersClosed) != 0 {
		t.Fatal("an attack closed a peer")
	}
}

func TestHeartbeatRejections(t *testing.T) {
	w, a, _, _ := enrolled(t)
	w.step(5 * time.Second)
	eventually(t, "heartbeat from A", func() bool { return w.core.Counter(HeartbeatsAccepted) >= 2 })
	var ps *peerState
	if err := w.core.do(ctx(t), func() { ps = w.core.peers[a.id.PublicKey()] }); err != nil || ps == nil {
		t.Fatal("A not enrolled", err)
	}
	now := w.clk.Now()
	relayKey := w.core.o.Identity.PublicKey()
	mk := func(mut func(*proto.Heartbeat)) proto.Heartbeat {
		h := proto.Heartbeat{Time: now, Seq: 1000, Subject: relayKey}
		mut(&h)
		return h
	}
	cases := []struct {
		name string
		body []byte
		want Counter
	}{
		{"signed by another key", func() []byte {
			h := mk(func(*proto.Heartbeat) {})
			return h.AppendSigned(nil, ps.id, seeded(t, 0x99))
		}(), HeartbeatSignature},
		{"about another peer", func() []byte {
			h := mk(func(h *proto.Heartbeat) { h.Subject = a.id.PublicKey() })
			return h.AppendSigned(nil, ps.id, a.id)
		}(), HeartbeatSubject},
		{"old sequence", func() []byte {
			h := mk(func(h *proto.Heartbeat) { h.Seq = 1 })
			return h.AppendSigned(nil, ps.id, a.id)
		}(), HeartbeatReplay},
		{"stale time", func() []byte {
			h := mk(func(h *proto.Heartbeat) { h.Time = now.Add(-time.Hour) })
			return h.AppendSigned(nil, ps.id, a.id)
		}(), HeartbeatStale},
		{"forged head", func() []byte {
			head, _ := journal.SignHead(journal.Head{Index: 3}, seeded(t, 0x98))
			h := mk(func(h *proto.Heartbeat) { h.HasHead, h.Head = true, head })
			return h.AppendSigned(nil, ps.id, a.id)
		}(), HeartbeatHead},
		{"truncated", make([]byte, 10), HeartbeatMalformed},
	}
	for _, c := range cases {
		before := w.core.Counter(c.want)
		if err := w.core.do(ctx(t), func() { w.core.onHeartbeat(ps, c.body, now) }); err != nil {
			t.Fatal(err)
		}
		if w.core.Counter(c.want) != before+1 {
			t.Errorf("%s: %v not counted", c.name, c.want)
		}
	}
	// A genuine one with a higher sequence still passes.
	good := mk(func(h *proto.Heartbeat) { h.Seq = 2000 })
	before := w.core.Counter(HeartbeatsAccepted)
	_ = w.core.do(ctx(t), func() { w.core.onHeartbeat(ps, good.AppendSigned(nil, ps.id, a.id), now) })
	if w.core.Counter(HeartbeatsAccepted) != before+1 {
		t.Fatal("genuine heartbeat refused")
	}
}

func TestInitFloodRaisesPuzzle(t *testing.T) {
	w, a, _, _ := enrolled(t)
	if d := w.core.Difficulty(); d != 0 {
		t.Fatalf("difficulty %d before the flood", d)
	}
	init := make([]byte, 0, 400)
	{
		i, err := handshake.NewInitiator(handshake.InitiatorConfig{Identity: seeded(t, 0x77), Network: network,
			Clock: w.clk, Rand: bytes.NewReader(bytes.Repeat([]byte{7}, 64))})
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := i.Init(nil)
		init = proto.AppendHandshake(init, handshake.KindInit, [16]byte{}, 1, msg)
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(w.relay.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The flood arrives within one fake-clock instant: thousands of INITs
	// per 100 ms slot is far past the 2,000/s flood rate.
	for range 3000 {
		_, _ = c.Write(init)
	}
	eventually(t, "challenges answered", func() bool { return w.core.Counter(Challenges) >= 500 })
	// The rate estimate closes its 100 ms slot on the first INIT after it.
	w.clk.Advance(150 * time.Millisecond)
	_, _ = c.Write(init)
	eventually(t, "difficulty raised", func() bool { return w.core.Difficulty() >= 16 })
	// The established peer keeps its heartbeats through the flood.
	before := w.core.Counter(HeartbeatsAccepted)
	w.step(5 * time.Second)
	eventually(t, "heartbeats during the flood", func() bool { return w.core.Counter(HeartbeatsAccepted) >= before+1 })
	eventually(t, "A still hears the relay", func() bool { return a.Stats.HeartbeatsAccepted.Load() >= 1 })
	if w.core.Counter(PeersClosed) != 0 {
		t.Fatal("the flood cost an established peer its session")
	}
}

func TestRouteRefusalsAndClose(t *testing.T) {
	w, a, b, snd := enrolled(t)
	// To an identity that is not enrolled.
	stranger := address.New(address.TypeNode, 1, 1, seeded(t, 0x44).PublicKey())
	if _, err := a.OpenRoute(ctx(t), stranger, time.Minute); err == nil {
		t.Fatal("route to a stranger opened")
	}
	// To itself.
	if _, err := a.OpenRoute(ctx(t), a.Address(1, 1), time.Minute); err == nil {
		t.Fatal("route to itself opened")
	}
	if w.core.Counter(RoutesRefused) != 2 {
		t.Fatalf("refused %d", w.core.Counter(RoutesRefused))
	}
	// Expiry: the route lives a minute.
	for range 13 {
		w.step(5 * time.Second)
	}
	eventually(t, "route expired", func() bool { return w.core.Counter(RoutesExpired) == 1 })
	if w.plane.Routes().Len() != 0 {
		t.Fatalf("%d routes left", w.plane.Routes().Len())
	}
	if _, ok := w.plane.Routes().Lookup(route.SessionID(snd.Route())); ok {
		t.Fatal("expired route still installed")
	}
	_ = b
	assertJournal(t, w, event.RouteClose, 1)
}

func TestPeerTimeoutAndListedPolicy(t *testing.T) {
	allowed := seeded(t, 0xa1)
	w := newWorld(t, func(c *Config) {
		c.Enroll = EnrollListed
		c.ListedKeys = []string{peer.ID(allowed.PublicKey()).String()}
	})
	a, x := w.addNode(0xa1, false), w.addNode(0xc3, false)
	if err := a.Enroll(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// x is not listed: its INIT gets no CHALLENGE and it never enrolls.
	go func() { _ = x.Enroll(ctx(t)) }()
	eventually(t, "x refused", func() bool { return w.core.Counter(HandshakeNotEnrolled) >= 1 })
	eventually(t, "A enrolled", func() bool { return w.core.Counter(PeersEnrolled) == 1 })
	// A goes silent (its node stops ticking, so it sends no heartbeat):
	// after peer_timeout the relay drops it and frees its slot.
	a.udp.Close()
	for range 8 {
		w.clk.Advance(5 * time.Second)
		w.ticks <- w.clk.Now()
	}
	eventually(t, "A timed out", func() bool { return w.core.Counter(PeersTimedOut) == 1 })
}

var _ transport.Transport = (*controltest.Relay)(nil)

func TestRekeyKeepsTrafficFlowing(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.PeerTimeout, c.RouteMaxLifetime = 3*time.Hour, 3*time.Hour })
	a, b := w.addNode(0xa1, false), w.addNode(0xb2, true)
	for _, n := range []*testNode{a, b} {
		if err := n.Enroll(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	bAddr := b.Address(1, 1)
	s, err := a.OpenRoute(ctx(t), bAddr, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	snd, err := a.Connect(ctx(t), s, bAddr)
	if err != nil {
		t.Fatal(err)
	}
	sendPaced(t, a, snd, make([]byte, 200), 10)
	// An hour later the relay (the sessions' responder, so a little later
	// than the hour) rekeys both sessions; a heartbeat under the new keys
	// makes each node switch.
	w.step(time.Hour + time.Minute)
	eventually(t, "both sessions rekeyed", func() bool { return w.core.Counter(Rekeys) == 2 })
	w.step(5 * time.Second)
	sendPaced(t, a, snd, make([]byte, 200), 10)
	assertJournal(t, w, event.Rekey, 2)
}

func TestRelayEnrollsWithRelay(t *testing.T) {
	w1 := newWorld(t, nil)
	w2 := newWorld(t, nil)
	key, err := w2.core.Enroll(ctx(t), transport.Endpoint{Addr: w1.relay.Addr()}, w1.relayA)
	if err != nil {
		t.Fatal(err)
	}
	if key != w1.core.o.Identity.PublicKey() {
		t.Fatal("enrolled with someone else")
	}
	eventually(t, "both ends enrolled", func() bool {
		return w1.core.Counter(PeersEnrolled) == 1 && w2.core.Counter(PeersEnrolled) == 1
	})
	// Wrong expected address: refused by the initiator.
	other := address.New(address.TypeRelay, 1, 1, seeded(t, 0x66).PublicKey())
	if _, err := w2.core.Enroll(ctx(t), transport.Endpoint{Addr: w1.relay.Addr()}, other); err == nil {
		t.Fatal("enrolled with a relay that is not the expected one")
	}
	peers, err := w1.core.Peers(ctx(t))
	if err != nil || len(peers) != 1 || peers[0].Role != proto.RoleRelay {
		t.Fatalf("%+v %v", peers, err)
	}
}

// TestTwoRelayPath: A is enrolled with R1, B with R2, R1 with R2. A opens a
// path R1 -> R2 -> B; R1 asks R2 for its leg first; frames go A -> R1 -> R2
// -> B and back.
func TestTwoRelayPath(t *testing.T) {
	w1, w2 := newWorld(t, nil), newWorld(t, nil)
	if _, err := w1.core.Enroll(ctx(t), transport.Endpoint{Addr: w2.relay.Addr()}, w2.relayA); err != nil {
		t.Fatal(err)
	}
	a, b := w1.addNode(0xa1, false), w2.addNode(0xb2, true)
	for _, n := range []*testNode{a, b} {
		if err := n.Enroll(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	bAddr := b.Address(1, 1)
	// Through a relay that does not know B, without naming R2: refused.
	if _, err := a.OpenRoute(ctx(t), bAddr, time.Minute); err == nil {
		t.Fatal("R1 opened a route to a node it does not know")
	}
	s, err := a.OpenPath(ctx(t), []address.Address{w2.relayA, bAddr}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if w1.plane.Routes().Len() != 2 || w2.plane.Routes().Len() != 2 {
		t.Fatalf("routes: R1 %d, R2 %d", w1.plane.Routes().Len(), w2.plane.Routes().Len())
	}
	snd, err := a.Connect(ctx(t), s, bAddr)
	if err != nil {
		t.Fatal(err)
	}
	sendPaced(t, a, snd, make([]byte, 300), 30)
	if w1.plane.Forwarded.Load() < 60 || w2.plane.Forwarded.Load() < 60 {
		t.Fatalf("forwarded R1 %d R2 %d", w1.plane.Forwarded.Load(), w2.plane.Forwarded.Load())
	}
	// Heartbeats keep the relays' session up; the route expires on both
	// (whichever end sweeps first closes it at the other).
	for range 13 {
		w1.step(5 * time.Second)
		w2.step(5 * time.Second)
	}
	eventually(t, "both legs closed", func() bool { return w1.plane.Routes().Len() == 0 && w2.plane.Routes().Len() == 0 })
	if w1.core.Counter(PeersClosed)+w2.core.Counter(PeersClosed) != 0 {
		t.Fatal("a session was lost on the way")
	}
	if w1.core.Counter(HeartbeatsAccepted) < 13 || w2.core.Counter(HeartbeatsAccepted) < 13 {
		t.Fatalf("relay heartbeats: %d, %d", w1.core.Counter(HeartbeatsAccepted), w2.core.Counter(HeartbeatsAccepted))
	}
}

// TestHeartbeatTelemetryShown: the telemetry of a crafted heartbeat reaches
// Peers exactly as the peer sent it, beside this relay's own measures.
func TestHeartbeatTelemetryShown(t *testing.T) {
	w, a, _, _ := enrolled(t)
	var ps *peerState
	if err := w.core.do(ctx(t), func() { ps = w.core.peers[a.id.PublicKey()] }); err != nil || ps == nil {
		t.Fatal("A not enrolled", err)
	}
	now := w.clk.Now()
	sent := proto.Telemetry{RTT: 1234 * time.Microsecond, Jitter: 56 * time.Microsecond, LossPPM: 2500, MTU: 1492,
		Throughput: 987_654_321, QueueDepth: 7, RekeyCount: 2, Uptime: 36 * time.Hour, ConfigVersion: 9}
	h := proto.Heartbeat{Time: now, Seq: 5000, Subject: w.core.o.Identity.PublicKey(), Tel: sent}
	before := w.core.Counter(HeartbeatsAccepted)
	_ = w.core.do(ctx(t), func() { w.core.onHeartbeat(ps, h.AppendSigned(nil, ps.id, a.id), now) })
	if w.core.Counter(HeartbeatsAccepted) != before+1 {
		t.Fatal("heartbeat refused")
	}
	infos, err := w.core.Peers(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, pi := range infos {
		if pi.Key != a.id.PublicKey() {
			continue
		}
		if pi.Telemetry != sent {
			t.Errorf("claimed telemetry %+v, want %+v as sent", pi.Telemetry, sent)
		}
		if pi.Measured.MTU != w.core.o.MTU || pi.Measured.Uptime != now.Sub(pi.Established) {
			t.Errorf("local telemetry %+v: want our MTU %d and the session's age %v", pi.Measured, w.core.o.MTU, now.Sub(pi.Established))
		}
		return
	}
	t.Fatal("A not among the peers")
}

// An end node never relays, so its score makes it a heavy consumer; the
// relay still serves it in the normal class and lets its frames credit the
// next hop: otherwise the deprioritised mark would carry its users'
// traffic in the lowest class on every hop.
func TestEndNodeServedNormal(t *testing.T) {
	w, a, _, snd := enrolled(t)
	ps := w.peerOf(a)
	sendPaced(t, a, snd, make([]byte, 1000), 100)
	for range 12 { // past a class tick, with the counters observed
		w.step(time.Second)
	}
	if v := w.view(a); v.Class != score.HeavyConsumer || v.Credits {
		t.Fatalf("end node's score: class %v, credits %v; want a heavy consumer that gives no credit", v.Class, v.Credits)
	}
	if c, choked := w.plane.Class(ps.slot); c != sched.Normal || choked || !w.plane.Credit(ps.slot) {
		t.Fatalf("end node published as %v (choked %v, credit %v), want normal, crediting", c, choked, w.plane.Credit(ps.slot))
	}
}
