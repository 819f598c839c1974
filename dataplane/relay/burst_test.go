package relay

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
	"github.com/poolrelay/poolrelay/sched"
)

// nullBurst opens a net_null port named name (which frees what it sends)
// on pools of its own, and a Burst of 32 that sends both of the worker's
// ports' frames to it, and a vector of 32 mbuf pointers for its bursts;
// withEgress makes the Burst keep refused frames and collect injected ones,
// as an egress.Port on it needs. All are closed when tb ends, the vector
// first and the port last.
func nullBurst(tb testing.TB, eal *dpdk.EAL, name string, withEgress bool) (*dpdk.Mempool, *dpdk.Burst, *dpdk.MbufVec) {
	tb.Helper()
	pools := eal.NewPools(name, 1023, 0, 0)
	pc := dataplane.DefaultPortConfig()
	pc.Name, pc.Device = name, "net_null_"+name+",size=128"
	port, err := eal.OpenPort(pc, 1, pools)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { port.Close() })
	pool, err := pools.For(port.Socket())
	if err != nil {
		tb.Fatal(err)
	}
	b, err := eal.NewBurst(dpdk.BurstConfig{Size: 32, Tx: []dpdk.Queue{port.TxQueue(0), port.TxQueue(0)}, Socket: -1,
		KeepRefused: withEgress, CollectInject: withEgress})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	vec, err := dpdk.NewMbufVec(32)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(vec.Close)
	return pool, b, vec
}

// TestBurstNoAllocs runs Worker.Burst on real mbufs (a synthetic burst of
// 32 relayed frames copied into mbufs, sent on a net_null port) and proves
// that the whole per-burst path, the Burst's flush included, allocates
// nothing: straight to the TX buffer, and through the egress class queues
// (Drain, Burst, Drain, flush).
func TestBurstNoAllocs(t *testing.T) {
	for _, withEgress := range []bool{false, true} {
		t.Run(fmt.Sprintf("egress=%v", withEgress), func(t *testing.T) { burstNoAllocs(t, withEgress) })
	}
}

