package sched

import (
	"errors"
	"math"
	"testing"
)

// The tests run on fake time in nanoseconds.
const (
	hz   = 1_000_000_000
	gbps = 125_000_000 // 1 Gbit/s in bytes/s
	us   = 1_000
	ms   = 1_000_000
)

func newSched(t testing.TB, cfg Config, shape uint64) *Scheduler {
	t.Helper()
	s, err := New(cfg, Egress{TicksPerSecond: hz, LineRate: 10 * gbps, ShapeRate: shape, MaxBurst: 32}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sizes is a deterministic stream of frame lengths from 64 to 1500 bytes,
// so byte shares are tested with mixed sizes rather than one.
type sizes uint64

func (z *sizes) next() uint32 {
	*z = *z*6364136223846793005 + 1442695040888963407
	return 64 + uint32(uint64(*z)>>33)%1437
}

// overload keeps every class in busy backlogged, dequeues every step for
// dur, and returns each class's share of the bytes sent after warm.
func overload(t *testing.T, s *Scheduler, busy []Class, step, dur, warm int64) [NumClasses]float64 {
	t.Helper()
	var z sizes = 1
	out := make([]Handle, 32)
	var base Stats
	for now := int64(0); now < dur; now += step {
		for _, c := range busy {
			for s.q[c].n() < 64 {
				s.Enqueue(now, c, 1, z.next())
			}
		}
		s.Dequeue(now, out)
		if now < warm && now+step >= warm {
			base = s.Stats()
		}
	}
	share, _ := sentShares(base, s.Stats())
	return share
}

// sentShares returns each class's share of the bytes sent between the
// stats base and st, and their total.
func sentShares(base, st Stats) (share [NumClasses]float64, total uint64) {
	for c := range st.Class {
		total += st.Class[c].SentBytes - base.Class[c].SentBytes
	}
	for c := range st.Class {
		share[c] = float64(st.Class[c].SentBytes-base.Class[c].SentBytes) / float64(total)
	}
	return share, total
}

func TestSharesUnderOverload(t *testing.T) {
	withQuantum := func(f func(*Config)) Config { c := DefaultConfig(); f(&c); return c }
	cases := []struct {
		name string
		cfg  Config
		busy []Class
		want [NumClasses]float64
	}{
		// Priority: 60% cap + half of what is left after the 10% floor;
		// see the arithmetic in the package doc.
		{"defaults P N D", DefaultConfig(), []Class{Priority, Normal, Deprioritised}, [4]float64{0, .75, .15, .10}},
		// Deprioritised stays out of the round robin while Normal has
		// frames: it gets its floor.
		{"defaults N D", DefaultConfig(), []Class{Normal, Deprioritised}, [4]float64{0, 0, .90, .10}},
		// 60% strict, then 3000:3000 of the rest.
		{"defaults P N", DefaultConfig(), []Class{Priority, Normal}, [4]float64{0, .80, .20, 0}},
		// C 5% + P 60% strict, D 10% floor; the remaining 25% by quanta
		// 3000:3000:3000 among C, P and N (D waits for them to be empty).
		{"defaults C P N D", DefaultConfig(), []Class{Control, Priority, Normal, Deprioritised},
			[4]float64{.05 + .25/3, .60 + .25/3, .25 / 3, .10}},
		{"weighted quanta P N", withQuantum(func(c *Config) { c.Normal.QuantumBytes = 9000 }),
			[]Class{Priority, Normal}, [4]float64{0, .70, .30, 0}},
		{"floor 25 N D", withQuantum(func(c *Config) { c.FloorPercent = 25 }),
			[]Class{Normal, Deprioritised}, [4]float64{0, 0, .75, .25}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSched(t, tc.cfg, gbps)
			got := overload(t, s, tc.busy, 10*us, 1000*ms, 100*ms)
			for c := range got {
				if math.Abs(got[c]-tc.want[c]) > 0.01 {
					t.Errorf("%v share %.4f, want %.4f (all %.4f)", Class(c), got[c], tc.want[c], got)
				}
			}
		})
	}
}

// Without a shaper the NIC sets the pace: this one takes what its line rate
// earned since the last burst and refuses the rest, which goes back through
// Requeue. The caps are shares of that line rate, and the shares come out as
// they do behind the shaper.
func TestSharesUnshapedBehindNIC(t *testing.T) {
	s, err := New(DefaultConfig(), Egress{TicksPerSecond: hz, LineRate: gbps, MaxBurst: 32}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var z sizes = 13
	out := make([]Handle, 32)
	var budget int64 // bytes the NIC can take, at most one burst ahead
	var base Stats
	const step, dur, warm = 20 * us, 1000 * ms, 100 * ms
	for now := int64(0); now < dur; now += step {
		for _, c := range []Class{Priority, Normal, Deprioritised} {
			for s.q[c].n() < 64 {
				s.Enqueue(now, c, Handle(c), z.next())
			}
		}
		budget = min(budget+step*gbps/hz, 32*1500)
		n := s.Dequeue(now, out)
		sent := 0
		for sent < n && budget > 0 {
			budget -= int64(s.stage[sent].e.len)
			sent++
		}
		s.Requeue(sent)
		if now == warm {
			base = s.Stats()
		}
	}
	st := s.Stats()
	want := [NumClasses]float64{0, .75, .15, .10}
	got, _ := sentShares(base, st)
	for c := range got {
		if math.Abs(got[c]-want[c]) > 0.01 {
			t.Errorf("%v share %.4f behind the NIC, want %.4f", Class(c), got[c], want[c])
		}
	}
}

// The floor holds where round robin alone would give the lowest class far
// less: a 64-byte quantum against 3000-byte ones, under an 85% cap.
func TestFloorShare(t *testing.T) {
	for _, floor := range []int{5, 10} {
		cfg := DefaultConfig()
		cfg.FloorPercent = floor
		cfg.Priority.RatePercent = 85
		cfg.Control.RatePercent = 1
		cfg.Deprioritised.QuantumBytes = 64
		s := newSched(t, cfg, gbps)
		got := overload(t, s, []Class{Priority, Normal, Deprioritised}, 10*us, 1000*ms, 100*ms)
		f := float64(floor) / 100
		if d := got[Deprioritised]; d < f-0.002 || d > f+0.01 {
			t.Errorf("floor %d%%: deprioritised share %.4f", floor, d)
		}
		if s.stats.FloorServed == 0 {
			t.Errorf("floor %d%%: the floor never served a frame", floor)
		}
	}
}

// With the floor off and a quantum that makes round robin visit the lowest
// class only every few milliseconds, the maximum wait alone bounds the gap
// between its frames.
func TestMaxWait(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FloorPercent = 0
	cfg.Deprioritised.QuantumBytes = 64
	cfg.Normal.QuantumBytes = 1 << 20
	cfg.Priority.QuantumBytes = 1 << 20
	s := newSched(t, cfg, gbps)
	out := make([]Handle, 32)
	const step = 5 * us
	var lastLow, worst int64
	var lowBytes, allBytes uint64
	for now := int64(0); now < 500*ms; now += step {
		for _, c := range []Class{Priority, Normal, Deprioritised} {
			for s.q[c].n() < 64 {
				s.Enqueue(now, c, Handle(c), 1500)
			}
		}
		n := s.Dequeue(now, out)
		for _, h := range out[:n] {
			allBytes += 1500
			if Class(h) == Deprioritised {
				lowBytes += 1500
				worst = max(worst, now-lastLow)
				lastLow = now
			}
		}
	}
	// The guard fires at the first Dequeue at or after max_wait, and the
	// shaper may be one frame in debt then.
	limit := int64(cfg.MaxWaitMicros)*us + step + 1500*hz/gbps
	if worst > limit {
		t.Errorf("lowest class waited %d ns, max wait %d ns", worst, limit)
	}
	if s.stats.MaxWaitServed == 0 {
		t.Error("the max-wait guard never fired: the test does not exercise it")
	}
	if share := float64(lowBytes) / float64(allBytes); share > 0.02 {
		t.Errorf("the guard took %.3f of the link, more than its one frame per max wait", share)
	}
}

// On a link too slow to send a frame per max wait within the guard's share,
// the guard stretches its wait instead of taking the whole link.
func TestMaxWaitSlowLink(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Deprioritised.QuantumBytes = 64
	s := newSched(t, cfg, 125_000) // 1 Mbit/s: a 1500-byte frame takes 12 ms
	got := overload(t, s, []Class{Priority, Normal, Deprioritised}, 100*us, 60_000*ms, 10_000*ms)
	if d := got[Deprioritised]; d < 0.09 || d > 0.13 {
		t.Errorf("deprioritised share %.4f on a slow link, want about the 10%% floor", d)
	}
}

func TestQueueBoundsAndDrops(t *testing.T) {
	cfg := DefaultConfig()
	s := newSched(t, cfg, 0)
	limits := [NumClasses]int{cfg.Control.QueueFrames, cfg.Priority.QueueFrames, cfg.Normal.QueueFrames, cfg.Deprioritised.QueueFrames}
	extra := [NumClasses]int{3, 5, 7, 11}
	for c := Class(0); c < NumClasses; c++ {
		for i := 0; i < limits[c]+extra[c]; i++ {
			ok := s.Enqueue(0, c, Handle(i), 100+uint32(c))
			if want := i < limits[c]; ok != want {
				t.Fatalf("%v frame %d: Enqueue = %v, want %v", c, i, ok, want)
			}
		}
	}
	st := s.Stats()
	for c := Class(0); c < NumClasses; c++ {
		if s.Room(c) != 0 {
			t.Errorf("%v: Room %d on a full queue", c, s.Room(c))
		}
	}
	for c, cs := range st.Class {
		l := uint64(100 + c)
		if cs.Depth != limits[c] || cs.EnqueuedPkts != uint64(limits[c]) || cs.DroppedPkts != uint64(extra[c]) ||
			cs.DroppedBytes != uint64(extra[c])*l || cs.DepthBytes != uint64(limits[c])*l {
			t.Errorf("%v: %+v, want depth %d, dropped %d", Class(c), cs, limits[c], extra[c])
		}
	}
	// Draining one frame makes room for exactly one.
	out := make([]Handle, 1)
	if s.Dequeue(1, out) != 1 {
		t.Fatal("Dequeue of a full scheduler returned nothing")
	}
	if s.Room(Control) != 1 || s.Room(Priority) != 0 {
		t.Errorf("Room after one control departure: control %d, priority %d; want 1 and 0", s.Room(Control), s.Room(Priority))
	}
	if !s.Enqueue(1, Control, 99, 64) || s.Enqueue(1, Control, 100, 64) {
		t.Error("after one departure the control queue should take one frame, then refuse")
	}
}

func TestRequeueKeepsOrder(t *testing.T) {
	s := newSched(t, DefaultConfig(), 0)
	for i := 1; i <= 100; i++ {
		s.Enqueue(0, Normal, Handle(i), 500)
	}
	out := make([]Handle, 32)
	if n := s.Dequeue(0, out); n != 32 || out[0] != 1 || out[31] != 32 {
		t.Fatalf("first Dequeue: %d frames %v", n, out)
	}
	s.Requeue(10) // tx_burst took 1..10
	// Frames that arrive meanwhile queue behind the refused ones, even when
	// they fill the queue to its limit.
	for i := 101; s.Enqueue(0, Normal, Handle(i), 500); i++ {
	}
	var got []Handle
	for s.Backlog() > 0 {
		n := s.Dequeue(1, out)
		got = append(got, out[:n]...)
	}
	for i, h := range got {
		if h != Handle(11+i) {
			t.Fatalf("frame %d after the refusal is %d, want %d", i, h, 11+i)
		}
	}
	st := s.Stats().Class[Normal]
	if st.RequeuedPkts != 22 || st.SentPkts != st.EnqueuedPkts || st.DroppedPkts != 1 {
		t.Errorf("counters after requeue: %+v", st)
	}
}

// A NIC that refuses half of every burst changes neither the shares nor the
// shaped rate: every refused frame's charges are given back.
func TestRequeueKeepsSharesAndRate(t *testing.T) {
	s := newSched(t, DefaultConfig(), gbps)
	var z sizes = 7
	out := make([]Handle, 32)
	seq := [NumClasses]Handle{}
	last := [NumClasses]Handle{}
	const dur, warm = 1000 * ms, 100 * ms
	var base Stats
	for now := int64(0); now < dur; now += 10 * us {
		for _, c := range []Class{Priority, Normal, Deprioritised} {
			for s.q[c].n() < 64 {
				seq[c]++
				s.Enqueue(now, c, seq[c]<<2|Handle(c), z.next())
			}
		}
		n := s.Dequeue(now, out)
		s.Requeue(n / 2)
		for _, h := range out[:n/2] {
			c := h & 3
			if h <= last[c] {
				t.Fatalf("%v out of order: %d after %d", Class(c), h>>2, last[c]>>2)
			}
			last[c] = h
		}
		if now == warm {
			base = s.Stats()
		}
	}
	st := s.Stats()
	want := [NumClasses]float64{0, .75, .15, .10}
	got, total := sentShares(base, st)
	for c := range got {
		if math.Abs(got[c]-want[c]) > 0.01 {
			t.Errorf("%v share %.4f with refusals, want %.4f", Class(c), got[c], want[c])
		}
	}
	if rate := float64(total) / (float64(dur-warm) / hz); math.Abs(rate/gbps-1) > 0.001 {
		t.Errorf("shaped rate with refusals %.0f B/s, want %d", rate, gbps)
	}
	if st.Class[Normal].RequeuedPkts == 0 {
		t.Fatal("nothing was requeued")
	}
}

func TestRequeueMisusePanics(t *testing.T) {
	s := newSched(t, DefaultConfig(), 0)
	s.Enqueue(0, Normal, 1, 64)
	s.Dequeue(0, make([]Handle, 4))
	defer func() {
		if recover() == nil {
			t.Fatal("Requeue beyond the last Dequeue did not panic")
		}
	}()
	s.Requeue(2)
}

// A frame queued after a Dequeue may take the slot of a dequeued one, so
// handing refused frames back after it must fail loudly, not lose them.
func TestRequeueAfterEnqueuePanics(t *testing.T) {
	s := newSched(t, DefaultConfig(), 0)
	for i := 0; i < 4; i++ {
		s.Enqueue(0, Normal, Handle(i), 64)
	}
	if n := s.Dequeue(0, make([]Handle, 4)); n != 4 {
		t.Fatalf("Dequeue gave %d frames", n)
	}
	s.Enqueue(0, Normal, 9, 64)
	s.Requeue(4) // nothing refused: always fine
	defer func() {
		if recover() == nil {
			t.Fatal("Requeue after an Enqueue did not panic")
		}
	}()
	s.Requeue(1)
}

func TestShaperRate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tps      uint64 // clock ticks per second
		rate     uint64
		stepTick int64
		burstUs  int // the bucket must cover the longest step
	}{
		{"1 Gbit/s, ns clock, 10 us steps", hz, gbps, 10 * us, 50},
		{"10 Mbit/s, ns clock, 1 ms steps", hz, gbps / 100, ms, 2000},
		{"2.5 Gbit/s, 2.4 GHz TSC, 1-50 us steps", 2_400_000_000, 5 * gbps / 2, 0, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.ShaperBurstMicros = tc.burstUs
			s, err := New(cfg, Egress{TicksPerSecond: tc.tps, LineRate: 100 * gbps, ShapeRate: tc.rate, MaxBurst: 64}, 0)
			if err != nil {
				t.Fatal(err)
			}
			var z sizes = 3
			out := make([]Handle, 64)
			var sent uint64
			dur := int64(tc.tps) * 2 // two seconds
			step := tc.stepTick
			for now := int64(0); now < dur; now += step {
				if tc.stepTick == 0 {
					step = int64(tc.tps/1_000_000) * (1 + int64(z.next()%50)) // 1 to 50 us
				}
				for s.q[Normal].n() < 256 {
					s.Enqueue(now, Normal, 1, z.next())
				}
				s.Dequeue(now, out)
				sent = s.stats.Class[Normal].SentBytes
			}
			want := float64(tc.rate) * 2
			// The bucket starts full, and the last frame may overdraw it.
			slack := float64(tc.rate)*float64(cfg.ShaperBurstMicros)/1e6 + 1500
			if d := float64(sent) - want; d < -slack || d > slack {
				t.Errorf("sent %d bytes in 2 s, want %.0f ± %.0f", sent, want, slack)
			}
		})
	}
}

