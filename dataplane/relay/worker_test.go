package relay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/neigh"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/sched"
)

// decide receives frames on the fixture's packet I/O (a nil frame: a
// multi-segment one), runs Worker.Burst on them and flushes, and returns
// the verdicts. What the worker wrote into each frame is copied back into
// it where the length stayed (the fake keeps the mbufs intact until the
// next flush), so that tests can look at the rewrite in place.
func (f *fixture) decide(port int, frames ...[]byte) []verdict {
	in := make([][]byte, len(frames))
	for i, fr := range frames {
		if in[i] = fr; fr == nil {
			in[i] = []byte{}
		}
	}
	rx := f.b.Cycle(in...)
	for i, fr := range frames {
		if fr == nil {
			f.b.SetSegments(rx[i], 2)
		}
	}
	f.w.Burst(f.b, port, rx)
	out := append([]verdict(nil), f.w.verdicts[:len(frames)]...)
	for i, m := range rx {
		if d := m.Data(); len(d) == len(frames[i]) {
			copy(frames[i], d)
		}
	}
	f.b.Flush()
	if n, q := f.b.InUse(), f.w.Backlog(); n != q {
		f.tb.Fatalf("%d frames held after the burst and a flush, %d of them in class queues", n, q)
	}
	return out
}

func TestRelayData(t *testing.T) {
	for _, ipv6 := range []bool{false, true} {
		f := newFixture(t, true)
		sess := sessV4
		if ipv6 {
			sess = sessV6
		}
		in := signed(t, ipv6, sess, 7, hopmac.New(rxKey))
		frame := bytes.Clone(in)
		v := f.decide(0, frame)[0]
		if v.act != actRelay || v.tx != 0 || v.class != sched.Priority {
			t.Fatalf("ipv6=%v: verdict %+v, want relay on 0 in class priority", ipv6, v)
		}
		var r wire.Result
		wire.Classify(frame, wiretest.Matcher(), &r)
		if r.Drop != wire.DropNone || !wire.UDPChecksumValid(frame, &r) {
			t.Fatalf("relayed frame: drop %v, UDP checksum valid %v", r.Drop, wire.UDPChecksumValid(frame, &r))
		}
		e := wire.Ethernet(frame)
		if e.Dst() != wiretest.NextMAC || e.Src() != wiretest.RelayMAC {
			t.Errorf("ethernet %v -> %v", e.Src(), e.Dst())
		}
		var src, dst netip.Addr
		var ttl uint8
		if ipv6 {
			ip := wire.IPv6(frame[r.L3Off:])
			src, dst, ttl = ip.SrcAddr(), ip.DstAddr(), ip.HopLimit()
		} else {
			ip := wire.IPv4(frame[r.L3Off:])
			src, dst, ttl = ip.SrcAddr(), ip.DstAddr(), ip.TTL()
			if !ip.ChecksumValid() {
				t.Error("IPv4 checksum broken")
			}
		}
		want := testRoute(t, ipv6)
		if src != want.SrcAddr() || dst != want.DstAddr() || ttl != wire.DefaultTTL-1 {
			t.Errorf("ip %v -> %v ttl %d", src, dst, ttl)
		}
		if r.Seq != 0 {
			t.Errorf("seq %d, want the egress key's first, 0", r.Seq)
		}
		pool := frame[r.PoolOff : int(r.PayloadOff)+int(r.PayloadLen)]
		if !hopmac.New(txKey).Verify(pool) {
			t.Error("hop MAC does not verify under the tx key")
		}
		var rin wire.Result
		wire.Classify(in, wiretest.Matcher(), &rin)
		if !bytes.Equal(rin.Payload(in), r.Payload(frame)) {
			t.Error("inner frame changed")
		}
		p := f.set.Peer(peerIn)
		if p.ForPackets != 1 || p.ForBytes != uint64(wire.HeaderLen+int(rin.PayloadLen)) || f.set.Peer(peerOut).ToPackets != 1 {
			t.Errorf("peer counters %+v / %+v", p, f.set.Peer(peerOut))
		}
		if f.set.Port(0).RxPackets != 1 || f.set.Port(0).TxPackets != 1 {
			t.Errorf("port counters %+v", f.set.Port(0))
		}
	}
}