func burstNoAllocs(t *testing.T, withEgress bool) {
	eal := env.Need(t)
	pool, b, vec := nullBurst(t, eal, fmt.Sprintf("alloc%v", withEgress), withEgress)
	f := newFixture(t, true)
	w := f.onDPDK()
	if withEgress {
		attachEgress(t, w, b, sched.DefaultConfig(), eal.TSCHz(), int64(b.TSC()))
		defer w.CloseEgress(b)
	}
	rx := hopmac.New(rxKey)
	m := wiretest.Matcher()
	fs := burst(t, 32, rx, 1)
	seq := uint64(1000)
	ms := vec.Mbufs()
	var failed error
	allocs := testing.AllocsPerRun(100, func() {
		if err := pool.AllocBulk(ms); err != nil {
			failed = err
			return
		}
		for i, fr := range fs {
			restamp(fr, m, rx, seq)
			seq++
			if err := ms[i].CopyFrom(fr); err != nil {
				failed = err
			}
		}
		w.Drain(b)
		w.Burst(b, 0, ms)
		w.Drain(b)
		b.Flush()
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if withEgress {
		// Between Burst and Drain the frames wait in the class queues.
		if err := pool.AllocBulk(ms); err != nil {
			t.Fatal(err)
		}
		for i, fr := range fs {
			restamp(fr, m, rx, seq)
			seq++
			if err := ms[i].CopyFrom(fr); err != nil {
				t.Fatal(err)
			}
		}
		w.Burst(b, 0, ms)
		if got := w.Backlog(); got != len(ms) {
			t.Errorf("backlog %d after a burst, want %d", got, len(ms))
		}
		w.Drain(b)
		b.Flush()
		if got := w.Backlog(); got != 0 {
			t.Errorf("backlog %d after Drain, want 0", got)
		}
	}
	if allocs != 0 {
		t.Errorf("%v allocations per burst, want 0", allocs)
	}
	runs := uint64(101)
	if withEgress {
		runs++
	}
	if got, want := f.set.Peer(peerIn).ForPackets, runs*32; got != want {
		t.Errorf("relayed %d frames, want %d", got, want)
	}
	if st := b.Stats(); st.Tx != runs*32 {
		t.Errorf("burst stats %+v", st)
	}
}

// TestMACPaths relays the same burst (valid frames over IPv4 and IPv6, with
// and without a UDP checksum, a forged MAC, a replay, a non-zero second
// half of the MAC field) three ways: from mbufs, with
// the hop MACs through intel-ipsec-mb in one call per pass; from mbufs on
// tables that keep to Go (the fallback of a CPU without AES-NI); and from
// Go copies, as the unit tests do. Same keys and seqs: verdicts and every
// output byte must agree.
func TestMACPaths(t *testing.T) {
	eal := env.Need(t)
	if _, err := dpdk.GMACEngine(); err != nil {
		t.Skip("no intel-ipsec-mb path on this CPU, only the Go path exists here:", err)
	}
	pools := eal.NewPools("macpaths", 1023, 0, 0)
	pool, err := pools.For(-1)
	if err != nil {
		t.Fatal(err)
	}
	rx := hopmac.New(rxKey)
	fs := burst(t, 32, rx, 1)
	// IPv6 frames among them (a UDP checksum always, over other
	// addresses), and IPv4 frames without one.
	for i := 20; i < 26; i++ {
		fs[i] = signed(t, true, sessV6, uint64(100+i), rx)
	}
	for i := 26; i < 29; i++ {
		s := wiretest.Spec(false)
		s.Pool.Session, s.Pool.Seq, s.NoUDPChecksum = sessV4, uint64(100+i), true
		s.Pool.MAC = macOf(&s.Pool, s.Payload, rx)
		fs[i] = wiretest.Frame(t, &s)
	}
	fs[3][len(fs[3])-1] ^= 1              // payload changed: bad MAC
	fs[7] = append([]byte(nil), fs[6]...) // the same seq twice: replay
	fs[9][wire.EthernetLen+wire.IPv4MinLen+wire.UDPLen+hopmac.MACOffset+hopmac.TagSize] = 1
	inMbufs := func(goMACs bool) (*fixture, [][]byte) {
		vec, err := dpdk.NewMbufVec(32)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(vec.Close)
		ms := vec.Mbufs()
		if err := pool.AllocBulk(ms); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dpdk.FreeBulk(ms) })
		out := make([][]byte, len(ms))
		for i, m := range ms {
			if err := m.CopyFrom(fs[i]); err != nil {
				t.Fatal(err)
			}
			out[i] = m.Data()
		}
		f := newFixtureMACs(t, true, goMACs)
		if (f.w.gmac != nil) == goMACs {
			t.Fatalf("goMACs %v: worker batch %v", goMACs, f.w.gmac)
		}
		f.w.decide(0, ms, out)
		return f, out
	}
	c, cf := inMbufs(false)
	m, mf := inMbufs(true)
	g := newFixture(t, true)
	g.w.decide(0, nil, fs)
	for i := range fs {
		if c.w.verdicts[i] != g.w.verdicts[i] || m.w.verdicts[i] != g.w.verdicts[i] {
			t.Errorf("frame %d: verdict %+v through intel-ipsec-mb, %+v through Go on mbufs, %+v through Go",
				i, c.w.verdicts[i], m.w.verdicts[i], g.w.verdicts[i])
		}
		if !bytes.Equal(cf[i], fs[i]) || !bytes.Equal(mf[i], fs[i]) {
			t.Errorf("frame %d differs:\n%x\n%x\n%x", i, cf[i], mf[i], fs[i])
		}
	}
	want := map[int]Reason{3: ReasonBadMAC, 7: ReasonReplay, 9: ReasonBadMAC}
	for i := range fs {
		v := c.w.verdicts[i]
		if r, bad := want[i]; bad != (v.act != actRelay) || bad && Reason(v.reason) != r {
			t.Errorf("frame %d: verdict %+v", i, v)
		}
	}
}

