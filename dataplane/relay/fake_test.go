package relay

import (
	"testing"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
	"github.com/poolrelay/poolrelay/sched"
)

// The tests in this file run Worker.Burst's whole action loop on the
// in-memory packet I/O (dpdk/bursttest), which checks that every mbuf
// goes to exactly one of send, drop and punt: without DPDK, cgo or root.
// burst_test.go runs the same loop on DPDK's mbufs and net_null.

// TestFakeActions: one burst of every fate, straight to the TX buffers:
// relayed frames (one with a VLAN tag pushed on the way) and the ARP and
// ND answers are sent, each on its port, the heartbeat is punted, the
// rest dropped under their reasons; nothing is left over.
func TestFakeActions(t *testing.T) {
	f := newFixture(t, true)
	rx := hopmac.New(rxKey)
	sessVLAN := wire.SessionID{0x71, 0x4}
	r := testRoute(t, false)
	r.VLAN, r.EgressPort = 7, 1
	if err := f.tables.Routes().Put(route.SessionID(sessVLAN), r); err != nil {
		t.Fatal(err)
	}
	hb := wiretest.Spec(false)
	hb.Pool.Type = wire.TypeHeartbeat
	buf := make([]byte, wiretest.BufLen)
	n, err := wire.BuildARPRequest(buf, nil, wiretest.PeerMAC, wiretest.Peer4, wiretest.Relay4)
	if err != nil {
		t.Fatal(err)
	}
	arp := append([]byte(nil), buf[:n]...)
	n, err = wire.BuildNeighborSolicit(buf, nil, wiretest.PeerMAC, wiretest.Peer6, wiretest.Relay6)
	if err != nil {
		t.Fatal(err)
	}
	nd := append([]byte(nil), buf[:n]...)
	tagged := signed(t, false, sessVLAN, 2, rx)
	frames := [][]byte{
		signed(t, false, sessV4, 1, rx),
		tagged,
		wiretest.Frame(t, &hb),
		signed(t, false, sessUnknown, 1, rx),
		arp,
		nd,
		nil, // segmented
		signed(t, true, sessV6, 3, rx),
	}
	vs := f.decide(0, frames...)
	want := []action{actRelay, actRelay, actPunt, actDrop, actSend, actAnswerND, actDrop, actRelay}
	for i, v := range vs {
		if v.act != want[i] {
			t.Errorf("frame %d: %+v (%v), want act %d", i, v, Reason(v.reason), want[i])
		}
	}
	// f.decide flushed: what went out is the fake's until the next one.
	sent0, sent1 := f.b.Sent(0), f.b.Sent(1)
	if len(sent0) != 4 || len(sent1) != 1 || len(f.b.Punted()) != 1 || f.b.Stats().Dropped != 2 {
		t.Fatalf("sent %d on port 0 and %d on port 1, punted %d, dropped %d; want 4, 1, 1, 2",
			len(sent0), len(sent1), len(f.b.Punted()), f.b.Stats().Dropped)
	}
	v := sent1[0].Data()
	e := wire.Ethernet(v)
	if len(v) != len(tagged)+wire.VLANTagLen || e.EtherType() != wire.EtherTypeVLAN || e.Tag(0).TCI&0x0fff != 7 {
		t.Errorf("VLAN route: %d bytes (from %d), ethertype %#x", len(v), len(tagged), e.EtherType())
	}
	var res wire.Result
	wire.Classify(v, wiretest.Matcher(), &res)
	if res.Drop != wire.DropNone || res.VLANs != 1 || !wire.UDPChecksumValid(v, &res) {
		t.Errorf("tagged frame: drop %v, %d tags, checksum valid %v", res.Drop, res.VLANs, wire.UDPChecksumValid(v, &res))
	}
	// The ND answer, grown in the mbuf's tailroom.
	ans := sent0[2].Data() // port 0 in burst order: relayed, ARP, ND, relayed
	wire.Classify(ans, wiretest.Matcher(), &res)
	if res.Kind != wire.KindND || wire.ND(ans[res.L4Off:]).Type() != wire.ICMPv6NeighborAdvert {
		t.Errorf("ND answer: kind %v", res.Kind)
	}
	if tx := f.set.Port(0).TxPackets + f.set.Port(1).TxPackets; tx != 5 {
		t.Errorf("%d frames counted as sent, want 5", tx)
	}
	if d := f.set.Drops(int(ReasonNoRoute)) + f.set.Drops(int(ReasonSegmented)); d != 2 {
		t.Errorf("%d frames counted as dropped, want 2", d)
	}
}

