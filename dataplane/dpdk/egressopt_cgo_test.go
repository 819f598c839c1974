//go:build linux && cgo

package dpdk

import (
	"encoding/binary"
	"testing"
	"time"
)

// The opt-ins an egress scheduler needs (KeepRefused, Unsend,
// CollectInject, TSC, mbuf handles), on the net_ring loopback port, whose
// TX ring fills up when nobody receives from it: a PMD that really refuses.

// seqFrames allocates n 64-byte frames numbered from first.
func seqFrames(t testing.TB, pool *Mempool, first, n int) []*Mbuf {
	t.Helper()
	ms := make([]*Mbuf, n)
	if err := pool.AllocBulk(ms); err != nil {
		t.Fatal(err)
	}
	var f [64]byte
	for i, m := range ms {
		binary.BigEndian.PutUint32(f[:], uint32(first+i))
		if err := m.CopyFrom(f[:]); err != nil {
			t.Fatal(err)
		}
	}
	return ms
}

func seqOf(m *Mbuf) int { return int(binary.BigEndian.Uint32(m.Data())) }

// drainRing receives everything waiting on the loopback port and returns
// the frames' numbers in arrival order, freeing the frames.
func drainRing(t testing.TB, r *Port, max int) []int {
	t.Helper()
	d, err := env.EAL.NewBurst(BurstConfig{Size: 32, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var got []int
	for len(got) < max {
		ms := d.Cycle(r.RxQueue(0))
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			got = append(got, seqOf(m))
			d.Drop(m)
		}
	}
	return got
}

// TestKeepRefused fills the net_ring port's TX ring until the PMD refuses
// frames, and checks that a KeepRefused burst keeps them at the head of the
// buffer in order, sends them first once the ring has room, and that
// Unsend hands frames back; every frame arrives once, in order.
func TestKeepRefused(t *testing.T) {
	_, _, r := testPorts(t)
	drainRing(t, r, 1<<20) // whatever an earlier test left
	pool, _ := env.pools.For(r.Socket())
	const size = 32
	b, err := env.EAL.NewBurst(BurstConfig{Size: size, Tx: []Queue{r.TxQueue(0)}, Socket: -1, KeepRefused: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	next := 0 // number of the next frame to queue
	for b.Pending(0) == 0 {
		if next > 1<<16 {
			t.Fatalf("net_ring took %d frames without refusing one", next)
		}
		b.SendBurst(0, seqFrames(t, pool, next, size))
		next += size
		b.Flush()
	}
	accepted := int(b.Stats().Tx)
	kept := b.Pending(0)
	if accepted+kept != next {
		t.Fatalf("%d accepted + %d kept != %d queued", accepted, kept, next)
	}
	// Top the buffer up: the ring is full, so all of it is refused and
	// kept, the older refused frames still first.
	room := size - b.Pending(0)
	b.SendBurst(0, seqFrames(t, pool, next, room))
	next += room
	b.Flush()
	st := b.Stats()
	if b.Pending(0) != size || st.TxRefused != uint64(kept+size) || st.TxUnsent != 0 || int(st.Tx) != accepted {
		t.Fatalf("after a refused flush: pending %d, stats %+v; want %d pending, %d refusals, none freed",
			b.Pending(0), st, size, kept+size)
	}
	for i, m := range b.tx[0].pkts[:size] {
		if seqOf(m) != accepted+i {
			t.Fatalf("kept frame %d is number %d, want %d", i, seqOf(m), accepted+i)
		}
	}
	// Take the last two back, as a scheduler requeueing them would.
	b.Unsend(0, 2)
	if b.Pending(0) != size-2 {
		t.Fatalf("pending %d after Unsend(2), want %d", b.Pending(0), size-2)
	}
	FreeBulk(b.tx[0].pkts[size-2 : size])
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Unsend beyond Pending did not panic")
			}
		}()
		b.Unsend(0, size)
	}()

	// Make room, retry: the kept frames go out, first, in order.
	got := drainRing(t, r, 64)
	b.Flush()
	if b.Pending(0) != 0 {
		t.Fatalf("%d frames still kept after the ring had room", b.Pending(0))
	}
	got = append(got, drainRing(t, r, 1<<20)...)
	if len(got) != next-2 {
		t.Fatalf("%d frames arrived, want %d", len(got), next-2)
	}
	for i, s := range got {
		if s != i {
			t.Fatalf("frame %d arrived as number %d: order or loss", i, s)
		}
	}
}