// Below the shaped rate nothing waits: every frame leaves in the Dequeue
// right after its Enqueue, in arrival order within its class, and nothing is
// dropped.
func TestUncongestedPassThrough(t *testing.T) {
	for _, shape := range []uint64{0, gbps} {
		s := newSched(t, DefaultConfig(), shape)
		var z sizes = 11
		out := make([]Handle, 32)
		next := [NumClasses]Handle{}
		id := Handle(0)
		// A step earns 2500 bytes at 1 Gbit/s and brings at most that
		// (1000 bytes, then one more frame of up to 1500).
		const step = 20 * us
		for now := int64(0); now < 200*ms; now += step {
			var bytes uint32
			var want int
			for bytes < 1000 {
				l := z.next()
				c := Class(z.next() % NumClasses)
				id++
				s.Enqueue(now, c, id<<2|Handle(c), l)
				bytes += l
				want++
			}
			n := s.Dequeue(now, out)
			if n != want || s.Backlog() != 0 {
				t.Fatalf("shape %d at %d: %d of %d frames left, backlog %d", shape, now, n, want, s.Backlog())
			}
			for _, h := range out[:n] {
				c := h & 3
				if h <= next[c] {
					t.Fatalf("class %d out of order: %d after %d", c, h, next[c])
				}
				next[c] = h
			}
		}
		for c, cs := range s.Stats().Class {
			if cs.DroppedPkts != 0 || cs.SentPkts != cs.EnqueuedPkts {
				t.Errorf("shape %d %v: %+v", shape, Class(c), cs)
			}
		}
	}
}

