package relay

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
	"github.com/poolrelay/poolrelay/internal/pcapfile"
	"github.com/poolrelay/poolrelay/sched"
)

// The egress cast: a deprioritised peer (slot 4) relayed over its own
// route, beside the fixture's priority peer (peerIn) and choked peer.
const peerDep = 4

var sessDep = wire.SessionID{0xde, 0x9}

// routeDeprioritised adds sessDep's route, relayed for peerDep, and
// publishes peerDep as deprioritised.
func (f *fixture) routeDeprioritised(t *testing.T) {
	t.Helper()
	r := testRoute(t, false)
	r.IngressPeer = peerDep
	if err := f.tables.Routes().Put(route.SessionID(sessDep), r); err != nil {
		t.Fatal(err)
	}
	if err := f.tables.SetPeer(peerDep, sched.Deprioritised, false); err != nil {
		t.Fatal(err)
	}
}

// TestVerdictClass: a relayed frame's verdict carries the class of the
// peer it is relayed for, as SetPeer published it, and a class change
// takes effect on the next burst.
func TestVerdictClass(t *testing.T) {
	rx := hopmac.New(rxKey)
	f := newFixture(t, true)
	f.routeDeprioritised(t)
	vs := f.decide(0, signed(t, false, sessV4, 1, rx), signed(t, false, sessDep, 2, rx))
	if vs[0].act != actRelay || vs[0].class != sched.Priority {
		t.Errorf("priority peer's frame: %+v", vs[0])
	}
	if vs[1].act != actRelay || vs[1].class != sched.Deprioritised {
		t.Errorf("deprioritised peer's frame: %+v", vs[1])
	}
	if err := f.tables.SetPeer(peerDep, sched.Normal, false); err != nil {
		t.Fatal(err)
	}
	if v := f.decide(0, signed(t, false, sessDep, 3, rx))[0]; v.class != sched.Normal {
		t.Errorf("after the class change: %+v", v)
	}
	if p := f.set.Peer(peerDep); p.ForPackets != 2 {
		t.Errorf("deprioritised peer charged for %d frames, want 2", p.ForPackets)
	}
}

