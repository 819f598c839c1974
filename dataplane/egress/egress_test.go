package egress

import (
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/sched"
)

// The tests drive Ports on a fake clock in nanoseconds, with real mbufs and
// real ports.
const (
	hz = 1_000_000_000
	us = 1_000
)

// newBurst makes a Burst the way a worker using egress must.
func newBurst(t testing.TB, size int, tx dpdk.Queue, inject *dpdk.Ring) *dpdk.Burst {
	t.Helper()
	cfg := dpdk.BurstConfig{Size: size, Tx: []dpdk.Queue{tx}, Socket: -1, KeepRefused: true, CollectInject: true}
	if inject != nil {
		cfg.Inject = []*dpdk.Ring{inject}
	}
	b, err := env.EAL.NewBurst(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func testConfig(rateMbps int) Config {
	return Config{Sched: sched.DefaultConfig(), EgressRateMbps: rateMbps, TxQueues: 1, LinkMbps: 10_000, TicksPerSecond: hz}
}

func newPort(t testing.TB, b *dpdk.Burst, cfg Config) *Port[*dpdk.Burst] {
	t.Helper()
	p, err := New(b, 0, cfg, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// frames allocates n frames of length bytes, numbered from first in their
// first four bytes.
func frames(t testing.TB, n, length, first int) []*dpdk.Mbuf {
	t.Helper()
	ms := make([]*dpdk.Mbuf, n)
	if err := env.pool.AllocBulk(ms); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, length)
	for i, m := range ms {
		binary.BigEndian.PutUint32(buf, uint32(first+i))
		if err := m.CopyFrom(buf); err != nil {
			t.Fatal(err)
		}
	}
	return ms
}

func number(m *dpdk.Mbuf) int { return int(binary.BigEndian.Uint32(m.Data())) }

// receive takes up to max frames off the loopback port (all if max < 0),
// returning their numbers in order; the frames are freed.
func receive(t testing.TB, max int) []int {
	t.Helper()
	d, err := env.EAL.NewBurst(dpdk.BurstConfig{Size: 1, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var got []int
	for max < 0 || len(got) < max {
		ms := d.Cycle(env.ring.RxQueue(0))
		if len(ms) == 0 {
			break
		}
		got = append(got, number(ms[0]))
		d.Drop(ms[0])
	}
	return got
}

// fillRing fills the loopback port's TX ring until its PMD refuses frames
// and returns how many it holds.
func fillRing(t testing.TB) int {
	t.Helper()
	receive(t, -1)
	f, err := env.EAL.NewBurst(dpdk.BurstConfig{Size: 32, Tx: []dpdk.Queue{env.ring.TxQueue(0)}, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for f.Stats().TxUnsent == 0 {
		if f.Stats().Tx > 1<<16 {
			t.Fatal("net_ring never refused a frame")
		}
		f.SendBurst(0, frames(t, 32, 64, 1_000_000))
		f.Flush()
	}
	return int(f.Stats().Tx)
}

// TestShares runs backlogged classes through a shaped net_null port and
// checks the byte shares the package doc of sched promises: about 75/15/10
// with three classes, and at least the floor for the lowest class against
// Priority alone. The scheduler's shaper keeps the backlog in the class queues: the
// TX buffer never holds more than one burst.
func TestShares(t *testing.T) {
	needDPDK(t)
	for _, tc := range []struct {
		name  string
		busy  []sched.Class
		share [sched.NumClasses]float64
	}{
		{"three classes", []sched.Class{sched.Priority, sched.Normal, sched.Deprioritised}, [4]float64{0, 0.75, 0.15, 0.10}},
		// Priority's 60% cap, then Priority alone in the round robin (the
		// lowest class joins it only when every other class is empty): the
		// lowest class gets its 10% floor.
		{"against priority", []sched.Class{sched.Priority, sched.Deprioritised}, [4]float64{0, 0.90, 0, 0.10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBurst(t, 32, env.null.TxQueue(0), nil)
			p := newPort(t, b, testConfig(1000))
			const length = 1000
			depth := [sched.NumClasses]int{}
			var base Stats
			// The worker polls well within the shaper's burst (50 us),
			// as a real one does every few microseconds.
			const step, steps, warm = 10 * us, 20000, 2000
			for i := 0; i < steps; i++ {
				now := int64(i * step)
				st := p.s.Stats()
				for _, c := range tc.busy {
					depth[c] = st.Class[c].Depth
					if n := 64 - depth[c]; n > 0 {
						for _, m := range frames(t, n, length-WireOverhead, 0) {
							p.Enqueue(m, c, now)
						}
					}
				}
				p.Drain(now)
				if b.Pending(0) > b.Size() {
					t.Fatalf("TX buffer holds %d frames", b.Pending(0))
				}
				b.Flush()
				if i == warm {
					p.Publish()
					base = p.Stats()
				}
			}
			p.Publish()
			st := p.Stats()
			var total float64
			var got [sched.NumClasses]float64
			for c := range got {
				got[c] = float64(st.Class[c].SentBytes - base.Class[c].SentBytes)
				total += got[c]
			}
			elapsed := float64((steps - warm) * step)
			if rate := total * 8 / elapsed; math.Abs(rate-1) > 0.02 {
				t.Errorf("sent %.3f Gbit/s on the wire, shaped to 1", rate)
			}
			for c := range got {
				got[c] /= total
				if math.Abs(got[c]-tc.share[c]) > 0.03 {
					t.Errorf("%v: share %.3f, want %.2f", sched.Class(c), got[c], tc.share[c])
				}
			}
			// With three classes, round robin alone would give the lowest
			// 40% x 1500/7500 = 8%: the floor makes it 10%.
			if len(tc.busy) == 3 && st.FloorServed == 0 {
				t.Error("the floor never served the lowest class")
			}
			if got[sched.Deprioritised] < 0.095 {
				t.Errorf("deprioritised got %.3f, below its 10%% floor", got[sched.Deprioritised])
			}
			if st.Class[sched.Priority].DroppedPkts+st.Class[sched.Normal].DroppedPkts != 0 {
				t.Errorf("frames dropped although the test never overfills a queue: %+v", st)
			}
		})
	}
}

// TestRefusedRequeued runs a Port on the loopback port with its TX ring
// full or nearly so: refused frames go back to the head of their class
// queue (a control frame queued since overtakes them), nothing is lost or
// duplicated, and every frame arrives in its class's order.
func TestRefusedRequeued(t *testing.T) {
	needDPDK(t)
	b := newBurst(t, 32, env.ring.TxQueue(0), nil)
	p := newPort(t, b, testConfig(0))
	capacity := fillRing(t)

	// All refused: the ring is full.
	for _, m := range frames(t, 10, 64, 0) {
		p.Enqueue(m, sched.Normal, 0)
	}
	if n := p.Drain(0); n != 10 {
		t.Fatalf("Drain handed %d frames, want 10", n)
	}
	b.Flush()
	if b.Pending(0) != 10 || b.Stats().TxRefused != 10 {
		t.Fatalf("after the flush: %d pending, stats %+v; want 10 kept", b.Pending(0), b.Stats())
	}
	p.Enqueue(frames(t, 1, 64, 100)[0], sched.Control, 1) // settles first
	p.Publish()
	st := p.Stats()
	if b.Pending(0) != 0 || st.Class[sched.Normal].RequeuedPkts != 10 || st.Class[sched.Normal].Depth != 10 ||
		st.Class[sched.Normal].SentPkts != 0 {
		t.Fatalf("refused frames not requeued: pending %d, normal %+v", b.Pending(0), st.Class[sched.Normal])
	}

	// Room for 4: the control frame and three of the normal ones go, the
	// other seven are refused and requeued.
	fill := receive(t, 4)
	p.Drain(2)
	b.Flush()
	p.Publish() // settles what the flush refused
	st = p.Stats()
	if got := st.Class[sched.Normal]; got.SentPkts != 3 || got.Depth != 7 || got.RequeuedPkts != 17 || b.Pending(0) != 0 {
		t.Errorf("normal after a partial refusal: %+v, %d pending; want 3 sent, 7 queued, 10+7 requeued", got, b.Pending(0))
	}
	// Drain everything, leaving the ring empty and the queues too.
	var got []int
	for i := 0; p.Backlog() > 0 || b.Pending(0) > 0; i++ {
		if i > 100 {
			t.Fatal("the Port never emptied")
		}
		got = append(got, receive(t, -1)...)
		p.Drain(int64(4 + i))
		b.Flush()
	}
	got = append(got, receive(t, -1)...)
	ours := got[:0]
	for _, n := range got {
		if n < 1_000_000 {
			ours = append(ours, n)
		}
	}
	want := []int{100, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	if len(ours) != len(want) {
		t.Fatalf("received %v, want %v", ours, want)
	}
	for i := range want {
		if ours[i] != want[i] {
			t.Fatalf("received %v, want %v", ours, want)
		}
	}
	if len(fill)+len(got)-len(ours) != capacity {
		t.Errorf("%d filler frames came back, %d went in", len(fill)+len(got)-len(ours), capacity)
	}
}

// TestEnqueueBeforeFlush covers a worker that enqueues after Drain but
// before the Cycle: the frames handed to the buffer are taken back, and go
// out again, in order, with the next Drain.
func TestEnqueueBeforeFlush(t *testing.T) {
	needDPDK(t)
	receive(t, -1)
	b := newBurst(t, 32, env.ring.TxQueue(0), nil)
	p := newPort(t, b, testConfig(0))
	for _, m := range frames(t, 5, 64, 0) {
		p.Enqueue(m, sched.Priority, 0)
	}
	p.Drain(0)
	p.Enqueue(frames(t, 1, 64, 5)[0], sched.Priority, 0)
	if b.Pending(0) != 0 || p.Backlog() != 6 {
		t.Fatalf("after Enqueue between Drain and flush: %d pending, backlog %d; want 0 and 6", b.Pending(0), p.Backlog())
	}
	p.Drain(1)
	b.Flush()
	got := receive(t, -1)
	for i, n := range got {
		if n != i || len(got) != 6 {
			t.Fatalf("received %v, want 0 to 5", got)
		}
	}
}

// boundedPort returns a Port on a net_null Burst whose normal queue holds
// 16 frames and whose deprioritised queue holds 20, and the pool's mbufs in
// use before anything is queued.
func boundedPort(t *testing.T) (*dpdk.Burst, *Port[*dpdk.Burst], int) {
	t.Helper()
	needDPDK(t)
	b := newBurst(t, 32, env.null.TxQueue(0), nil)
	cfg := testConfig(1000)
	cfg.Sched.Normal.QueueFrames = 16
	cfg.Sched.Deprioritised.QueueFrames = 20
	return b, newPort(t, b, cfg), env.pool.InUse()
}

// checkBounded checks a boundedPort offered 15 normal and 25 deprioritised
// frames of 100 B: 15 and 20 queued, 5 dropped at the tail, counted and
// freed through b. It then drains p and checks that no mbuf leaked.
func checkBounded(t *testing.T, b *dpdk.Burst, p *Port[*dpdk.Burst], inUse int) {
	t.Helper()
	p.Publish()
	st := p.Stats()
	if n, d := st.Class[sched.Normal], st.Class[sched.Deprioritised]; n.DroppedPkts != 0 || n.Depth != 15 ||
		d.DroppedPkts != 5 || d.Depth != 20 || d.DroppedBytes != 5*(100+WireOverhead) {
		t.Fatalf("normal %+v, deprioritised %+v; want 15 queued, and 20 queued with 5 dropped", n, d)
	}
	b.Flush()
	if got := b.Stats().Dropped; got != 5 {
		t.Errorf("the Burst freed %d dropped frames, want 5", got)
	}
	for now := int64(0); p.Backlog() > 0; now += 100 * us {
		p.Drain(now)
		b.Flush()
	}
	if got := env.pool.InUse(); got != inUse {
		t.Errorf("%d mbufs in use, %d before: frames leaked", got, inUse)
	}
}

// TestQueueBoundDrops fills small class queues past their bound: the
// excess is dropped at the tail, counted per class, and freed through the
// Burst, so nothing leaks from the pool.
func TestQueueBoundDrops(t *testing.T) {
	b, p, inUse := boundedPort(t)
	for i, m := range frames(t, 30, 100, 0) {
		c := sched.Normal
		if i%2 == 1 {
			c = sched.Deprioritised
		}
		if ok := p.Enqueue(m, c, 0); ok != (i < 32) && i/2 < 15 {
			t.Fatalf("frame %d refused early", i)
		}
	}
	for _, m := range frames(t, 10, 100, 30) {
		p.Enqueue(m, sched.Deprioritised, 0)
	}
	checkBounded(t, b, p, inUse)
}

// TestControlFromInject checks that frames of the inject ring go out as
// class Control, ahead of a backlog, never dropped: what the Control queue
// cannot take waits.
func TestControlFromInject(t *testing.T) {
	needDPDK(t)
	receive(t, -1)
	inject, err := env.EAL.NewRing("egress_inject", 64, -1, dpdk.RingSPSC)
	if err != nil {
		t.Fatal(err)
	}
	b := newBurst(t, 32, env.ring.TxQueue(0), inject)
	cfg := testConfig(0)
	cfg.Sched.Control.QueueFrames = 16
	p := newPort(t, b, cfg)
	for _, m := range frames(t, 40, 64, 0) {
		p.Enqueue(m, sched.Normal, 0)
	}
	if n := inject.EnqueueBurst(frames(t, 20, 64, 100)); n != 20 {
		t.Fatalf("inject ring took %d", n)
	}
	b.Flush() // collects the 20
	p.Drain(1)
	b.Flush()
	p.Publish()
	st := p.Stats()
	if st.Injected != 16 || st.Class[sched.Control].DroppedPkts != 0 || st.Class[sched.Control].SentPkts != 16 {
		t.Fatalf("after one Drain: injected %d, control %+v; want 16 taken and sent, none dropped", st.Injected, st.Class[sched.Control])
	}
	for i := int64(2); p.Backlog() > 0 || i < 4; i++ {
		p.Drain(i)
		b.Flush()
	}
	got := receive(t, -1)
	if len(got) != 60 {
		t.Fatalf("received %d frames, want 60", len(got))
	}
	for i := 0; i < 16; i++ {
		if got[i] != 100+i {
			t.Fatalf("frame %d is %d: the control frames did not go first (%v)", i, got[i], got[:20])
		}
	}
	p.Publish()
	if st := p.Stats(); st.Injected != 20 || st.Class[sched.Control].SentPkts != 20 {
		t.Errorf("injected %d, control sent %d; want 20 and 20", st.Injected, st.Class[sched.Control].SentPkts)
	}
}

// TestClose frees what is still queued, counted as dropped.
func TestClose(t *testing.T) {
	needDPDK(t)
	b := newBurst(t, 32, env.null.TxQueue(0), nil)
	p, err := New(b, 0, testConfig(1), 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	inUse := env.pool.InUse()
	for _, m := range frames(t, 100, 1000, 0) {
		p.Enqueue(m, sched.Normal, 0)
	}
	p.Drain(0)
	p.Close()
	b.Flush()
	st := p.Stats()
	if got := env.pool.InUse(); got != inUse {
		t.Errorf("%d mbufs in use after Close, %d before", got, inUse)
	}
	if c := st.Class[sched.Normal]; c.SentPkts+c.DroppedPkts != 100 || c.Depth != 0 {
		t.Errorf("after Close: %+v", c)
	}
}

// TestNoAllocs proves the worker's loop through a Port allocates nothing:
// receive a burst, enqueue every frame, drain, on the real TSC.
func TestNoAllocs(t *testing.T) {
	needDPDK(t)
	b := newBurst(t, 32, env.null.TxQueue(0), nil)
	cfg := testConfig(0)
	cfg.TicksPerSecond = env.EAL.TSCHz()
	p := newPort(t, b, cfg)
	rxq := env.null.RxQueue(0)
	classes := [...]sched.Class{sched.Priority, sched.Normal, sched.Deprioritised, sched.Normal}
	allocs := testing.AllocsPerRun(2000, func() {
		ms := b.Cycle(rxq)
		now := int64(b.TSC())
		for i, m := range ms {
			p.Enqueue(m, classes[i&3], now)
		}
		p.Drain(now)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per burst, want 0", allocs)
	}
	if b.Stats().Tx == 0 {
		t.Error("nothing was sent")
	}
}

// TestStatsSnapshot reads the counters while the worker publishes them,
// and checks each snapshot is consistent (Enqueued = Sent + Depth, counts
// never going back). Run it with -race as well.
func TestStatsSnapshot(t *testing.T) {
	needDPDK(t)
	b := newBurst(t, 32, env.null.TxQueue(0), nil)
	cfg := testConfig(0)
	cfg.PublishMicros = 1
	p := newPort(t, b, cfg)
	rxq := env.null.RxQueue(0)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last uint64
		for !stop.Load() {
			st := p.Stats()
			var sent uint64
			for c, cs := range st.Class {
				if cs.EnqueuedPkts != cs.SentPkts+uint64(cs.Depth) {
					bad.Store(errors.New(sched.Class(c).String() + ": enqueued != sent + depth in a snapshot"))
				}
				sent += cs.SentPkts
			}
			if sent < last {
				bad.Store(errors.New("sent went back"))
			}
			last = sent
		}
	}()
	for i := 0; i < 20000; i++ {
		now := int64(i) * 10 * us
		for j, m := range b.Cycle(rxq) {
			p.Enqueue(m, sched.Class(1+j%3), now)
		}
		p.Drain(now)
	}
	stop.Store(true)
	wg.Wait()
	if err, _ := bad.Load().(error); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejects(t *testing.T) {
	needDPDK(t)
	b := newBurst(t, 32, env.null.TxQueue(0), nil)
	for name, mod := range map[string]func(*Config){
		"no TX queues":   func(c *Config) { c.TxQueues = 0 },
		"negative rate":  func(c *Config) { c.EgressRateMbps = -1 },
		"bad sched":      func(c *Config) { c.Sched.FloorPercent = 90 },
		"no clock":       func(c *Config) { c.TicksPerSecond = 0 },
		"negative link":  func(c *Config) { c.LinkMbps = -5 },
		"rate too small": func(c *Config) { c.EgressRateMbps, c.TxQueues = 1, 1000 },
	} {
		cfg := testConfig(100)
		mod(&cfg)
		if _, err := New(b, 0, cfg, 0, zerolog.Nop()); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", name, err)
		}
	}
	if _, err := New[*dpdk.Burst](nil, 0, testConfig(0), 0, zerolog.Nop()); !errors.Is(err, ErrConfig) {
		t.Errorf("New without a Burst = %v", err)
	}
	plain, err := env.EAL.NewBurst(dpdk.BurstConfig{Size: 32, Tx: []dpdk.Queue{env.null.TxQueue(0)}, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := New(plain, 0, testConfig(0), 0, zerolog.Nop()); !errors.Is(err, ErrConfig) {
		t.Errorf("New on a Burst without KeepRefused and CollectInject = %v", err)
	}
}

// TestEnqueueBurst queues bursts past the class queues' bounds with
// EnqueueBurst: what it reports queued is what Enqueue would have, the
// refused frames are dropped and freed through the Burst, the queued ones
// leave in order, and nothing leaks or allocates.
func TestEnqueueBurst(t *testing.T) {
	b, p, inUse := boundedPort(t)
	ms := frames(t, 30, 100, 0)
	cs := make([]sched.Class, len(ms))
	for i := range cs {
		cs[i] = sched.Normal
		if i%2 == 1 {
			cs[i] = sched.Deprioritised
		}
	}
	queued := make([]bool, len(ms))
	if n := p.EnqueueBurst(ms, cs, 0, queued); n != 30 {
		t.Fatalf("queued %d of 30 frames, want all", n)
	}
	ms = frames(t, 10, 100, 30)
	for i := range ms {
		cs[i] = sched.Deprioritised
	}
	if n := p.EnqueueBurst(ms, cs[:10], 0, queued); n != 5 {
		t.Fatalf("queued %d of 10 frames past the bound, want 5", n)
	}
	for i, q := range queued[:10] {
		if q != (i < 5) {
			t.Fatalf("frame %d queued=%v", 30+i, q)
		}
	}
	checkBounded(t, b, p, inUse)
	one := frames(t, 1, 64, 0)
	if a := testing.AllocsPerRun(50, func() {
		p.EnqueueBurst(one, cs[:1], 0, queued)
		p.Drain(0)
		b.Flush()
		if err := env.pool.AllocBulk(one); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("%v allocations per burst", a)
	}
	dpdk.FreeBulk(one)
}