func TestNoAllocs(t *testing.T) {
	s := newSched(t, DefaultConfig(), gbps)
	out := make([]Handle, 32)
	var z sizes = 5
	now := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		for i := 0; i < 32; i++ {
			s.Enqueue(now, Class(i%NumClasses), Handle(i), z.next())
		}
		n := s.Dequeue(now, out)
		s.Requeue(n / 2)
		_ = s.Stats()
		now += 20 * us
	})
	if allocs != 0 {
		t.Fatalf("Enqueue/Dequeue/Requeue allocate %v times per burst", allocs)
	}
}

func TestNewRejects(t *testing.T) {
	good := Egress{TicksPerSecond: hz, LineRate: gbps, MaxBurst: 32}
	bad := DefaultConfig()
	bad.FloorPercent = 90
	for name, tc := range map[string]struct {
		cfg Config
		eg  Egress
	}{
		"config":      {bad, good},
		"no clock":    {DefaultConfig(), Egress{LineRate: gbps, MaxBurst: 32}},
		"no rate":     {DefaultConfig(), Egress{TicksPerSecond: hz, MaxBurst: 32}},
		"no burst":    {DefaultConfig(), Egress{TicksPerSecond: hz, LineRate: gbps}},
		"huge burst":  {DefaultConfig(), Egress{TicksPerSecond: hz, LineRate: gbps, MaxBurst: 1 << 20}},
		"slow shaper": {DefaultConfig(), Egress{TicksPerSecond: hz, LineRate: gbps, ShapeRate: 1000, MaxBurst: 32}},
	} {
		if _, err := New(tc.cfg, tc.eg, 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: New returned %v, want ErrInvalid", name, err)
		}
	}
	if _, err := New(DefaultConfig(), good, 0); err != nil {
		t.Fatal(err)
	}
}