// TestKeepRefusedClose checks that Close frees frames still kept, counting
// them as unsent, so nothing leaks from the pool.
func TestKeepRefusedClose(t *testing.T) {
	_, _, r := testPorts(t)
	drainRing(t, r, 1<<20)
	pool, _ := env.pools.For(r.Socket())
	inUse := pool.InUse()
	b, err := env.EAL.NewBurst(BurstConfig{Size: 32, Tx: []Queue{r.TxQueue(0)}, Socket: -1, KeepRefused: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; b.Pending(0) == 0 && i < 1<<11; i++ {
		b.SendBurst(0, seqFrames(t, pool, 0, 32))
		b.Flush()
	}
	kept := b.Pending(0)
	if kept == 0 {
		t.Fatal("net_ring never refused a frame")
	}
	b.Close()
	if st := b.Stats(); st.TxUnsent != uint64(kept) {
		t.Errorf("Close counted %d unsent, want the %d kept", st.TxUnsent, kept)
	}
	drainRing(t, r, 1<<20)
	if got := pool.InUse(); got != inUse {
		t.Errorf("pool has %d mbufs in use after Close and drain, want %d", got, inUse)
	}
}

// TestCollectInject checks that a CollectInject burst hands inject frames
// to the worker instead of sending them, in order, partly if asked, and
// reads the ring again only once all were taken.
func TestCollectInject(t *testing.T) {
	_, nb, _ := testPorts(t)
	pool, _ := env.pools.For(-1)
	inject, err := env.EAL.NewRing("test_collect", 64, -1, RingSPSC)
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.EAL.NewBurst(BurstConfig{Size: 8, Tx: []Queue{nb.TxQueue(0)}, Inject: []*Ring{inject},
		Socket: -1, CollectInject: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := b.TakeInjected(0, 8); got != nil {
		t.Fatalf("took %d frames before any flush", len(got))
	}
	first := seqFrames(t, pool, 0, 5)
	inject.EnqueueBurst(first)
	before, _ := nb.Stats()
	b.Flush()
	if st := b.Stats(); st.Injected != 5 || st.Tx != 0 || inject.Count() != 0 {
		t.Fatalf("after a flush: stats %+v, ring holds %d; want 5 collected, none sent", st, inject.Count())
	}
	var taken []*Mbuf
	taken = append(taken, b.TakeInjected(0, 2)...)
	inject.EnqueueBurst(seqFrames(t, pool, 5, 3))
	b.Flush()
	if inject.Count() != 3 {
		t.Fatalf("the ring was read (%d left of 3) while collected frames were still untaken", inject.Count())
	}
	taken = append(taken, b.TakeInjected(0, 8)...)
	if b.TakeInjected(0, 8) != nil {
		t.Fatal("TakeInjected returned frames twice")
	}
	b.Flush()
	taken = append(taken, b.TakeInjected(0, 8)...)
	if len(taken) != 8 {
		t.Fatalf("took %d frames, want 8", len(taken))
	}
	for i, m := range taken {
		if seqOf(m) != i || (i < 5 && m != first[i]) {
			t.Fatalf("taken frame %d is number %d", i, seqOf(m))
		}
	}
	if after, _ := nb.Stats(); after.TxPackets != before.TxPackets {
		t.Errorf("the port sent %d collected frames", after.TxPackets-before.TxPackets)
	}
	// What the worker takes it may send itself.
	b.SendBurst(0, taken)
	b.Flush()
	if st := b.Stats(); st.Tx != 8 {
		t.Errorf("sent %d of the 8 taken frames", st.Tx)
	}
	// Frames collected and never taken are freed by Close, and only those.
	inUse := pool.InUse()
	inject.EnqueueBurst(seqFrames(t, pool, 0, 4))
	b.Flush()
	FreeBulk(b.TakeInjected(0, 1))
	b.Close()
	if got := pool.InUse(); got != inUse {
		t.Errorf("%d mbufs in use after Close, want %d: collected frames leaked", got, inUse)
	}
}

// TestTSCAndHandles checks the burst clock and the handle round trip.
func TestTSCAndHandles(t *testing.T) {
	a, _, _ := testPorts(t)
	hz := env.EAL.TSCHz()
	if hz < 1e8 {
		t.Fatalf("TSC at %d Hz", hz)
	}
	b, err := env.EAL.NewBurst(BurstConfig{Size: 4, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if keep, collect := b.Opts(); keep || collect {
		t.Errorf("a default Burst reports KeepRefused %v, CollectInject %v", keep, collect)
	}
	if b.TSC() != 0 || b.Flushes() != 0 || b.Size() != 4 {
		t.Fatalf("TSC %d, flushes %d, size %d before the first cycle", b.TSC(), b.Flushes(), b.Size())
	}
	ms := b.Cycle(a.RxQueue(0))
	t0, w0 := b.TSC(), time.Now()
	for _, m := range ms {
		if MbufAt(m.Handle()) != m {
			t.Fatalf("MbufAt(%#x) = %p, want %p", m.Handle(), MbufAt(m.Handle()), m)
		}
		b.Drop(m)
	}
	time.Sleep(20 * time.Millisecond)
	b.Flush()
	t1, w1 := b.TSC(), time.Now()
	if b.Flushes() != 2 {
		t.Errorf("%d flushes counted, want 2", b.Flushes())
	}
	tsc := time.Duration(float64(t1-t0) / float64(hz) * 1e9)
	if wall := w1.Sub(w0); tsc < wall/2 || tsc > wall*2 {
		t.Errorf("the TSC measured %v where the wall clock measured %v", tsc, wall)
	}
}
