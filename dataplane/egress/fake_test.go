package egress

import (
	"encoding/binary"
	"testing"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/bursttest"
	"github.com/poolrelay/poolrelay/sched"
)

// The tests in this file run the Port on the in-memory packet I/O
// (dpdk/bursttest): without DPDK, cgo or root, and with the fake's checks
// that every mbuf is handed on exactly once. The tests beside them on
// net_ring and net_null cover the same paths on DPDK.

// newFake returns a fake Burst of 32 with one TX buffer, made as a worker
// using egress must make its Burst, and a Port on it.
func newFake(t testing.TB, cfg Config) (*bursttest.Burst, *Port[*bursttest.Burst]) {
	t.Helper()
	b, err := bursttest.New(bursttest.Config{Size: 32, Mbufs: 256, KeepRefused: true, CollectInject: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(b, 0, cfg, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return b, p
}

// fakeFrames receives n frames of length bytes on b, numbered from first
// in their first four bytes (a Cycle: it flushes first).
func fakeFrames(b *bursttest.Burst, n, length, first int) []*dpdk.Mbuf {
	fs := make([][]byte, n)
	for i := range fs {
		fs[i] = make([]byte, length)
		binary.BigEndian.PutUint32(fs[i], uint32(first+i))
	}
	return b.Cycle(fs...)
}

// normal is n frames' classes, all Normal.
func normal(n int) []sched.Class {
	cs := make([]sched.Class, n)
	for i := range cs {
		cs[i] = sched.Normal
	}
	return cs
}

// sentNumbers returns the numbers of the frames the last flush sent.
func sentNumbers(b *bursttest.Burst) []int {
	var got []int
	for _, m := range b.Sent(0) {
		got = append(got, number(m))
	}
	return got
}

// TestFakeRefusedRequeued is TestRefusedRequeued on the fake: the PMD
// refuses everything, then takes four frames a flush. What it refuses comes
// back to the class queues, ahead of what was queued since, and every
// frame goes out once, in order.
func TestFakeRefusedRequeued(t *testing.T) {
	b, p := newFake(t, testConfig(0))
	b.SetTxRoom(0, 0)
	p.EnqueueBurst(fakeFrames(b, 10, 64, 0), normal(10), 0, make([]bool, 10))
	if n := p.Drain(0); n != 10 {
		t.Fatalf("Drain handed %d frames, want 10", n)
	}
	ctl := fakeFrames(b, 1, 64, 100) // the Cycle's flush: all 10 refused and kept
	if b.Pending(0) != 10 || b.Stats().TxRefused != 10 {
		t.Fatalf("after the flush: %d pending, stats %+v; want 10 kept", b.Pending(0), b.Stats())
	}
	p.Enqueue(ctl[0], sched.Control, 1) // settles first
	p.Publish()
	st := p.Stats()
	if b.Pending(0) != 0 || st.Class[sched.Normal].RequeuedPkts != 10 || st.Class[sched.Normal].Depth != 10 {
		t.Fatalf("refused frames not requeued: pending %d, normal %+v", b.Pending(0), st.Class[sched.Normal])
	}
	b.SetTxRoom(0, 4)
	var got []int
	for i := int64(2); p.Backlog() > 0 || b.Pending(0) > 0; i++ {
		if i > 100 {
			t.Fatal("the Port never emptied")
		}
		p.Drain(i)
		b.Flush()
		got = append(got, sentNumbers(b)...)
	}
	want := []int{100, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	if len(got) != len(want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sent %v, want %v", got, want)
		}
	}
	p.Publish()
	if c := p.Stats().Class[sched.Normal]; c.SentPkts != 10 || c.Depth != 0 || c.RequeuedPkts != 10+7+3 {
		t.Errorf("normal class at the end: %+v; want 10 sent, 10+7+3 requeued", c)
	}
	if n := b.InUse(); n != 0 {
		t.Errorf("%d mbufs still held", n)
	}
}

// TestFakeEnqueueBeforeFlush is TestEnqueueBeforeFlush on the fake.
func TestFakeEnqueueBeforeFlush(t *testing.T) {
	b, p := newFake(t, testConfig(0))
	ms := fakeFrames(b, 6, 64, 0)
	for _, m := range ms[:5] {
		p.Enqueue(m, sched.Priority, 0)
	}
	p.Drain(0)
	p.Enqueue(ms[5], sched.Priority, 0)
	if b.Pending(0) != 0 || p.Backlog() != 6 {
		t.Fatalf("after Enqueue between Drain and flush: %d pending, backlog %d; want 0 and 6", b.Pending(0), p.Backlog())
	}
	p.Drain(1)
	b.Flush()
	got := sentNumbers(b)
	for i, n := range got {
		if n != i || len(got) != 6 {
			t.Fatalf("sent %v, want 0 to 5", got)
		}
	}
}

// TestFakeQueueBound: a class queue's excess goes to the Burst's drop
// array in one DropBurst and is freed by the flush.
func TestFakeQueueBound(t *testing.T) {
	cfg := testConfig(0)
	cfg.Sched.Normal.QueueFrames = 16
	b, p := newFake(t, cfg)
	queued := make([]bool, 32)
	if n := p.EnqueueBurst(fakeFrames(b, 32, 64, 0), normal(32), 0, queued); n != 16 {
		t.Fatalf("EnqueueBurst queued %d, want 16", n)
	}
	for i, ok := range queued {
		if ok != (i < 16) {
			t.Fatalf("queued %v, want the first 16", queued)
		}
	}
	b.Flush()
	if st := b.Stats(); st.Dropped != 16 {
		t.Errorf("the flush freed %d dropped frames, want 16", st.Dropped)
	}
	if n, q := b.InUse(), p.Backlog(); n != 16 || q != 16 {
		t.Errorf("%d mbufs held, %d queued; want 16 and 16", n, q)
	}
	p.Close()
	if n := b.InUse(); n != 0 {
		t.Errorf("%d mbufs held after Close", n)
	}
}

// TestFakeControlFromInject is TestControlFromInject on the fake: the
// control core's frames are collected by a flush, taken into class
// Control up to its room, and go out ahead of the data frames.
func TestFakeControlFromInject(t *testing.T) {
	cfg := testConfig(0)
	cfg.Sched.Control.QueueFrames = 16
	b, p := newFake(t, cfg)
	for i := range 20 {
		f := make([]byte, 64)
		binary.BigEndian.PutUint32(f, uint32(100+i))
		b.Inject(0, f)
	}
	ms := fakeFrames(b, 32, 64, 0) // its flush collects the 20
	p.EnqueueBurst(ms, normal(32), 0, make([]bool, 32))
	var got []int
	for i := int64(1); p.Backlog() > 0 || i < 4; i++ {
		p.Drain(i)
		b.Flush()
		got = append(got, sentNumbers(b)...)
	}
	if len(got) != 52 {
		t.Fatalf("sent %d frames, want 52", len(got))
	}
	for i := range 16 {
		if got[i] != 100+i {
			t.Fatalf("frame %d is %d: the control frames did not go first (%v)", i, got[i], got[:20])
		}
	}
	p.Publish()
	if st := p.Stats(); st.Injected != 20 || st.Class[sched.Control].SentPkts != 20 {
		t.Errorf("injected %d, control sent %d; want 20 and 20", st.Injected, st.Class[sched.Control].SentPkts)
	}
}

// TestFakeClose: Close frees what is still queued through the Burst
// (FreeBulk), counted as dropped.
func TestFakeClose(t *testing.T) {
	b, p := newFake(t, testConfig(1))
	for range 4 {
		p.EnqueueBurst(fakeFrames(b, 25, 1000, 0), normal(25), 0, make([]bool, 25))
	}
	p.Drain(0)
	p.Close()
	b.Flush()
	if n := b.InUse(); n != 0 {
		t.Errorf("%d mbufs held after Close", n)
	}
	if c := p.Stats().Class[sched.Normal]; c.SentPkts+c.DroppedPkts != 100 || c.Depth != 0 {
		t.Errorf("after Close: %+v", c)
	}
}

// TestFakeNoAllocs: a burst through a Port on the fake allocates nothing.
func TestFakeNoAllocs(t *testing.T) {
	b, p := newFake(t, testConfig(0))
	fs := make([][]byte, 32)
	for i := range fs {
		fs[i] = make([]byte, 128)
	}
	classes := make([]sched.Class, 32)
	for i := range classes {
		classes[i] = sched.Class(1 + i%3)
	}
	queued := make([]bool, 32)
	now := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		ms := b.Cycle(fs...)
		p.EnqueueBurst(ms, classes, now, queued)
		p.Drain(now)
		now += 1000
	})
	if allocs != 0 {
		t.Errorf("%v allocations per burst, want 0", allocs)
	}
	if b.Stats().Tx == 0 {
		t.Error("nothing was sent")
	}
}
