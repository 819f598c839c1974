package control

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/journal"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/pool/proto"
	"github.com/poolrelay/poolrelay/pool/transport"
)

// peerOf returns the core's state of an enrolled node (nil if none).
func (w *world) peerOf(n *testNode) *peerState {
	var ps *peerState
	if err := w.core.do(ctx(w.t), func() { ps = w.core.peers[n.id.PublicKey()] }); err != nil {
		w.t.Fatal(err)
	}
	return ps
}

// view is the ledger's account of n.
func (w *world) view(n *testNode) ledger.View {
	v, err := w.led.Peer(peer.ID(n.id.PublicKey()))
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

// notes returns the notes of the journal records of type typ, once there
// are at least want of them.
func notes(t *testing.T, w *world, typ event.Type, want int) []string {
	t.Helper()
	var out []string
	eventually(t, "journal "+typ.String(), func() bool {
		out = out[:0]
		_ = w.led.Journal().Records(1, func(r *journal.Record) error {
			if r.Type != typ {
				return nil
			}
			b, err := r.Event()
			if err != nil {
				return err
			}
			switch e := b.(type) {
			case *event.Route:
				out = append(out, e.Note)
			case *event.PeerNote:
				out = append(out, e.Note)
			}
			return nil
		})
		return len(out) >= want
	})
	return out
}

func TestUnenrollKeepsDebt(t *testing.T) {
	w, a, b, snd := enrolled(t)
	// All on one instant of the fake clock: the session that follows the
	// unenrollment starts within the same nanosecond as the first.
	sendPaced(t, a, snd, make([]byte, 1000), 100)
	ps := w.peerOf(a)
	slot := ps.slot
	if err := w.core.Unenroll(ctx(t), a.id.PublicKey()); err != nil {
		t.Fatal(err)
	}
	// Gone from the core and the data plane; the other end of its route
	// was told; A got an authenticated CLOSE and can no longer send.
	if p := w.peerOf(a); p != nil || w.plane.HasKeys(slot) || w.plane.Routes().Len() != 0 {
		t.Fatalf("after unenroll: peer %v, keys %v, %d routes", p != nil, w.plane.HasKeys(slot), w.plane.Routes().Len())
	}
	if _, choked := w.plane.Class(slot); !choked {
		t.Fatal("a freed slot is not choked")
	}
	eventually(t, "A's session closed", func() bool { return snd.Send([]byte("x")) != nil })
	if w.core.Counter(PeersClosed) != 1 || w.core.Counter(RoutesClosed) != 1 {
		t.Fatalf("closed %d peers, %d routes", w.core.Counter(PeersClosed), w.core.Counter(RoutesClosed))
	}
	if n := notes(t, w, event.RouteClose, 1); !strings.Contains(n[0], "unenrolled by the operator") {
		t.Fatalf("route close journalled as %q", n[0])
	}
	if n := notes(t, w, event.Disconnect, 1); n[0] != "unenrolled by the operator" {
		t.Fatalf("disconnect journalled as %q", n[0])
	}
	// The account stays, debt included: the traffic up to the CLOSE was
	// charged on the way out.
	before := w.view(a)
	if before.Account.Connected || before.Account.Debt() == 0 || before.Account.Usage.RelayedFor.Packets < 100 {
		t.Fatalf("account after unenroll: %+v", before.Account)
	}
	if err := w.core.Unenroll(ctx(t), a.id.PublicKey()); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("second unenroll: %v", err)
	}
	// A comes back: the debt is still there, and the new session's
	// traffic, smaller than the last one's, is charged on top of it.
	if err := a.Enroll(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if v := w.view(a); !v.Account.Connected || v.Account.Balance < before.Account.Balance {
		t.Fatalf("re-enrolled account %+v, before %+v", v.Account, before.Account)
	}
	bAddr := b.Address(1, 1)
	s, err := a.OpenRoute(ctx(t), bAddr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	snd, err = a.Connect(ctx(t), s, bAddr)
	if err != nil {
		t.Fatal(err)
	}
	sendPaced(t, a, snd, make([]byte, 100), 20)
	w.step(0)
	after := w.view(a)
	if got := after.Account.Usage.RelayedFor.Packets - before.Account.Usage.RelayedFor.Packets; got < 20 {
		t.Fatalf("second session charged %d frames, want at least 20", got)
	}
	if after.Account.Balance <= before.Account.Balance {
		t.Fatalf("balance %d after a second session, %d before", after.Account.Balance, before.Account.Balance)
	}
}

func TestStaticRoutes(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.PeerTimeout, c.MaxRoutesPerPeer = 3*time.Hour, 1 })
	a, b := w.addNode(0xa1, false), w.addNode(0xb2, true)
	for _, n := range []*testNode{a, b} {
		if err := n.Enroll(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	ka, kb := a.id.PublicKey(), b.id.PublicKey()
	s, err := ParseSession("0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	info, err := w.core.AddRoute(ctx(t), StaticRoute{Session: s, From: ka, To: kb})
	if err != nil {
		t.Fatal(err)
	}
	if info.Counters[0] == 0 || info.Counters[1] == 0 || info.Counters[0] == info.Counters[1] || !info.Installed.Equal(w.clk.Now()) {
		t.Errorf("added with counter slots %v at %v: want two of its own, now", info.Counters, info.Installed)
	}
	info.Counters, info.Installed = [2]uint32{}, time.Time{}
	if want := (RouteInfo{Session: s, From: ka, To: kb, Static: true}); info != want {
		t.Fatalf("added %+v, want %+v", info, want)
	}
	pa, pb := w.peerOf(a), w.peerOf(b)
	fwd, ok1 := w.plane.Routes().Lookup(route.SessionID(s))
	rev, ok2 := w.plane.Routes().Lookup(route.SessionID(proto.ReverseSession(s)))
	if !ok1 || !ok2 || fwd.IngressPeer != pa.slot || fwd.EgressPeer != pb.slot || fwd.DstPort != b.udp.Addr().Port() ||
		fwd.Expires != 0 || rev.IngressPeer != pb.slot || rev.DstPort != a.udp.Addr().Port() {
		t.Fatalf("forward %+v (%v), reverse %+v (%v)", fwd, ok1, rev, ok2)
	}
	if n := notes(t, w, event.RouteOpen, 1); !strings.Contains(n[0], "static") {
		t.Fatalf("route open journalled as %q", n[0])
	}
	// A, told of the route out of band, talks to B over it.
	snd, err := a.Connect(ctx(t), s, b.Address(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	sendPaced(t, a, snd, make([]byte, 300), 20)

	// What the operator may not add.
	bad := []struct {
		name string
		r    StaticRoute
		want error
	}{
		{"same id", StaticRoute{Session: s, From: kb, To: ka}, ErrRouteExists},
		{"its reverse", StaticRoute{Session: proto.ReverseSession(s), From: kb, To: ka}, ErrRouteExists},
		{"a peer's session", StaticRoute{Session: pa.id, From: ka, To: kb}, ErrRouteExists},
		{"stranger", StaticRoute{Session: [16]byte{9}, From: ka, To: seeded(t, 0x44).PublicKey()}, ErrUnknownPeer},
		{"loop", StaticRoute{Session: [16]byte{9}, From: ka, To: ka}, ErrInvalidRoute},
		{"zero id", StaticRoute{From: ka, To: kb}, ErrInvalidRoute},
		{"negative lifetime", StaticRoute{Session: [16]byte{9}, From: ka, To: kb, Lifetime: -time.Second}, ErrInvalidRoute},
	}
	for _, c := range bad {
		if _, err := w.core.AddRoute(ctx(t), c.r); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// The peers can neither renew the operator's route (which would give
	// it their lifetime) nor close it.
	var body []byte
	open := proto.RouteOpen{Request: 7, Lifetime: 60, Session: s, Next: b.Address(1, 1)}
	body, _ = open.AppendBinary(nil)
	refused, unexpected := w.core.Counter(RoutesRefused), w.core.Counter(RxUnexpected)
	_ = w.core.do(ctx(t), func() { w.core.onRouteOpen(pa, body) })
	closeMsg := proto.RouteError{Session: s}
	body, _ = closeMsg.AppendBinary(nil)
	_ = w.core.do(ctx(t), func() { w.core.onRouteClose(pb, body) })
	if w.core.Counter(RoutesRefused) != refused+1 || w.core.Counter(RxUnexpected) != unexpected+1 {
		t.Fatal("a peer renewed or closed a static route")
	}
	// Nor does it expire, or count against A's quota of one route.
	w.step(2 * time.Hour)
	routes, err := w.core.Routes(ctx(t))
	if err != nil || len(routes) != 1 {
		t.Fatalf("routes %+v, %v", routes, err)
	}
	// Every frame the plane forwarded went over this route, the only
	// one: its two directions' counts add up to them, the 20 messages
	// from A at least.
	got := routes[0]
	if tr := got.Traffic; tr[0].Packets < 20 || tr[0].Packets+tr[1].Packets != w.plane.Forwarded.Load() || tr[0].Bytes < 20*300 {
		t.Errorf("route traffic %+v, plane forwarded %d frames", tr, w.plane.Forwarded.Load())
	}
	got.Counters, got.Installed, got.Traffic = [2]uint32{}, time.Time{}, [2]counters.Route{}
	if got != info {
		t.Fatalf("routes %+v, want %+v", got, info)
	}
	if _, err := a.OpenRoute(ctx(t), b.Address(1, 1), time.Minute); err != nil {
		t.Fatalf("A's own route, its first: %v", err)
	}
	if _, err := a.OpenRoute(ctx(t), b.Address(1, 1), time.Minute); err == nil {
		t.Fatal("A opened a second route past max_routes_per_peer = 1")
	}
	// B is the next hop of two routes, but opened none: its quota is free.
	if _, err := b.OpenRoute(ctx(t), a.Address(1, 1), time.Minute); err != nil {
		t.Fatalf("B's first route: %v", err)
	}

	// route del: a static route, then a peer's by its reverse id.
	if err := w.core.CloseRoute(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	if err := w.core.CloseRoute(ctx(t), s); !errors.Is(err, ErrUnknownRoute) {
		t.Fatalf("second close: %v", err)
	}
	if _, ok := w.plane.Routes().Lookup(route.SessionID(proto.ReverseSession(s))); ok {
		t.Fatal("the reverse of a deleted route is still installed")
	}
	routes, _ = w.core.Routes(ctx(t))
	if len(routes) != 2 {
		t.Fatalf("%d routes", len(routes))
	}
	if err := w.core.CloseRoute(ctx(t), proto.ReverseSession(routes[0].Session)); err != nil {
		t.Fatal(err)
	}
	if n := notes(t, w, event.RouteClose, 2); n[0] != "closed by the operator" || n[1] != "closed by the operator" {
		t.Fatalf("route close journalled as %q", n)
	}

	// A static route with a lifetime expires; one without goes with its
	// peer.
	if _, err := w.core.AddRoute(ctx(t), StaticRoute{Session: [16]byte{1}, From: ka, To: kb, Lifetime: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.core.AddRoute(ctx(t), StaticRoute{Session: [16]byte{2}, From: kb, To: ka}); err != nil {
		t.Fatal(err)
	}
	w.step(time.Minute)
	routes, _ = w.core.Routes(ctx(t))
	if len(routes) != 1 || routes[0].Session != [16]byte{2} || !routes[0].Static {
		t.Fatalf("a minute later: %+v", routes)
	}
	if err := w.core.Unenroll(ctx(t), kb); err != nil {
		t.Fatal(err)
	}
	if routes, _ := w.core.Routes(ctx(t)); len(routes) != 0 || w.plane.Routes().Len() != 0 {
		t.Fatalf("routes after B left: %+v", routes)
	}
}

func TestParseSession(t *testing.T) {
	if s, err := ParseSession("000102030405060708090a0b0c0d0eFF"); err != nil || s != [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff} {
		t.Fatal(s, err)
	}
	for _, bad := range []string{"", "00", "000102030405060708090a0b0c0d0e0f00", "zz0102030405060708090a0b0c0d0e0f"} {
		if _, err := ParseSession(bad); !errors.Is(err, ErrInvalidRoute) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestSetConfig(t *testing.T) {
	w := newWorld(t, nil)
	a, x := w.addNode(0xa1, false), w.addNode(0xc3, false)
	for _, n := range []*testNode{a, x} {
		if err := n.Enroll(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultConfig()

	// Invalid, or changing what only a restart changes: refused whole.
	bad := cfg
	bad.Enroll = "closed"
	if err := w.core.SetConfig(bad); err == nil {
		t.Fatal("an invalid configuration applied")
	}
	fixed := cfg
	fixed.Tick, fixed.MaxPeers, fixed.PuzzleBase = 2*time.Second, 10, 4
	err := w.core.SetConfig(fixed)
	if !errors.Is(err, ErrNeedsRestart) || !strings.Contains(err.Error(), "tick, max_peers") {
		t.Fatalf("fixed settings changed: %v", err)
	}
	if d := w.core.Difficulty(); d != 0 {
		t.Fatalf("a refused configuration half applied: difficulty %d", d)
	}

	// Puzzle.
	next := cfg
	next.PuzzleBase = 4
	if err := w.core.SetConfig(next); err != nil {
		t.Fatal(err)
	}
	if d := w.core.Difficulty(); d != 4 {
		t.Fatalf("difficulty %d after puzzle_base = 4", d)
	}

	// Policy: listing A only disconnects X, which enrolled with us.
	next.Enroll, next.ListedKeys = EnrollListed, []string{peer.ID(a.id.PublicKey()).String()}
	if err := w.core.SetConfig(next); err != nil {
		t.Fatal(err)
	}
	if w.peerOf(x) != nil || w.peerOf(a) == nil || w.core.Counter(PeersClosed) != 1 {
		t.Fatal("listing A did not leave exactly A")
	}
	y := w.addNode(0xd4, false)
	yDone := make(chan error, 1)
	go func() { yDone <- y.Enroll(ctx(t)) }()
	eventually(t, "Y refused", func() bool { return w.core.Counter(HandshakeNotEnrolled) >= 1 })
	if w.peerOf(y) != nil {
		t.Fatal("Y enrolled while not listed")
	}
	// Open again: Y's next INIT gets in, and X can come back.
	next.Enroll, next.ListedKeys = EnrollOpen, nil
	if err := w.core.SetConfig(next); err != nil {
		t.Fatal(err)
	}
	w.step(time.Second)
	if err := <-yDone; err != nil {
		t.Fatalf("Y under the open policy: %v", err)
	}
	if err := x.Enroll(ctx(t)); err != nil {
		t.Fatalf("X under the open policy again: %v", err)
	}

	// Heartbeat interval: each peer's next heartbeat moves to one new
	// interval after its last.
	w.step(5 * time.Second)
	next.HeartbeatInterval = 15 * time.Second
	if err := w.core.SetConfig(next); err != nil {
		t.Fatal(err)
	}
	sent := w.core.Counter(HeartbeatsSent)
	w.step(10 * time.Second)
	if got := w.core.Counter(HeartbeatsSent); got != sent {
		t.Fatalf("%d heartbeats 10 s into a 15 s interval", got-sent)
	}
	w.step(5 * time.Second)
	if got := w.core.Counter(HeartbeatsSent); got != sent+3 {
		t.Fatalf("%d heartbeats after 15 s, want one per peer (3)", got-sent)
	}

	// Heartbeat tolerance, for the sessions already up: A's last
	// heartbeat, 5 s old, is stale under a 2 s tolerance (counted before
	// the replay window looks at it) and merely replayed under 60 s.
	hb := a.tap.lastOfType(wire.TypeHeartbeat, proto.ChannelControl)
	w.clk.Advance(5 * time.Second)
	next.HeartbeatTolerance = 2 * time.Second
	if err := w.core.SetConfig(next); err != nil {
		t.Fatal(err)
	}
	before := w.core.Counter(ControlStale)
	sendRaw(t, w.relay.Addr(), hb)
	eventually(t, "stale under 2 s", func() bool { return w.core.Counter(ControlStale) == before+1 })
	w.clk.Advance(40 * time.Second)
	next.HeartbeatTolerance, next.PeerTimeout = time.Minute, time.Hour
	if err := w.core.SetConfig(next); err != nil {
		t.Fatal(err)
	}
	before = w.core.Counter(ControlReplay)
	sendRaw(t, w.relay.Addr(), hb)
	eventually(t, "replay under 60 s", func() bool { return w.core.Counter(ControlReplay) == before+1 })

	// Route lifetime: a request for a minute gets the new cap of 10 s.
	next.RouteMaxLifetime = 10 * time.Second
	if err := w.core.SetConfig(next); err != nil {
		t.Fatal(err)
	}
	if _, err := a.OpenRoute(ctx(t), x.Address(1, 1), time.Minute); err != nil {
		t.Fatal(err)
	}
	routes, _ := w.core.Routes(ctx(t))
	if len(routes) != 1 || !routes[0].Expires.Equal(w.clk.Now().Add(10*time.Second)) {
		t.Fatalf("routes %+v at %v", routes, w.clk.Now())
	}
}

func TestStats(t *testing.T) {
	w, a, _, _ := enrolled(t)
	w.step(5 * time.Second)
	eventually(t, "heartbeats", func() bool { return w.core.Counter(HeartbeatsAccepted) >= 2 })
	// A RESPONSE replayed from another address: a failed handshake.
	sendRaw(t, w.relay.Addr(), a.tap.lastOfType(wire.TypeResponse, proto.ChannelControl))
	eventually(t, "bad cookie", func() bool { return w.core.Counter(HandshakeBadCookie) == 1 })
	s := w.core.Stats()
	if s.HandshakesCompleted != 2 || s.HandshakesFailed != 1 || s.EnrollmentsRefused != 0 ||
		s.HeartbeatsSent != w.core.Counter(HeartbeatsSent) || s.HeartbeatsSent < 2 ||
		s.HeartbeatsReceived != w.core.Counter(HeartbeatsAccepted) || s.HeartbeatsRejected != 0 || s.HeartbeatMismatches != 0 {
		t.Fatalf("%+v", s)
	}
	// The initiator's side of a handshake counts too.
	w2 := newWorld(t, nil)
	if _, err := w2.core.Enroll(ctx(t), transport.Endpoint{Addr: w.relay.Addr()}, w.relayA); err != nil {
		t.Fatal(err)
	}
	if got := w2.core.Stats().HandshakesCompleted; got != 1 {
		t.Fatalf("initiator counted %d handshakes", got)
	}
}

// TestHeartbeatCheckedAgainstFreshCounters: traffic relayed since the
// core's last tick is in the peer's signed counters; the core's side must
// include it too. The ledger's band here is tight (16 frames, 4 KiB, 2%),
// so a tick-old view of the relay's counters would show a mismatch.
func TestHeartbeatCheckedAgainstFreshCounters(t *testing.T) {
	w := newWorldLedger(t, nil, func(c *ledger.Config) { c.MismatchSlackBytes, c.MismatchSlackPackets = 4096, 16 })
	a, b := w.addNode(0xa1, false), w.addNode(0xb2, true)
	for _, n := range []*testNode{a, b} {
		if err := n.Enroll(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	bAddr := b.Address(1, 1)
	s, err := a.OpenRoute(ctx(t), bAddr, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	snd, err := a.Connect(ctx(t), s, bAddr)
	if err != nil {
		t.Fatal(err)
	}
	w.step(5 * time.Second) // the first claims: the ledger's baselines
	for range 2 {
		w.clk.Advance(5 * time.Second)
		w.tickCore()
		sendPaced(t, a, snd, make([]byte, 1000), 100)
		w.tickNodes()
	}
	eventually(t, "heartbeats checked", func() bool { return w.core.Counter(HeartbeatsAccepted) >= 6 })
	if m := w.core.Counter(HeartbeatMismatch); m != 0 {
		t.Fatalf("%d mismatches between honest counters", m)
	}
	// The band is tight, not blind: 1000 bytes more counted per frame than
	// the peers sent (20 KB over 20 frames each way) are a mismatch.
	w.plane.Extra.Store(1000)
	sendPaced(t, a, snd, make([]byte, 10), 20)
	w.step(5 * time.Second)
	eventually(t, "mismatch", func() bool { return w.core.Counter(HeartbeatMismatch) >= 1 })
}

// TestRelayedBytesAreOuterPOOLFrames: the fixture counts, like the data
// plane, the outer POOL frame (header and payload) and nothing else, and
// refuses a datagram longer than its header says, even with a good MAC.
func TestRelayedBytesAreOuterPOOLFrames(t *testing.T) {
	w, a, b, snd := enrolled(t)
	slot := w.peerOf(a).slot
	before := w.plane.Peer(slot)
	sendPaced(t, a, snd, make([]byte, 500), 10)
	after := w.plane.Peer(slot)
	if got, want := after.ForBytes-before.ForBytes, a.Stats.BytesSent.Load(); got != want {
		t.Fatalf("relay counted %d bytes for A, A counted %d", got, want)
	}
	f := a.tap.lastOfType(wire.TypeData, 0)
	if uint64(len(f)) != uint64(wire.HeaderLen)+uint64(wire.Header(f).PayloadLen()) {
		t.Fatal("A's frame is not header + payload")
	}
	// Padded past its payload length and signed with A's hop key: a
	// worker's parser drops it, and so does the fixture.
	padded := append(bytes.Clone(f), make([]byte, 64)...)
	wire.Header(padded).SetSeq(wire.Header(f).Seq() + 1000)
	k := w.peerOf(a).sess.Current()
	hopmac.New(k.HopRecv[:]).Sign(padded)
	dropped := w.plane.Dropped.Load()
	sendRaw(t, w.relay.Addr(), padded)
	eventually(t, "padded frame dropped", func() bool { return w.plane.Dropped.Load() == dropped+1 })
	if w.plane.Peer(slot) != after || b.got.Load() != 10 {
		t.Fatal("a padded frame was relayed or charged")
	}
}