// TestFakeEgressFull is TestBurstEgressFull on the fake: a class queue
// with room for 16 takes 16 of a burst of 32, which are sent and charged;
// the other 16 are dropped as egress_full and charged to nobody.
func TestFakeEgressFull(t *testing.T) {
	f := newFixture(t, true)
	cfg := sched.DefaultConfig()
	cfg.Priority.QueueFrames = 16
	eg := attachEgress(t, f.w, f.b, cfg, 1e9, 0)
	f.w.Burst(f.b, 0, f.b.Cycle(burst(t, 32, hopmac.New(rxKey), 1)...))
	if got := f.w.Backlog(); got != 16 {
		t.Errorf("backlog %d, want 16", got)
	}
	if got := f.set.Drops(int(ReasonEgressFull)); got != 16 {
		t.Errorf("%d frames dropped egress_full, want 16", got)
	}
	if got := f.set.Peer(peerIn).ForPackets; got != 16 {
		t.Errorf("ingress peer charged for %d frames, want the 16 queued", got)
	}
	f.w.CloseEgress(f.b)
	f.b.Flush()
	if n := f.b.InUse(); n != 0 {
		t.Errorf("%d mbufs held: frames leaked", n)
	}
	if st := f.b.Stats(); st.Tx != 16 || st.Dropped != 16 {
		t.Errorf("sent %d, dropped %d; want 16 and 16 (%+v)", st.Tx, st.Dropped, st)
	}
	eg[0].Publish()
	if c := eg[0].Stats().Class[sched.Priority]; c.SentPkts != 16 || c.DroppedPkts != 16 {
		t.Errorf("priority class: %+v", c)
	}
}

// TestFakeRefusedThroughWorker runs the Engine's loop (Drain, Cycle,
// Burst) on the fake with a TX ring that takes 5 frames a flush: the
// refused frames go back to the class queues and out later, every relayed
// frame exactly once and in order, the control core's injected ones first.
func TestFakeRefusedThroughWorker(t *testing.T) {
	f := newFixture(t, true)
	attachEgress(t, f.w, f.b, sched.DefaultConfig(), 1e9, 0)
	f.b.SetTxRoom(0, 5)
	rx := hopmac.New(rxKey)
	ctl := wiretest.Spec(false)
	ctl.Pool.Type, ctl.Pool.Seq = wire.TypeHeartbeat, 1<<40
	f.b.Inject(0, wiretest.Frame(t, &ctl))
	var got []uint64
	collect := func() {
		for _, m := range f.b.Sent(0) {
			var r wire.Result
			wire.Classify(m.Data(), wiretest.Matcher(), &r)
			got = append(got, r.Seq)
		}
	}
	seq := uint64(1)
	for round := range 40 {
		f.w.Drain(f.b)
		var in [][]byte
		if round < 4 {
			in = burst(t, 8, rx, seq)
			seq += 8
		}
		f.b.SetTSC(uint64(round) * 1000)
		rxd := f.b.Cycle(in...)
		collect()
		f.w.Burst(f.b, 0, rxd)
	}
	f.w.CloseEgress(f.b)
	f.b.Flush()
	collect()
	if len(got) != 33 || got[0] != 1<<40 {
		t.Fatalf("sent %d frames (%v), want the control frame then 32", len(got), got)
	}
	for i, s := range got[1:] {
		if s != uint64(i) {
			t.Fatalf("sent seqs %v: want the egress key's 0 to 31 in order", got[1:])
		}
	}
	if n := f.b.InUse(); n != 0 {
		t.Errorf("%d mbufs held", n)
	}
	if st := f.b.Stats(); st.TxRefused == 0 {
		t.Errorf("the TX ring refused nothing (%+v): the test did not test", st)
	}
}

// TestFakeMarkedThroughEgress: through the worker's egress on the fake, a
// frame that arrives with the deprioritised mark from a priority peer is
// queued in class Deprioritised and sent still marked; its unmarked
// neighbour in the burst goes in Priority, unmarked.
func TestFakeMarkedThroughEgress(t *testing.T) {
	f := newFixture(t, true)
	eg := attachEgress(t, f.w, f.b, sched.DefaultConfig(), 1e9, 0)
	rx := hopmac.New(rxKey)
	f.w.Burst(f.b, 0, f.b.Cycle(signedMarked(t, sessV4, 1, rx), signed(t, false, sessV4, 2, rx)))
	marked := map[uint64]bool{}
	collect := func() {
		for _, m := range f.b.Sent(0) {
			var r wire.Result
			wire.Classify(m.Data(), wiretest.Matcher(), &r)
			marked[r.Seq] = r.Flags&wire.FlagDeprioritised != 0
		}
	}
	for round := range 4 {
		f.b.SetTSC(uint64(round+1) * 1_000_000)
		f.w.Drain(f.b)
		collect()
		f.b.Flush()
	}
	f.w.CloseEgress(f.b)
	f.b.Flush()
	if len(marked) != 2 || !marked[0] || marked[1] {
		t.Errorf("sent frames by egress seq, marked: %v; want seq 0 marked, 1 not", marked)
	}
	eg[0].Publish()
	st := eg[0].Stats()
	if st.Class[sched.Deprioritised].SentPkts != 1 || st.Class[sched.Priority].SentPkts != 1 {
		t.Errorf("sent by class: deprioritised %+v, priority %+v; want one each", st.Class[sched.Deprioritised], st.Class[sched.Priority])
	}
	if n := f.b.InUse(); n != 0 {
		t.Errorf("%d mbufs held", n)
	}
}
