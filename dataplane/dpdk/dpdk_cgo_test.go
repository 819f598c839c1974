//go:build linux && cgo

package dpdk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/internal/pcapfile"
)

func TestMbufOffsets(t *testing.T) {
	for _, c := range mbufLayout() {
		if c.goVal != c.cValue {
			t.Errorf("%s: the binding uses %d, the C compiler says %d", c.name, c.goVal, c.cValue)
		}
	}
}

func TestInitOnce(t *testing.T) {
	e := needDPDK(t)
	cfg := env.Config
	again, err := Init(dataplane.EALConfig{Cores: "0", FilePrefix: "other", LogLevel: 1}, nil, env.EAL.log)
	if again != e || err != nil {
		t.Fatalf("second Init = %p, %v; want the first EAL %p and nil", again, err, e)
	}
	args := strings.Join(e.Args(), " ")
	for _, want := range []string{"--no-huge", "--file-prefix " + cfg.FilePrefix, "--vdev " + nullA, "--vdev " + ring0, "--no-pci"} {
		if !strings.Contains(args, want) {
			t.Errorf("EAL arguments %q lack %q", args, want)
		}
	}
	if filepath.Base(e.RuntimeDir()) != cfg.FilePrefix {
		t.Errorf("runtime directory %s is not named after the file prefix %s", e.RuntimeDir(), cfg.FilePrefix)
	}
	if _, err := os.Stat(e.RuntimeDir()); err != nil {
		t.Errorf("runtime directory: %v", err)
	}
}

// allocFrames allocates len(frames) mbufs from pool holding the frames.
func allocFrames(t testing.TB, pool *Mempool, frames [][]byte) []*Mbuf {
	t.Helper()
	ms := make([]*Mbuf, len(frames))
	if err := pool.AllocBulk(ms); err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if err := ms[i].CopyFrom(f); err != nil {
			t.Fatal(err)
		}
	}
	return ms
}

// testFrames returns n distinct frames of varied lengths (60 to 1514).
func testFrames(n int) [][]byte {
	frames := make([][]byte, n)
	for i := range frames {
		f := make([]byte, 60+(i*97)%1455)
		for j := range f {
			f[j] = byte(i*31 + j)
		}
		copy(f, fmt.Sprintf("frame %04d", i))
		frames[i] = f
	}
	return frames
}