func TestClassNames(t *testing.T) {
	for c := Class(0); c < NumClasses; c++ {
		got, err := ParseClass(c.String())
		if err != nil || got != c || !c.Valid() {
			t.Errorf("%d: ParseClass(%q) = %v, %v", c, c.String(), got, err)
		}
	}
	if _, err := ParseClass("best"); err == nil {
		t.Error("ParseClass accepted an unknown name")
	}
	if Class(4).Valid() || Class(4).String() != "class(4)" {
		t.Error("class 4 is not reported invalid")
	}
}

func TestPurge(t *testing.T) {
	s := newSched(t, DefaultConfig(), gbps)
	for i := 0; i < 40; i++ {
		s.Enqueue(0, Class(i%NumClasses), Handle(i), 100)
	}
	out := make([]Handle, 32)
	sent := s.Dequeue(0, out)
	var freed []Handle
	if n := s.Purge(func(h Handle) { freed = append(freed, h) }); n != 40-sent || len(freed) != n {
		t.Fatalf("Purge freed %d (reported %d), want the %d left after %d sent", len(freed), n, 40-sent, sent)
	}
	seen := map[Handle]bool{}
	for _, h := range append(freed, out[:sent]...) {
		seen[h] = true
	}
	if len(seen) != 40 {
		t.Errorf("sent and purged frames cover %d distinct handles, want 40", len(seen))
	}
	st := s.Stats()
	var dropped uint64
	for _, cs := range st.Class {
		dropped += cs.DroppedPkts
		if cs.Depth != 0 {
			t.Errorf("depth %d after Purge", cs.Depth)
		}
	}
	if dropped != uint64(40-sent) || s.Backlog() != 0 || s.Dequeue(1, out) != 0 {
		t.Errorf("after Purge: %d counted dropped, backlog %d", dropped, s.Backlog())
	}
	s.Requeue(0) // a no-op now: nothing is staged
	if !s.Enqueue(2, Normal, 7, 100) || s.Dequeue(2*ms, out) != 1 || out[0] != 7 {
		t.Error("the scheduler does not work after Purge")
	}
}

// The mark lowers a frame to Deprioritised whatever the peer's class; a
// Deprioritised peer's frame leaves marked when the peer gives no credit;
// nothing else is marked or lowered.
func TestRelayedMark(t *testing.T) {
	for _, c := range []struct {
		peer            Class
		credits, marked bool
		want            Class
		wantMarked      bool
	}{
		{Priority, true, false, Priority, false},
		{Normal, true, false, Normal, false},
		{Normal, false, false, Normal, false},
		{Control, false, false, Control, false},
		{Deprioritised, true, false, Deprioritised, false},
		{Deprioritised, false, false, Deprioritised, true},
		{Priority, true, true, Deprioritised, true},
		{Normal, false, true, Deprioritised, true},
		{Deprioritised, true, true, Deprioritised, true},
	} {
		got, m := Relayed(c.peer, c.credits, c.marked)
		if got != c.want || m != c.wantMarked {
			t.Errorf("Relayed(%v, %t, %t) = %v, %t; want %v, %t", c.peer, c.credits, c.marked, got, m, c.want, c.wantMarked)
		}
	}
}