func TestVerdicts(t *testing.T) {
	rx := hopmac.New(rxKey)
	f := newFixture(t, true)
	good := signed(t, false, sessV4, 100, rx)
	bad := signed(t, false, sessV4, 101, rx)
	bad[len(bad)-1] ^= 1 // inner byte: covered by the MAC
	control := func(typ wire.Type, ch uint8) []byte {
		s := wiretest.Spec(false)
		s.Pool.Type, s.Pool.Channel = typ, ch
		return wiretest.Frame(t, &s)
	}
	ttl1 := func() []byte {
		s := wiretest.Spec(false)
		s.TTL, s.Pool.Seq = 1, 200
		s.Pool.MAC = macOf(&s.Pool, s.Payload, rx)
		return wiretest.Frame(t, &s)
	}()
	arp := func(target netip.Addr) []byte {
		b := make([]byte, wiretest.BufLen)
		n, err := wire.BuildARPRequest(b, nil, wiretest.PeerMAC, wiretest.Peer4, target)
		if err != nil {
			t.Fatal(err)
		}
		return b[:n]
	}
	nd := func(target netip.Addr) []byte {
		b := make([]byte, wiretest.BufLen)
		n, err := wire.BuildNeighborSolicit(b, nil, wiretest.PeerMAC, wiretest.Peer6, target)
		if err != nil {
			t.Fatal(err)
		}
		return b[:n]
	}
	cases := []struct {
		name   string
		frame  []byte
		act    action
		reason Reason
	}{
		{"good", good, actRelay, 0},
		{"replay", bytes.Clone(good), actDrop, ReasonReplay},
		{"bad mac", bad, actDrop, ReasonBadMAC},
		{"zero mac", signed(t, false, sessV4, 102, nil), actDrop, ReasonBadMAC},
		{"unknown session", signed(t, false, sessUnknown, 1, rx), actDrop, ReasonNoRoute},
		{"disabled", signed(t, false, sessDisabled, 1, rx), actDrop, ReasonDisabled},
		{"choked", signed(t, false, sessChoked, 1, rx), actDrop, ReasonDebt},
		{"no key", signed(t, false, sessNoKey, 1, rx), actDrop, ReasonNoKey},
		{"ttl 1", ttl1, actDrop, Reason(wire.DropTTLExpired)},
		{"heartbeat", control(wire.TypeHeartbeat, 0), actPunt, 0},
		{"relay control", control(wire.TypeData, wire.ChannelRelayControl), actPunt, 0},
		{"channel 1", control(wire.TypeData, 1), actDrop, ReasonBadChannel},
		{"truncated", good[:40], actDrop, Reason(wire.DropTruncated)},
		{"arp for us", arp(wiretest.Relay4), actSend, 0},
		{"arp for another", arp(netip.MustParseAddr("192.0.2.77")), actDrop, ReasonNotMine},
		{"nd for us", nd(wiretest.Relay6), actAnswerND, 0},
		{"nd for another", nd(netip.MustParseAddr("2001:db8::77")), actDrop, ReasonNotMine},
		{"segmented", nil, actDrop, ReasonSegmented},
	}
	frames := make([][]byte, len(cases))
	for i, c := range cases {
		frames[i] = c.frame
	}
	// One burst, so the lookups are batched as on the packet path.
	vs := f.decide(0, frames...)
	want := map[Reason]uint64{}
	for i, c := range cases {
		v := vs[i]
		if v.act != c.act || (c.act == actDrop && Reason(v.reason) != c.reason) {
			t.Errorf("%s: verdict %+v (%v), want act %d reason %v", c.name, v, Reason(v.reason), c.act, c.reason)
		}
		if c.act == actDrop {
			want[c.reason]++
		}
	}
	for r := Reason(0); r < NumReasons; r++ {
		if got := f.set.Drops(int(r)); got != want[r] {
			t.Errorf("drops %v: %d, want %d", r, got, want[r])
		}
	}
	if p := f.set.Peer(peerIn); p.ForPackets != 1 {
		t.Errorf("peer charged for %d frames, want 1 (only the good one)", p.ForPackets)
	}
	// The ARP answer is a reply from us, in place.
	a := wire.ARP(frames[13][wire.EthernetLen:])
	if a.Op() != wire.ARPOpReply || a.SenderMAC() != wiretest.RelayMAC || wire.Ethernet(frames[13]).Dst() != wiretest.PeerMAC {
		t.Errorf("ARP answer: op %d from %v", a.Op(), a.SenderMAC())
	}
}