// TestEgressClasses runs the engine on net_pcap with frames relayed for a
// priority peer, a deprioritised peer and a choked one, and a frame the
// control core injects: each goes out through its class queue, and the
// per-class counters that EgressStats reports say so; the choked peer's
// frames reach no queue (dropped with reason debt, nobody charged).
func TestEgressClasses(t *testing.T) {
	eal := env.Need(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pcap"), filepath.Join(dir, "out.pcap")
	g := &gp{t: t}
	rx := hopmac.New(rxKey)
	inner := wiretest.Inner([]byte("classes"))
	toUs := hop{srcMAC: net.HardwareAddr(wiretest.PeerMAC[:]), dstMAC: net.HardwareAddr(wiretest.RelayMAC[:]),
		src: wiretest.Peer4, dst: wiretest.Relay4, sport: 40000, dport: wire.RelayPort, ttl: 64}
	data := func(s wire.SessionID, seq uint64) []byte {
		return g.udp(toUs, poolBytes(wire.Fields{Type: wire.TypeData, Seq: seq, Session: s}, inner, rx))
	}
	const nPrio, nDep, nChoked = 4, 3, 2
	var frames [][]byte
	seq := uint64(1)
	for range nPrio {
		frames = append(frames, data(sessV4, seq))
		seq++
	}
	for range nDep {
		frames = append(frames, data(sessDep, seq))
		seq++
	}
	for range nChoked {
		frames = append(frames, data(sessChoked, seq))
		seq++
	}
	if err := pcapfile.WriteFile(in, frames, time.Unix(1700000000, 0), time.Millisecond); err != nil {
		t.Fatal(err)
	}

	e, err := OpenOn(eal, testConfig(fmt.Sprintf("net_pcap_cls,rx_pcap=%s,tx_pcap=%s", in, out)), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	tables := e.Tables()
	installCast(t, tables, e.Ports()[0].MAC)
	r := testRoute(t, false)
	r.IngressPeer, r.SrcMAC = peerDep, e.Ports()[0].MAC
	if err := tables.Routes().Put(route.SessionID(sessDep), r); err != nil {
		t.Fatal(err)
	}
	if err := tables.SetPeer(peerIn, sched.Priority, false); err != nil {
		t.Fatal(err)
	}
	if err := tables.SetPeer(peerDep, sched.Deprioritised, false); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	arp := make([]byte, wiretest.BufLen)
	n, err := wire.BuildARPRequest(arp, nil, wiretest.RelayMAC, wiretest.Relay4, wiretest.Next4)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Inject(0, arp[:n]); err != nil {
		t.Fatal(err)
	}
	cs := e.Counters()
	waitFor(t, "every frame received", func() bool { return cs.Port(0).RxPackets == uint64(len(frames)) })
	waitFor(t, "the injected frame taken", func() bool { return e.BurstStats() != nil && injected(e) == 1 })
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}

	st := e.EgressStats()
	if len(st) != 1 || st[0].Port != 0 || st[0].Queue != 0 {
		t.Fatalf("egress stats for %d queues, want port 0 queue 0: %+v", len(st), st)
	}
	q := st[0]
	want := [sched.NumClasses]uint64{sched.Control: 1, sched.Priority: nPrio, sched.Deprioritised: nDep}
	for c := range sched.NumClasses {
		cl := q.Class[c]
		if cl.SentPkts != want[c] || cl.DroppedPkts != 0 || cl.Depth != 0 {
			t.Errorf("class %v: %+v, want %d sent and nothing dropped or queued", sched.Class(c), cl, want[c])
		}
	}
	if q.Injected != 1 {
		t.Errorf("injected %d, want 1", q.Injected)
	}
	var share float64
	for _, cl := range q.Class {
		share += cl.Share
	}
	if share < 0.999 || share > 1.001 || q.Class[sched.Deprioritised].Share <= 0 {
		t.Errorf("shares %+v sum to %v", q.Class, share)
	}
	if got := cs.Drops(int(ReasonDebt)); got != nChoked {
		t.Errorf("debt drops %d, want %d", got, nChoked)
	}
	if p := cs.Peer(peerChoked); p.ForPackets != 0 {
		t.Errorf("choked peer charged %+v", p)
	}
	if p := cs.Peer(peerDep); p.ForPackets != nDep {
		t.Errorf("deprioritised peer charged for %d frames, want %d", p.ForPackets, nDep)
	}
	// On the wire: every class's frames, the injected one unchanged.
	got, err := pcapfile.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1+nPrio+nDep {
		t.Fatalf("output capture holds %d frames, want %d", len(got), 1+nPrio+nDep)
	}
	found := false
	for _, f := range got {
		found = found || bytes.Equal(f, arp[:n])
	}
	if !found {
		t.Error("the injected frame is not in the output")
	}
}

// injected returns how many frames worker 0 took from its inject rings,
// as last published by its egress.
func injected(e *Engine) uint64 {
	var n uint64
	for _, q := range e.EgressStats() {
		n += q.Injected
	}
	return n
}

// TestOpenBadSched: a [sched] section the workers' schedulers would refuse
// fails OpenOn, not the workers after Start.
func TestOpenBadSched(t *testing.T) {
	eal := env.Need(t)
	for name, mod := range map[string]func(*sched.Config){
		"floor":         func(c *sched.Config) { c.FloorPercent = 90 },
		"default class": func(c *sched.Config) { c.DefaultClass = "gold" },
	} {
		cfg := testConfig("net_null_badsched,size=128")
		cfg.Sched = sched.DefaultConfig()
		mod(&cfg.Sched)
		if e, err := OpenOn(eal, cfg, zerolog.Nop()); err == nil {
			e.Stop()
			t.Errorf("%s: OpenOn accepted %+v", name, cfg.Sched)
		}
	}
}

// signedMarked is signed with the deprioritised mark set by the previous
// hop, under its hop MAC.
func signedMarked(tb testing.TB, session wire.SessionID, seq uint64, k *hopmac.Key) []byte {
	tb.Helper()
	s := wiretest.Spec(false)
	s.Pool.Session, s.Pool.Seq, s.Pool.Flags = session, seq, wire.FlagDeprioritised
	s.Pool.MAC = macOf(&s.Pool, s.Payload, k)
	return wiretest.Frame(tb, &s)
}

// TestDeprioritisedMark: a frame relayed for a deprioritised peer that
// gives no credit leaves with the deprioritised mark, under the next hop's
// MAC and a valid UDP checksum; a marked frame is deprioritised whatever
// the class of the peer that handed it over, and keeps its mark; an
// unmarked frame of a priority peer is left as it was; a deprioritised
// peer that gives credit is deprioritised here but not marked. With and
// without hop auth, through Worker.Burst on the in-memory packet I/O.
func TestDeprioritisedMark(t *testing.T) {
	type want struct {
		class  sched.Class
		marked bool
	}
	for _, auth := range []bool{true, false} {
		rx := hopmac.New(rxKey)
		f := newFixture(t, auth)
		f.routeDeprioritised(t)
		if err := f.tables.SetCredit(peerDep, false); err != nil {
			t.Fatal(err)
		}
		check := func(step string, frames [][]byte, ws []want) {
			t.Helper()
			vs := f.decide(0, frames...)
			for k, c := range ws {
				var res wire.Result
				wire.Classify(frames[k], wiretest.Matcher(), &res)
				if vs[k].act != actRelay || vs[k].class != c.class {
					t.Errorf("auth=%v %s frame %d: verdict %+v, want relay in %v", auth, step, k, vs[k], c.class)
				}
				if res.Drop != wire.DropNone || !wire.UDPChecksumValid(frames[k], &res) {
					t.Errorf("auth=%v %s frame %d: drop %v, UDP checksum valid %v", auth, step, k, res.Drop, wire.UDPChecksumValid(frames[k], &res))
				}
				if got := res.Flags&wire.FlagDeprioritised != 0; got != c.marked {
					t.Errorf("auth=%v %s frame %d: marked %v, want %v", auth, step, k, got, c.marked)
				}
				if auth && !hopmac.New(txKey).Verify(frames[k][res.PoolOff:int(res.PayloadOff)+int(res.PayloadLen)]) {
					t.Errorf("%s frame %d: hop MAC does not verify under the tx key", step, k)
				}
			}
		}
		check("uncredited", [][]byte{signed(t, false, sessDep, 1, rx), signedMarked(t, sessV4, 2, rx), signed(t, false, sessV4, 3, rx)},
			[]want{{sched.Deprioritised, true}, {sched.Deprioritised, true}, {sched.Priority, false}})
		if err := f.tables.SetCredit(peerDep, true); err != nil {
			t.Fatal(err)
		}
		check("credited", [][]byte{signed(t, false, sessDep, 4, rx), signedMarked(t, sessDep, 5, rx)},
			[]want{{sched.Deprioritised, false}, {sched.Deprioritised, true}})
	}
}

// TestUncredited: frames relayed for a peer that gives no credit are
// counted towards the next hop as uncredited too, and only those.
func TestUncredited(t *testing.T) {
	rx := hopmac.New(rxKey)
	f := newFixture(t, true)
	if !f.tables.Credit(peerIn) {
		t.Fatal("a slot gives no credit before SetCredit")
	}
	f.decide(0, signed(t, false, sessV4, 1, rx))
	if err := f.tables.SetCredit(peerIn, false); err != nil {
		t.Fatal(err)
	}
	// SetPeer leaves the credit bit alone, and the class survives it.
	if err := f.tables.SetPeer(peerIn, sched.Priority, false); err != nil {
		t.Fatal(err)
	}
	if c, choked := f.tables.Peer(peerIn); c != sched.Priority || choked || f.tables.Credit(peerIn) {
		t.Fatalf("peer state %v %v credit %v", c, choked, f.tables.Credit(peerIn))
	}
	vs := f.decide(0, signed(t, false, sessV4, 2, rx), signed(t, false, sessV4, 3, rx))
	if vs[0].class != sched.Priority {
		t.Errorf("uncredited priority peer's frame in %v", vs[0].class)
	}
	if err := f.tables.SetCredit(peerIn, true); err != nil {
		t.Fatal(err)
	}
	f.decide(0, signed(t, false, sessV4, 4, rx))
	p := f.set.Peer(peerOut)
	if p.ToPackets != 4 || p.UncreditedPackets != 2 || p.UncreditedBytes != p.ToBytes/2 {
		t.Errorf("next hop's counters %+v: want 4 frames towards it, 2 of them uncredited", p)
	}
	if err := f.tables.SetCredit(99, true); err == nil {
		t.Error("SetCredit beyond the slots: no error")
	}
}