// BenchmarkHopAuth is the worker's decisions on bursts of 32 relayed frames
// in mbufs with hop authentication, at 128 and 1500 B, the hop MACs through
// intel-ipsec-mb (one cgo call per burst to verify, one to sign) and
// through crypto/hopmac in Go, side by side in one run; and without hop
// authentication, the reference. Each op is a burst: the frames are copied
// into the mbufs (as a PMD would have written them), decided and counted.
// Every 64 bursts the slot's keys are installed again, outside the timing,
// which resets the replay window, so the same signed frames serve again.
func BenchmarkHopAuth(b *testing.B) {
	// The worker's relayed frames go out on net_null, which frees them.
	pool, io, vec := nullBurst(b, env.Need(b), "hopauth", false)
	for _, size := range []int{128, 1500} {
		for _, mode := range []string{"ipsecmb", "go", "noauth"} {
			b.Run(fmt.Sprintf("%d/%s", size, mode), func(b *testing.B) {
				if mode == "ipsecmb" {
					if _, err := dpdk.GMACEngine(); err != nil {
						b.Skip(err)
					}
				}
				benchHopAuth(b, io, pool, vec.Mbufs(), size, mode)
			})
		}
	}
}

func benchHopAuth(b *testing.B, io *dpdk.Burst, pool *dpdk.Mempool, ms []*dpdk.Mbuf, size int, mode string) {
	f := newFixtureMACs(b, mode != "noauth", mode == "go")
	w := f.onDPDK()
	rx := hopmac.New(rxKey)
	const rounds = 64
	bursts := make([][][]byte, rounds)
	for i := range bursts {
		bursts[i] = make([][]byte, 32)
		for j := range bursts[i] {
			s := wiretest.Spec(false)
			s.Pool.Session, s.Pool.Seq = sessV4, uint64(1+32*i+j)
			s.Payload = make([]byte, size-(wire.EthernetLen+wire.IPv4MinLen+wire.UDPLen+wire.HeaderLen))
			s.Pool.MAC = macOf(&s.Pool, s.Payload, rx)
			bursts[i][j] = wiretest.Frame(b, &s)
		}
	}
	b.SetBytes(int64(32 * size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%rounds == 0 && i > 0 {
			b.StopTimer()
			if err := f.tables.SetHopKeys(keyIn, rxKey, nil); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		if err := pool.AllocBulk(ms); err != nil {
			b.Fatal(err)
		}
		for j, fr := range bursts[i%rounds] {
			if err := ms[j].CopyFrom(fr); err != nil {
				b.Fatal(err)
			}
		}
		w.Burst(io, 0, ms)
		io.Flush()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/frame")
	if d := f.set.Drops(int(ReasonReplay)) + f.set.Drops(int(ReasonBadMAC)); d != 0 {
		b.Fatalf("%d frames dropped", d)
	}
}

// TestBurstEgressFull relays a burst of 32 frames towards a class queue
// with room for 16: the worker hands them to the egress in one batch, the
// 16 it takes are sent and charged, the other 16 are dropped with reason
// egress_full and charged to nobody, and no mbuf leaks.
func TestBurstEgressFull(t *testing.T) {
	eal := env.Need(t)
	pool, b, vec := nullBurst(t, eal, "egfull", true)
	f := newFixture(t, true)
	w := f.onDPDK()
	cfg := sched.DefaultConfig()
	cfg.Priority.QueueFrames = 16
	attachEgress(t, w, b, cfg, eal.TSCHz(), int64(b.TSC()))
	inUse := pool.InUse()
	ms := vec.Mbufs()
	if err := pool.AllocBulk(ms); err != nil {
		t.Fatal(err)
	}
	for i, fr := range burst(t, 32, hopmac.New(rxKey), 1) {
		if err := ms[i].CopyFrom(fr); err != nil {
			t.Fatal(err)
		}
	}
	w.Burst(b, 0, ms)
	if got := w.Backlog(); got != 16 {
		t.Errorf("backlog %d, want 16", got)
	}
	if got := f.set.Drops(int(ReasonEgressFull)); got != 16 {
		t.Errorf("%d frames dropped egress_full, want 16", got)
	}
	if got := f.set.Peer(peerIn).ForPackets; got != 16 {
		t.Errorf("ingress peer charged for %d frames, want the 16 queued", got)
	}
	w.CloseEgress(b)
	b.Flush()
	if got := pool.InUse(); got != inUse {
		t.Errorf("%d mbufs in use, %d before: frames leaked", got, inUse)
	}
	if st := b.Stats(); st.Tx != 16 {
		t.Errorf("sent %d frames, want 16 (%+v)", st.Tx, st)
	}
}