func TestKeyInstallResetsWindow(t *testing.T) {
	rx := hopmac.New(rxKey)
	f := newFixture(t, true)
	if v := f.decide(0, signed(t, false, sessV4, 5, rx))[0]; v.act != actRelay {
		t.Fatalf("first: %+v", v)
	}
	if v := f.decide(0, signed(t, false, sessV4, 5, rx))[0]; Reason(v.reason) != ReasonReplay {
		t.Fatalf("replay: %+v", v)
	}
	// A rekey (here to the same key material) brings a fresh window and
	// a fresh egress sequence.
	if err := f.tables.SetHopKeys(keyIn, rxKey, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.tables.SetHopKeys(keyOut, nil, txKey); err != nil {
		t.Fatal(err)
	}
	fr := signed(t, false, sessV4, 5, rx)
	if v := f.decide(0, fr)[0]; v.act != actRelay {
		t.Fatalf("after rekey: %+v", v)
	}
	if seq := binary.BigEndian.Uint64(fr[wire.EthernetLen+wire.IPv4MinLen+wire.UDPLen+4:]); seq != 0 {
		t.Errorf("egress seq after rekey %d, want 0", seq)
	}
	f.tables.ClearHopKeys(keyIn)
	if v := f.decide(0, signed(t, false, sessV4, 6, rx))[0]; Reason(v.reason) != ReasonNoKey {
		t.Fatalf("after clear: %+v", v)
	}
}

func TestNoAuth(t *testing.T) {
	f := newFixture(t, false)
	in := signed(t, false, sessV4, 9, nil) // no MAC at all
	frame := bytes.Clone(in)
	if v := f.decide(0, frame)[0]; v.act != actRelay {
		t.Fatalf("verdict %+v", v)
	}
	off := wire.EthernetLen + wire.IPv4MinLen + wire.UDPLen
	if !bytes.Equal(frame[off:], in[off:]) {
		t.Error("outer POOL header changed with hop authentication off")
	}
}

func TestTablesErrors(t *testing.T) {
	f := newFixture(t, true)
	if err := f.tables.SetHopKeys(99, rxKey, txKey); err == nil {
		t.Error("key slot out of range accepted")
	}
	if err := f.tables.SetHopKeys(1, rxKey[:16], nil); err == nil {
		t.Error("short key accepted")
	}
	if err := f.tables.SetPeer(99, sched.Normal, false); err == nil {
		t.Error("peer slot out of range accepted")
	}
	if c, ch := f.tables.Peer(peerChoked); c != sched.Normal || !ch {
		t.Errorf("peer %d: %v %v", peerChoked, c, ch)
	}
	if NumReasons > 256 {
		t.Errorf("%d reasons do not fit the verdict's byte", NumReasons)
	}
	for r := Reason(0); r < NumReasons; r++ {
		if r.String() == "unknown" || r.String() == "" {
			t.Errorf("reason %d has no name", r)
		}
	}
}

// burst returns n frames of the cast's v4 route, signed under rx with
// seqs from seq on, in buffers of full mbuf capacity.
func burst(tb testing.TB, n int, rx *hopmac.Key, seq uint64) [][]byte {
	fs := make([][]byte, n)
	for i := range fs {
		fs[i] = signed(tb, false, sessV4, seq+uint64(i), rx)
	}
	return fs
}

// TestNoAllocs proves the worker's per-burst path allocates nothing: a
// burst of 32 relayed frames, with hop authentication and without it (the
// single pass decide takes then, check and rewrite together). The frames
// are re-stamped (fresh seq and MAC, TTL reset) between runs, as a sender
// would, so every run takes the full path.
func TestNoAllocs(t *testing.T) {
	for _, auth := range []bool{true, false} {
		for _, mark := range []bool{false, true} {
			t.Run(fmt.Sprintf("auth=%v/mark=%v", auth, mark), func(t *testing.T) { noAllocs(t, auth, mark) })
		}
	}
}

// noAllocs relays bursts of 32 frames; with mark, for a deprioritised peer
// that gives no credit, so that every frame is marked (the flag and its
// checksum change) and counted as uncredited.
func noAllocs(t *testing.T, auth, mark bool) {
	f := newFixture(t, auth)
	if mark {
		if err := f.tables.SetPeer(peerIn, sched.Deprioritised, false); err != nil {
			t.Fatal(err)
		}
		if err := f.tables.SetCredit(peerIn, false); err != nil {
			t.Fatal(err)
		}
	}
	rx := hopmac.New(rxKey)
	m := wiretest.Matcher()
	fs := burst(t, 32, rx, 1)
	seq := uint64(1000)
	allocs := testing.AllocsPerRun(100, func() {
		for _, fr := range fs {
			restamp(fr, m, rx, seq)
			seq++
		}
		f.w.Burst(f.b, 0, f.b.Cycle(fs...))
	})
	if allocs != 0 {
		t.Errorf("%v allocations per burst, want 0", allocs)
	}
	for i := range fs {
		if v := f.w.verdicts[i]; v.act != actRelay || (v.class == sched.Deprioritised) != mark {
			t.Fatalf("frame %d: %+v, want every frame relayed, deprioritised %v", i, v, mark)
		}
	}
	if got := f.set.Peer(peerIn).ForPackets; got != 101*32 {
		t.Errorf("relayed %d, want %d", got, 101*32)
	}
	if got, want := f.set.Peer(peerOut).UncreditedPackets, map[bool]uint64{false: 0, true: 101 * 32}[mark]; got != want {
		t.Errorf("%d frames counted as uncredited towards the next hop, want %d", got, want)
	}
	f.b.Flush()
	if got := f.b.Sent(0); len(got) != 32 {
		t.Errorf("the last flush sent %d frames on port 0, want 32", len(got))
	}
}

// BenchmarkWorker measures the worker's decisions on bursts of 32 relayed
// frames (classify, lookup, authenticate, rewrite, re-sign, count), with hop
// authentication on and off, bursts of one route and of 32 distinct routes,
// and the per-route counters off and on: the rows with routectr=on against
// their routectr=off neighbours are the per-route counters' cost.
// Re-stamping the frames between rounds is left out of the timing.
func BenchmarkWorker(b *testing.B) {
	for _, auth := range []bool{true, false} {
		for _, routes := range []int{1, 32} {
			// every is the route counters' publication period in bursts:
			// -1 counts no route, 256 is more often than the Engine's
			// millisecond (300 to 1000 bursts here), 0 every burst.
			for _, every := range []int{-1, 256, 0} {
				ctr := map[int]string{-1: "off", 256: "on", 0: "burst"}[every]
				name := fmt.Sprintf("auth=%s/routes=%d/routectr=%s", onOff(auth), routes, ctr)
				b.Run(name, func(b *testing.B) { benchWorker(b, auth, routes, every) })
			}
		}
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func benchWorker(b *testing.B, auth bool, routes, every int) {
	f := newFixture(b, auth)
	if every < 0 {
		f.w.rc, f.w.routeSlots = nil, 1<<32
	} else {
		f.w.rcEvery = int64(every)
	}
	sessions := []wire.SessionID{sessV4}
	if routes > 1 {
		sessions = sessions[:0]
		for i := range routes {
			s := wire.SessionID{0x70, byte(i)}
			r := testRoute(b, false)
			r.Counter = uint32(10 + i)
			if err := f.tables.Routes().Put(route.SessionID(s), r); err != nil {
				b.Fatal(err)
			}
			sessions = append(sessions, s)
		}
	}
	rx := hopmac.New(rxKey)
	m := wiretest.Matcher()
	const rounds = 256
	bursts := make([][][]byte, rounds)
	seq := uint64(1)
	for i := range bursts {
		bursts[i] = make([][]byte, 32)
		for j := range bursts[i] {
			bursts[i][j] = signed(b, false, sessions[j%len(sessions)], seq, rx)
			seq++
		}
	}
	b.SetBytes(int64(32 * len(bursts[0][0])))
	b.ReportAllocs()
	// The thread's CPU clock beside the wall clock: on a shared
	// machine the wall clock also counts the time others held
	// the core.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var off time.Duration
	cpu0, cpuOK := threadCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%rounds == 0 && i > 0 {
			b.StopTimer()
			t0, _ := threadCPU()
			for _, fs := range bursts {
				for _, fr := range fs {
					restamp(fr, m, rx, seq)
					seq++
				}
			}
			t1, _ := threadCPU()
			off += t1 - t0
			b.StartTimer()
		}
		// The Burst's TSC, which paces the route counters'
		// publication: here it counts bursts.
		f.b.SetTSC(uint64(i))
		f.w.Burst(f.b, 0, f.b.Cycle(bursts[i%rounds]...))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/frame")
	if cpu1, _ := threadCPU(); cpuOK {
		b.ReportMetric(float64(cpu1-cpu0-off)/float64(b.N*32), "cpu-ns/frame")
	}
	if d := f.set.Drops(int(ReasonReplay)) + f.set.Drops(int(ReasonBadMAC)); d != 0 {
		b.Fatalf("%d frames dropped", d)
	}
}

// BenchmarkAct isolates the stage after the decisions, the one the route
// counters add to: the action loop (Worker.act) and the hand-over with its
// counting (charges summed per run, peers, routes, ports) and publication,
// for a decided burst of 32 relayed frames of one peer pair, with the
// route counters off, on (the Engine's pacing, here every 256 bursts) and
// published every burst; bursts of one route and of 32 routes interleaved
// (every frame a route run of its own, the worst). The frames come from
// the in-memory packet I/O, whose receive and flush (a copy of each frame,
// as a PMD's DMA) are the row io=fake, the part of the others that is not
// the worker's. The whole-worker rows are too noisy on a shared machine to
// resolve a few ns; this stage's difference between routectr=on and off
// is the counters' cost per frame.
func BenchmarkAct(b *testing.B) {
	b.Run("io=fake", func(b *testing.B) {
		f := newFixture(b, false)
		fs := make([][]byte, 32)
		for i := range fs {
			fs[i] = signed(b, false, sessV4, uint64(i+1), nil)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			f.b.DropBurst(f.b.Cycle(fs...))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/frame")
	})
	for _, routes := range []int{1, 32} {
		for _, every := range []int{-1, 256, 0} {
			ctr := map[int]string{-1: "off", 256: "on", 0: "burst"}[every]
			b.Run(fmt.Sprintf("routes=%d/routectr=%s", routes, ctr), func(b *testing.B) {
				f := newFixture(b, false)
				if every < 0 {
					f.w.rc, f.w.routeSlots = nil, 1<<32
				} else {
					f.w.rcEvery = int64(every)
				}
				fs := make([][]byte, 32)
				views := make([][]byte, 32)
				for i := range fs {
					fs[i] = signed(b, false, sessV4, uint64(i+1), nil)
					f.w.verdicts[i] = verdict{act: actRelay}
					f.w.charges[i] = charge{in: peerIn, out: peerOut, route: uint32(i % routes), bytes: 100}
				}
				b.ReportAllocs()
				// The thread's CPU clock beside the wall clock, as in
				// BenchmarkWorker: on a loaded machine only the former
				// resolves a few ns.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0, cpuOK := threadCPU()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					f.b.SetTSC(uint64(i))
					rx := f.b.Cycle(fs...)
					for j, m := range rx {
						views[j] = m.Data()
					}
					f.w.now = int64(i)
					f.w.act(0, rx, views)
					f.w.handOver(f.b)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/frame")
				if cpu1, _ := threadCPU(); cpuOK {
					b.ReportMetric(float64(cpu1-cpu0)/float64(b.N*32), "cpu-ns/frame")
				}
				if got := f.set.Peer(peerIn).ForPackets; got != uint64(b.N*32) {
					b.Fatalf("%d frames charged, want %d", got, b.N*32)
				}
			})
		}
	}
}

// FuzzWorker feeds arbitrary frames, alone and in a burst with valid ones,
// through the worker: it must never panic, and every frame must get a
// verdict with a known reason.
func FuzzWorker(f *testing.F) {
	rx := hopmac.New(rxKey)
	f.Add(signed(f, false, sessV4, 1, rx))
	f.Add(signed(f, true, sessV6, 1, rx))
	f.Add(signed(f, false, sessUnknown, 1, rx))
	b := make([]byte, wiretest.BufLen)
	n, _ := wire.BuildARPRequest(b, nil, wiretest.PeerMAC, wiretest.Peer4, wiretest.Relay4)
	f.Add(b[:n])
	n, _ = wire.BuildNeighborSolicit(b, nil, wiretest.PeerMAC, wiretest.Peer6, wiretest.Relay6)
	f.Add(b[:n])
	fx := newFixture(f, true)
	seq := uint64(1 << 20)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fixtureDataRoom {
			data = data[:fixtureDataRoom] // no PMD delivers more in one segment
		}
		good := signed(t, false, sessV4, seq, rx)
		seq++
		frames := [][]byte{bytes.Clone(data), good, bytes.Clone(data)}
		vs := fx.decide(0, frames...)
		for i, v := range vs {
			if v.act > actRelay || v.act == actLookup || (v.act == actDrop && (Reason(v.reason) < 0 || Reason(v.reason) >= NumReasons)) {
				t.Fatalf("frame %d: bad verdict %+v", i, v)
			}
		}
		if vs[1].act != actRelay {
			t.Fatalf("valid frame beside fuzz input: %+v (%v)", vs[1], Reason(vs[1].reason))
		}
	})
}

func TestStamp(t *testing.T) {
	f := newFixture(t, true)
	pool := poolBytes(wire.Fields{Type: wire.TypeData, Session: sessV4}, []byte("x"), nil)
	for want := uint64(0); want < 3; want++ {
		if err := f.tables.Stamp(keyOut, pool); err != nil {
			t.Fatal(err)
		}
		if wire.Header(pool).Seq() != want || !hopmac.New(txKey).Verify(pool) {
			t.Fatalf("stamp %d: seq %d, MAC verifies %v", want, wire.Header(pool).Seq(), hopmac.New(txKey).Verify(pool))
		}
	}
	if f.tables.Sent(keyOut) != 3 {
		t.Errorf("sent %d", f.tables.Sent(keyOut))
	}
	if err := f.tables.Stamp(keyIn, pool); err != ErrNoKey {
		t.Errorf("stamp without a tx key: %v", err)
	}
}

// TestResolveMAC: a route that takes its next-hop MAC from the neighbour
// table drops frames until the table holds it, then uses it.
func TestResolveMAC(t *testing.T) {
	rx := hopmac.New(rxKey)
	f := newFixture(t, true)
	sess := wire.SessionID{0x4e, 0x1}
	r := testRoute(t, false)
	r.Flags |= route.FlagResolveMAC
	r.DstMAC = [6]byte{} // unused
	if err := f.tables.Routes().Put(route.SessionID(sess), r); err != nil {
		t.Fatal(err)
	}
	if v := f.decide(0, signed(t, false, sess, 1, rx))[0]; Reason(v.reason) != ReasonUnresolved {
		t.Fatalf("unresolved next hop: %+v (%v)", v, Reason(v.reason))
	}
	ports := []neigh.Port{{Name: "p0", MAC: wiretest.RelayMAC, Addrs: []netip.Prefix{netip.PrefixFrom(wiretest.Relay4, 24)}}}
	static := []dataplane.Neighbor{{IP: wiretest.Next4.String(), MAC: "02:00:00:00:00:77", Port: "p0"}}
	if _, err := neigh.New(neigh.DefaultConfig(), ports, static, clock.NewFake(time.Unix(1700000000, 0)), zerolog.Nop(), f.w.neigh); err != nil {
		t.Fatal(err)
	}
	fr := signed(t, false, sess, 2, rx)
	if v := f.decide(0, fr)[0]; v.act != actRelay {
		t.Fatalf("resolved next hop: %+v (%v)", v, Reason(v.reason))
	}
	if got := wire.Ethernet(fr).Dst(); got != (wire.MAC{0x02, 0, 0, 0, 0, 0x77}) {
		t.Errorf("destination MAC %v, want the neighbour table's", got)
	}
}