func TestNullRxTx(t *testing.T) {
	a, b, _ := testPorts(t)
	burst, err := env.EAL.NewBurst(BurstConfig{Size: 32, Tx: []Queue{b.TxQueue(0)}, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer burst.Close()
	before, _ := b.Stats()
	const bursts = 100
	for i := 0; i < bursts; i++ {
		rx := burst.Cycle(a.RxQueue(0))
		if len(rx) != 32 {
			t.Fatalf("burst %d: net_null gave %d frames, want 32", i, len(rx))
		}
		for _, m := range rx {
			if m.Len() != 128 || m.PktLen() != 128 || len(m.Data()) != 128 || m.Segments() != 1 {
				t.Fatalf("frame of %d/%d bytes, %d segments; want 128, 1", m.Len(), m.PktLen(), m.Segments())
			}
			if m.Port() != a.ID() {
				t.Fatalf("frame from port %d, want %d", m.Port(), a.ID())
			}
			burst.Send(0, m)
		}
		if got := burst.Pending(0); got != 32 {
			t.Fatalf("%d frames pending, want 32", got)
		}
	}
	burst.Flush()
	st := burst.Stats()
	if st.Rx != bursts*32 || st.Tx != bursts*32 || st.TxUnsent != 0 {
		t.Errorf("burst stats %+v, want %d received and sent", st, bursts*32)
	}
	after, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := after.TxPackets - before.TxPackets; got != bursts*32 {
		t.Errorf("port %s counted %d frames sent, want %d", b.Name(), got, bursts*32)
	}
}

func TestPortInfo(t *testing.T) {
	a, _, r := testPorts(t)
	if a.Driver() != "net_null" || r.Driver() != "net_ring" {
		t.Errorf("drivers %q and %q, want net_null and net_ring", a.Driver(), r.Driver())
	}
	link, err := a.Link()
	if err != nil || !link.Up {
		t.Errorf("link %+v, %v: want up", link, err)
	}
	mac, err := a.MAC()
	if err != nil || mac == [6]byte{} {
		t.Errorf("MAC %x, %v: want a non-zero address", mac, err)
	}
	if rx, tx := a.Queues(); rx != 1 || tx != 1 {
		t.Errorf("queues %d/%d, want 1/1", rx, tx)
	}
	if rx, tx := a.Descriptors(); rx < 1 || tx < 1 {
		t.Errorf("descriptors %d/%d", rx, tx)
	}
	// Move some frames so the counters have something to say.
	burst, err := env.EAL.NewBurst(BurstConfig{Size: 8, Tx: []Queue{a.TxQueue(0)}, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range burst.Cycle(a.RxQueue(0)) {
		burst.Send(0, m)
	}
	burst.Close()
	xs, err := a.XStats()
	if err != nil || len(xs) == 0 {
		t.Fatalf("xstats %v, %v: want some", xs, err)
	}
	st, _ := a.Stats()
	found := false
	for _, x := range xs {
		if x.Name == "rx_good_packets" {
			found = true
			if x.Value != st.RxPackets {
				t.Errorf("xstat rx_good_packets = %d, stats say %d", x.Value, st.RxPackets)
			}
		}
	}
	if !found {
		t.Errorf("no rx_good_packets among the xstats %v", xs)
	}
}

// TestRingLoopback sends distinct frames of varied lengths on a net_ring
// port, whose TX feeds its own RX, and expects them back byte for byte and
// in order.
func TestRingLoopback(t *testing.T) {
	_, _, r := testPorts(t)
	pool, err := env.pools.For(r.Socket())
	if err != nil {
		t.Fatal(err)
	}
	burst, err := env.EAL.NewBurst(BurstConfig{Size: 32, Tx: []Queue{r.TxQueue(0)}, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer burst.Close()
	frames := testFrames(100)
	ms := allocFrames(t, pool, frames)
	for i, m := range ms[:50] {
		if i%32 == 0 {
			burst.Flush() // a TX buffer holds one burst
		}
		burst.Send(0, m)
	}
	burst.Flush()
	burst.SendBurst(0, ms[50:75])
	burst.Flush()
	burst.SendBurst(0, ms[75:])
	var got [][]byte
	for tries := 0; len(got) < len(frames) && tries < 100; tries++ {
		for _, m := range burst.Cycle(r.RxQueue(0)) {
			got = append(got, bytes.Clone(m.Data()))
			burst.Drop(m)
		}
	}
	burst.Flush()
	if len(got) != len(frames) {
		t.Fatalf("%d frames came back, want %d (burst stats %+v)", len(got), len(frames), burst.Stats())
	}
	for i := range frames {
		if !bytes.Equal(got[i], frames[i]) {
			t.Fatalf("frame %d came back as %d bytes %q..., sent %d bytes %q...", i, len(got[i]), got[i][:12], len(frames[i]), frames[i][:12])
		}
	}
	if st := burst.Stats(); st.Dropped != uint64(len(frames)) {
		t.Errorf("dropped %d frames, want %d", st.Dropped, len(frames))
	}
}

// TestPcapRoundTrip reads frames from a pcap file through net_pcap,
// hot-plugged with rx_pcap and tx_pcap in a temporary directory, sends them
// back out and compares the written file with the input.
func TestPcapRoundTrip(t *testing.T) {
	e := needDPDK(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pcap"), filepath.Join(dir, "out.pcap")
	frames := testFrames(50)
	if err := pcapfile.WriteFile(in, frames, time.Unix(1704067200, 0), time.Microsecond); err != nil {
		t.Fatal(err)
	}
	dev := fmt.Sprintf("net_pcap0,rx_pcap=%s,tx_pcap=%s", in, out)
	p, err := e.OpenPort(portConfig(dev), 1, env.pools)
	if err != nil {
		t.Fatal(err)
	}
	burst, err := e.NewBurst(BurstConfig{Size: 16, Tx: []Queue{p.TxQueue(0)}, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	for tries := 0; burst.Stats().Rx < uint64(len(frames)) && tries < 1000; tries++ {
		for _, m := range burst.Cycle(p.RxQueue(0)) {
			burst.Send(0, m)
		}
	}
	burst.Close()
	if st := burst.Stats(); st.Rx != uint64(len(frames)) || st.Tx != uint64(len(frames)) {
		t.Fatalf("burst stats %+v, want %d frames received and sent", st, len(frames))
	}
	// The PMD flushes and closes tx_pcap when the port stops.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := pcapfile.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(frames) {
		t.Fatalf("output has %d frames, want %d", len(got), len(frames))
	}
	for i := range frames {
		if !bytes.Equal(got[i], frames[i]) {
			t.Fatalf("frame %d differs: got %d bytes, sent %d", i, len(got[i]), len(frames[i]))
		}
	}
	// Close unplugged the device: the same name opens again.
	p, err = e.OpenPort(portConfig(fmt.Sprintf("net_pcap0,rx_pcap=%s,tx_pcap=%s", in, out+"2")), 1, env.pools)
	if err != nil {
		t.Fatalf("reopening net_pcap0: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRings(t *testing.T) {
	e := needDPDK(t)
	pool, err := env.pools.For(-1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.NewRing("test_spsc", 8, -1, RingSPSC)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewMbufVec(12)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ms := v.Mbufs()
	if err := pool.AllocBulk(ms); err != nil {
		t.Fatal(err)
	}
	sent := slices.Clone(ms)
	if n := r.EnqueueBurst(ms); n != 8 {
		t.Fatalf("enqueued %d of 12 into a ring of 8, want 8", n)
	}
	if r.Count() != 8 {
		t.Fatalf("ring holds %d, want 8", r.Count())
	}
	FreeBulk(ms[8:]) // the ring did not take them
	clear(ms)
	if n := r.DequeueBurst(ms); n != 8 || !slices.Equal(ms[:8], sent[:8]) {
		t.Fatalf("dequeued %d mbufs %v, want the 8 enqueued %v in order", n, ms[:n], sent[:8])
	}
	FreeBulk(ms[:8])
	if r.Count() != 0 || r.DequeueBurst(ms) != 0 {
		t.Fatal("ring not empty after dequeueing everything")
	}
}

// TestPuntAndInject runs the two control-core paths through a Burst: frames
// the worker punts reach the punt ring (the ring's overflow is freed and
// counted), and frames the control core injects go out on the worker's TX
// queue in the next cycle.
func TestPuntAndInject(t *testing.T) {
	a, b, _ := testPorts(t)
	e := env.EAL
	punt, err := e.NewRing("test_punt", 8, -1, RingSPSC)
	if err != nil {
		t.Fatal(err)
	}
	inject, err := e.NewRing("test_inject", 64, -1, RingSPSC)
	if err != nil {
		t.Fatal(err)
	}
	burst, err := e.NewBurst(BurstConfig{Size: 16, Tx: []Queue{b.TxQueue(0)}, Inject: []*Ring{inject}, Punt: punt, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer burst.Close()

	rx := burst.Cycle(a.RxQueue(0))
	if len(rx) != 16 {
		t.Fatalf("got %d frames, want 16", len(rx))
	}
	for _, m := range rx {
		burst.Punt(m)
	}
	pool, _ := env.pools.For(-1)
	frames := testFrames(5)
	injected := allocFrames(t, pool, frames)
	if n := inject.EnqueueBurst(injected); n != len(injected) {
		t.Fatalf("inject ring took %d of %d", n, len(injected))
	}
	before, _ := b.Stats()
	burst.Flush()
	st := burst.Stats()
	if st.Punted != 8 || st.PuntFull != 8 {
		t.Errorf("punted %d, freed %d for a full ring; want 8 and 8", st.Punted, st.PuntFull)
	}
	if st.Injected != 5 || inject.Count() != 0 {
		t.Errorf("injected %d (ring still holds %d), want 5", st.Injected, inject.Count())
	}
	after, _ := b.Stats()
	if got := after.TxPackets - before.TxPackets; got != 5 {
		t.Errorf("port sent %d frames, want the 5 injected", got)
	}
	out := make([]*Mbuf, 16)
	n := punt.DequeueBurst(out)
	if n != 8 {
		t.Fatalf("punt ring gave %d frames, want 8", n)
	}
	for i, m := range out[:n] {
		if m != rx[i] {
			t.Fatalf("punted frame %d is %p, want %p", i, m, rx[i])
		}
	}
	FreeBulk(out[:n])
}

// TestMempoolExhaustion drains a small pool, checks that allocation fails
// cleanly and that a port receiving from the drained pool gets nothing and
// counts nothing wrong, then refills it.
func TestMempoolExhaustion(t *testing.T) {
	e := needDPDK(t)
	pools := e.NewPools("exh", 511, 0, 0)
	p, err := e.OpenPort(portConfig("net_null2,size=64"), 1, pools)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pool, err := pools.For(p.Socket())
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewMbufVec(pool.Size())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	all := v.Mbufs()
	if err := pool.AllocBulk(all); err != nil {
		t.Fatalf("allocating the whole pool of %d: %v (%d free)", pool.Size(), err, pool.Avail())
	}
	if pool.Avail() != 0 || pool.InUse() != pool.Size() {
		t.Fatalf("after draining: %d free, %d in use", pool.Avail(), pool.InUse())
	}
	one := make([]*Mbuf, 1)
	err = pool.AllocBulk(one)
	if !errors.Is(err, ErrNoMbufs) || one[0] != nil {
		t.Fatalf("allocation from a drained pool: %v, %p; want ErrNoMbufs and nothing", err, one[0])
	}
	burst, err := e.NewBurst(BurstConfig{Size: 32, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer burst.Close()
	for i := 0; i < 10; i++ {
		if rx := burst.Cycle(p.RxQueue(0)); len(rx) != 0 {
			t.Fatalf("received %d frames from a drained pool", len(rx))
		}
	}
	FreeBulk(all)
	if pool.Avail() != pool.Size() {
		t.Fatalf("after freeing: %d free, want %d", pool.Avail(), pool.Size())
	}
	rx := burst.Cycle(p.RxQueue(0))
	if len(rx) != 32 {
		t.Fatalf("received %d frames after refilling, want 32", len(rx))
	}
	for _, m := range rx {
		burst.Drop(m)
	}
	burst.Flush()
	if pool.Avail() != pool.Size() {
		t.Fatalf("after dropping: %d free, want %d", pool.Avail(), pool.Size())
	}
}

func TestMbufEdits(t *testing.T) {
	needDPDK(t)
	pool, err := env.pools.For(-1)
	if err != nil {
		t.Fatal(err)
	}
	ms := make([]*Mbuf, 1)
	if err := pool.AllocBulk(ms); err != nil {
		t.Fatal(err)
	}
	m := ms[0]
	defer m.Free()
	if m.Headroom() != Headroom || m.Len() != 0 || m.Tailroom() != pool.DataRoom()-Headroom {
		t.Fatalf("fresh mbuf: headroom %d, length %d, tailroom %d", m.Headroom(), m.Len(), m.Tailroom())
	}
	if err := m.CopyFrom(make([]byte, pool.DataRoom())); !errors.Is(err, ErrTooLarge) || m.Len() != 0 {
		t.Fatalf("oversized copy: %v, length %d", err, m.Len())
	}
	if err := m.CopyFrom([]byte("payload")); err != nil {
		t.Fatal(err)
	}
	d := m.Prepend(4)
	if d == nil || m.Headroom() != Headroom-4 || m.Len() != 11 || m.PktLen() != 11 {
		t.Fatalf("prepend: headroom %d, length %d/%d", m.Headroom(), m.Len(), m.PktLen())
	}
	copy(d, "hdr:")
	if string(m.Data()) != "hdr:payload" {
		t.Fatalf("data %q after prepend", m.Data())
	}
	if m.Prepend(Headroom) != nil || m.Len() != 11 {
		t.Fatal("prepend beyond the headroom changed the frame")
	}
	if d := m.Adj(4); string(d) != "payload" || m.Headroom() != Headroom {
		t.Fatalf("adj: %q, headroom %d", d, m.Headroom())
	}
	if m.Adj(8) != nil || m.SetLen(pool.DataRoom()) != nil {
		t.Fatal("adj or setlen beyond the frame succeeded")
	}
	if d := m.SetLen(3); string(d) != "pay" || m.PktLen() != 3 {
		t.Fatalf("setlen: %q", d)
	}
	m.SetPort(7)
	if m.Port() != 7 {
		t.Fatalf("port %d after SetPort(7)", m.Port())
	}
}

// TestWorker runs a worker on the worker core and checks its thread: pinned
// to that core alone, registered with an lcore id of its own, forwarding
// on net_null; and EAL.Close refusing to stop ports under it.
func TestWorker(t *testing.T) {
	a, b, _ := testPorts(t)
	e := env.EAL
	type seen struct {
		cpus   []int
		lcore  int
		frames uint64
	}
	pool, err := env.pools.For(a.Socket())
	if err != nil {
		t.Fatal(err)
	}
	avail := pool.Avail()
	res := make(chan seen, 1)
	w, err := e.StartWorker(env.WorkCore, func(w *Worker) error {
		var s seen
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			return err
		}
		for c := 0; c < len(set)*64; c++ {
			if set.IsSet(c) {
				s.cpus = append(s.cpus, c)
			}
		}
		s.lcore = w.Lcore()
		burst, err := e.NewBurst(BurstConfig{Size: 32, Tx: []Queue{b.TxQueue(0)}, Socket: -1})
		if err != nil {
			return err
		}
		defer burst.Close()
		for !w.Stopping() {
			for _, m := range burst.Cycle(a.RxQueue(0)) {
				burst.Send(0, m)
			}
		}
		burst.Flush()
		s.frames = burst.Stats().Tx
		res <- s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := e.Close(); !errors.Is(err, ErrWorkersRunning) {
		t.Errorf("EAL.Close with a worker running: %v, want ErrWorkersRunning", err)
	}
	w.Stop()
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	s := <-res
	if !slices.Equal(s.cpus, []int{env.WorkCore}) {
		t.Errorf("worker thread may run on CPUs %v, want only %d", s.cpus, env.WorkCore)
	}
	if s.lcore < 0 || s.lcore >= 128 || s.lcore == env.MainCore {
		t.Errorf("worker lcore id %d: want a registered id other than the main lcore %d", s.lcore, env.MainCore)
	}
	if s.frames == 0 {
		t.Error("worker forwarded nothing")
	}
	// Avail counts the lcore caches too; only an allocation of every free
	// mbuf from this thread (no cache) shows that the worker's cache went
	// back to the pool.
	if got := pool.Avail(); got != avail {
		t.Errorf("%d mbufs free after the worker ended, %d before", got, avail)
	}
	v, err := NewMbufVec(avail)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := pool.AllocBulk(v.Mbufs()); err != nil {
		t.Errorf("the worker's mempool cache stranded mbufs: %v", err)
	} else {
		FreeBulk(v.Mbufs())
	}
	t.Logf("worker on core %d, lcore %d, forwarded %d frames in ~50 ms", w.Core(), s.lcore, s.frames)
}

// TestBurstOverflow checks that queueing more than Size frames between two
// flushes panics (a programming error) instead of losing frames, and that
// the queued frames stay intact.
func TestBurstOverflow(t *testing.T) {
	_, b, _ := testPorts(t)
	burst, err := env.EAL.NewBurst(BurstConfig{Size: 4, Tx: []Queue{b.TxQueue(0)}, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer burst.Close()
	pool, _ := env.pools.For(-1)
	ms := allocFrames(t, pool, testFrames(6))
	for _, m := range ms[:4] {
		burst.Send(0, m)
	}
	for name, f := range map[string]func(){
		"Send": func() { burst.Send(0, ms[4]) },
		"Drop": func() {
			for _, m := range ms[:5] {
				burst.Drop(m)
			}
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s beyond Size did not panic", name)
				}
			}()
			f()
		}()
	}
	// The Drop test queued ms[:4] for freeing while Send holds them too:
	// forget those drops, send the four, free the rest by hand.
	burst.nDrop = 0
	burst.Flush()
	if st := burst.Stats(); st.Tx != 4 {
		t.Errorf("sent %d frames, want the 4 queued before the overflow", st.Tx)
	}
	FreeBulk(ms[4:])
}

// BenchmarkBurstSend measures the Go side of queueing frames (Send is
// inlined: a bounds check, a store, an increment), without DPDK calls.
func BenchmarkBurstSend(b *testing.B) {
	needDPDK(b)
	burst, err := env.EAL.NewBurst(BurstConfig{Size: 32, Tx: []Queue{{}}, Socket: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer burst.Close()
	var ms [32]*Mbuf // never sent: the count is reset below
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range ms {
			burst.Send(0, m)
		}
		burst.tx[0].n = 0
	}
}

// TestBurstAllocs proves that the worker's loop (RX burst, view each frame,
// TX burst) allocates nothing per burst.
func TestBurstAllocs(t *testing.T) {
	a, b, _ := testPorts(t)
	burst, err := env.EAL.NewBurst(BurstConfig{Size: 32, Tx: []Queue{b.TxQueue(0)}, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer burst.Close()
	rxq := a.RxQueue(0)
	var sum int
	allocs := testing.AllocsPerRun(1000, func() {
		for _, m := range burst.Cycle(rxq) {
			d := m.Data()
			sum += int(d[0]) + len(d)
			burst.Send(0, m)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per burst, want 0", allocs)
	}
	if burst.Stats().Tx == 0 || sum == 0 {
		t.Error("the loop moved no frames")
	}
}

// TestOptionalFeatures opens a port asking for things its PMD may lack (an
// MTU, promiscuous mode, RSS over two queues) and expects it to start, with
// a warning for each thing the PMD refused as unsupported.
func TestOptionalFeatures(t *testing.T) {
	e := needDPDK(t)
	cfg := portConfig("net_ring1")
	cfg.MTU = 1500
	cfg.RxQueues, cfg.TxQueues = 2, 2
	p, err := e.OpenPort(cfg, 1, env.pools)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if rx, tx := p.Queues(); rx != 2 || tx != 2 {
		t.Errorf("queues %d/%d, want 2/2", rx, tx)
	}
	logs := env.logs.String()
	var warned []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"port":"net_ring1"`) && strings.Contains(line, `"level":"warn"`) {
			warned = append(warned, line)
		}
	}
	if len(warned) == 0 {
		t.Errorf("no warning for net_ring1, whose PMD has no RSS; log:\n%s", logs)
	}
	t.Logf("warnings: %s", strings.Join(warned, "\n"))
	// A real error in an optional feature is still an error: no PMD takes
	// an MTU below the IPv4 minimum.
	bad := portConfig("net_null3")
	bad.MTU = 20
	if p, err := e.OpenPort(bad, 1, env.pools); err == nil {
		p.Close()
		t.Error("MTU 20 accepted")
	}
}

// BenchmarkForward measures the binding's io-forwarding loop on net_null
// (one cgo call per 32-frame burst; the frames are viewed, not touched) on
// a worker: pinned, registered, with a mempool cache. The EAL runs on
// ordinary pages here (--no-huge); bench/dataplane measures with hugepages,
// next to dpdk-testpmd.
func BenchmarkForward(b *testing.B) {
	pa, pb, _ := testPorts(b)
	frames := 0
	b.ReportAllocs()
	b.ResetTimer()
	w, err := env.EAL.StartWorker(env.WorkCore, func(w *Worker) error {
		burst, err := env.EAL.NewBurst(BurstConfig{Size: 32, Tx: []Queue{pb.TxQueue(0)}, Socket: -1})
		if err != nil {
			return err
		}
		defer burst.Close()
		rxq := pa.RxQueue(0)
		for i := 0; i < b.N; i++ {
			rx := burst.Cycle(rxq)
			frames += len(rx)
			for _, m := range rx {
				_ = m.Data()
				burst.Send(0, m)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Wait(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds()/1e6, "Mpps")
}

// TestTakeAll takes every mbuf of a pool whose size is no multiple of the
// chunk, and gives them all back.
func TestTakeAll(t *testing.T) {
	e := needDPDK(t)
	pool, err := e.NewPools("takeall", 1000, 0, 0).For(-1)
	if err != nil {
		t.Fatal(err)
	}
	all, done, err := pool.TakeAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != pool.Size() || pool.Avail() != 0 {
		done()
		t.Fatalf("took %d of %d mbufs, %d left", len(all), pool.Size(), pool.Avail())
	}
	done()
	if pool.Avail() != pool.Size() {
		t.Fatalf("%d of %d mbufs back after done", pool.Avail(), pool.Size())
	}
}
