package relay

import (
	"net/netip"
	"testing"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/bursttest"
	"github.com/poolrelay/poolrelay/dataplane/egress"
	"github.com/poolrelay/poolrelay/dataplane/neigh"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
	"github.com/poolrelay/poolrelay/sched"
)

// The test cast's slots: the peer (slot 1) sends us the hop under key slot
// 1, we relay it towards the next hop (peer slot 2) under key slot 2.
const (
	peerIn, peerOut = 1, 2
	keyIn, keyOut   = 1, 2
)

var (
	rxKey = key(0x11) // the peer's key towards us (our rx of slot keyIn)
	txKey = key(0x22) // our key towards the next hop (our tx of slot keyOut)
	// Sessions: routed, routed over IPv6, disabled, choked peer, no keys.
	sessV4       = wiretest.Session
	sessV6       = wire.SessionID{0x66, 6}
	sessDisabled = wire.SessionID{0xd1}
	sessChoked   = wire.SessionID{0xc0}
	sessNoKey    = wire.SessionID{0x0e}
	sessUnknown  = wire.SessionID{0x99}
	peerChoked   = uint32(3)
)

func key(b byte) []byte {
	k := make([]byte, hopmac.KeySize)
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

// fixture is a worker over tables with the cast's routes and keys, on an
// in-memory packet I/O with two TX buffers (ports 0 and 1).
type fixture struct {
	tables *Tables
	set    *counters.Set
	routes *counters.Routes
	w      *Worker[*bursttest.Burst]
	b      *bursttest.Burst
	tb     testing.TB
	cfg    WorkerConfig
}

// fixtureDataRoom is the fixture's mbufs' room: jumbo frames, and the
// fuzzer's inputs up to it.
const fixtureDataRoom = 16384

// newFake returns an in-memory packet I/O for a worker with ports TX
// buffers, made as the Engine makes its Bursts (KeepRefused and
// CollectInject, which its egress needs).
func newFake(tb testing.TB, ports int) *bursttest.Burst {
	tb.Helper()
	b, err := bursttest.New(bursttest.Config{Size: 64, Tx: ports, Mbufs: 512, DataRoom: fixtureDataRoom + dpdk.Headroom,
		KeepRefused: true, CollectInject: true})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Route counter slots of the fixture's sessions (sessV4, sessV6); the
// others count under the shared slot 0.
const ctrV4, ctrV6 = 1, 2

// testRoute is the route of the cast from the relay to the next hop.
func testRoute(tb testing.TB, ipv6 bool) route.Route {
	tb.Helper()
	r := route.Route{
		IngressPeer: peerIn, IngressKey: keyIn, EgressPeer: peerOut, EgressKey: keyOut,
		DstMAC: wiretest.NextMAC, SrcMAC: wiretest.RelayMAC,
		SrcPort: wire.RelayPort, DstPort: wire.RelayPort, Encap: route.EncapUDP,
	}
	src, dst := wiretest.Relay4, wiretest.Next4
	if ipv6 {
		src, dst = wiretest.Relay6, wiretest.Next6
	}
	if err := r.SetAddrs(src, dst); err != nil {
		tb.Fatal(err)
	}
	return r
}

func newFixture(tb testing.TB, keepAuth bool) *fixture { return newFixtureMACs(tb, keepAuth, false) }

// newFixtureMACs is newFixture, with goMACs on tables that keep to Go's
// GCM (Tables.UseGoMACs) where intel-ipsec-mb is there.
func newFixtureMACs(tb testing.TB, keepAuth, goMACs bool) *fixture {
	tb.Helper()
	rt, err := route.New(1024)
	if err != nil {
		tb.Fatal(err)
	}
	tables, err := NewTables(rt, 1, 16, 16)
	if err != nil {
		tb.Fatal(err)
	}
	if goMACs {
		tables.UseGoMACs()
	}
	put := func(s wire.SessionID, r route.Route) {
		if err := rt.Put(route.SessionID(s), r); err != nil {
			tb.Fatal(err)
		}
	}
	r := testRoute(tb, false)
	r.Counter = ctrV4
	put(sessV4, r)
	r = testRoute(tb, true)
	r.Counter = ctrV6
	put(sessV6, r)
	r = testRoute(tb, false)
	r.Flags |= route.FlagDisabled
	put(sessDisabled, r)
	r = testRoute(tb, false)
	r.IngressPeer = peerChoked
	put(sessChoked, r)
	r = testRoute(tb, false)
	r.IngressKey = 9
	put(sessNoKey, r)
	if err := tables.SetHopKeys(keyIn, rxKey, nil); err != nil {
		tb.Fatal(err)
	}
	if err := tables.SetHopKeys(keyOut, nil, txKey); err != nil {
		tb.Fatal(err)
	}
	if err := tables.SetPeer(peerChoked, sched.Normal, true); err != nil {
		tb.Fatal(err)
	}
	if err := tables.SetPeer(peerIn, sched.Priority, false); err != nil {
		tb.Fatal(err)
	}
	set, err := counters.New(1, 16, int(NumReasons), 2)
	if err != nil {
		tb.Fatal(err)
	}
	rc, err := counters.NewRoutes(1, 64)
	if err != nil {
		tb.Fatal(err)
	}
	addrs := neigh.NewAddrs([]neigh.Port{{Name: "p0", MAC: wiretest.RelayMAC, Addrs: []netip.Prefix{
		netip.PrefixFrom(wiretest.Relay4, 24), netip.PrefixFrom(wiretest.Relay6, 64)}}})
	cfg := WorkerConfig{
		Tables: tables, Counters: set.Core(0), Routes: rc.Core(0), Matcher: wiretest.Matcher(), Addrs: addrs,
		Neighbors: &neigh.Published{}, MACs: []wire.MAC{wiretest.RelayMAC, {0x02, 0, 0, 0, 0, 0x12}}, KeepAuth: keepAuth,
	}
	w, err := NewWorker[*bursttest.Burst](cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{tables: tables, set: set, routes: rc, w: w, b: newFake(tb, 2), tb: tb, cfg: cfg}
}

// onDPDK returns a worker of the fixture's config (tables, counters) on
// DPDK's packet I/O, for the tests on real mbufs and ports. It shares the
// worker id, and so the replay windows, with f.w: use one of them.
func (f *fixture) onDPDK() *Worker[*dpdk.Burst] {
	f.tb.Helper()
	w, err := NewWorker[*dpdk.Burst](f.cfg)
	if err != nil {
		f.tb.Fatal(err)
	}
	return w
}

// attachEgress gives w an egress Port per port on b, scheduled by cfg on a
// clock of hz ticks a second that reads now.
func attachEgress[B dpdk.IO](t testing.TB, w *Worker[B], b B, cfg sched.Config, hz uint64, now int64) []*egress.Port[B] {
	t.Helper()
	var eg []*egress.Port[B]
	for p := range 2 {
		e, err := egress.New(b, p, egress.Config{Sched: cfg, TxQueues: 1, TicksPerSecond: hz}, now, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		eg = append(eg, e)
	}
	if err := w.AttachEgress(eg); err != nil {
		t.Fatal(err)
	}
	return eg
}

// signed returns a relayed frame of the cast (v4 or v6) for session with
// seq, its hop MAC computed under k (nil: left zero).
func signed(tb testing.TB, ipv6 bool, session wire.SessionID, seq uint64, k *hopmac.Key) []byte {
	tb.Helper()
	s := wiretest.Spec(ipv6)
	s.Pool.Session, s.Pool.Seq = session, seq
	if k != nil {
		s.Pool.MAC = macOf(&s.Pool, s.Payload, k)
	}
	return wiretest.Frame(tb, &s)
}

// macOf computes the hop MAC of the POOL frame f and payload would make.
func macOf(f *wire.Fields, payload []byte, k *hopmac.Key) [wire.MACLen]byte {
	b := make([]byte, wire.HeaderLen+len(payload))
	g := *f
	g.MAC = [wire.MACLen]byte{}
	wire.Header(b).Put(&g, uint16(len(payload)))
	copy(b[wire.HeaderLen:], payload)
	k.Sign(b)
	return wire.Header(b).MAC()
}

// restamp gives a frame that the worker relayed (or will) a fresh seq and
// hop MAC under k and a TTL of 64, as a sending peer would: the benchmarks'
// and allocation tests' way of feeding the same buffers again.
func restamp(f []byte, m *wire.Matcher, k *hopmac.Key, seq uint64) {
	var r wire.Result
	wire.Classify(f, m, &r)
	if !r.Kind.IsPool() {
		// TTL expired on a previous round, or similar: only the TTL.
		return
	}
	setTTL(f, &r, 64)
	wire.Classify(f, m, &r)
	pool := f[r.PoolOff : int(r.PayloadOff)+int(r.PayloadLen)]
	var p wire.UDPPatch
	p.Begin(f, &r, int(r.PoolOff)+4, wire.HeaderLen-4)
	wire.Header(pool).SetSeq(seq)
	k.Sign(pool)
	p.End(f)
}

// setTTL sets the IPv4 TTL or IPv6 hop limit, keeping the IPv4 checksum.
func setTTL(f []byte, r *wire.Result, ttl uint8) {
	if r.Kind.IsIPv6() {
		wire.IPv6(f[r.L3Off:]).SetHopLimit(ttl)
		return
	}
	ip := wire.IPv4(f[r.L3Off:])
	ip.SetTTL(ttl)
	ip.UpdateChecksum()
}
