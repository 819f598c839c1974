package counters

import (
	"sync"
	"testing"
)

func TestNewRoutesBounds(t *testing.T) {
	for _, c := range []struct{ cores, slots int }{{0, 1}, {MaxCores + 1, 1}, {1, 0}, {1, MaxRouteSlots + 1}} {
		if _, err := NewRoutes(c.cores, c.slots); err == nil {
			t.Errorf("NewRoutes(%d, %d) accepted", c.cores, c.slots)
		}
	}
}

// TestRoutesExact: frames counted on two cores under known slots, with
// publishes in between, read back exactly per slot, and nothing before a
// Publish.
func TestRoutesExact(t *testing.T) {
	r, err := NewRoutes(2, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]Route, 100)
	for round := range 50 {
		for core := range 2 {
			c := r.Core(core)
			for slot := uint32(1); slot < 100; slot += uint32(1 + core) {
				n, b := 1+round%3, 100*(int(slot)+core)
				c.Add(slot, n, b)
				want[slot].Packets += uint64(n)
				want[slot].Bytes += uint64(b)
			}
		}
		if round == 0 {
			if got := r.Route(1); got != (Route{}) {
				t.Fatalf("before Publish: %+v", got)
			}
		}
		r.Core(0).Publish()
		r.Core(1).Publish()
	}
	got := r.AllRoutes(nil, 100)
	for slot := range want {
		if got[slot] != want[slot] || r.Route(uint32(slot)) != want[slot] {
			t.Errorf("slot %d: %+v and %+v, want %+v", slot, got[slot], r.Route(uint32(slot)), want[slot])
		}
	}
	if r.Route(1000) != (Route{}) {
		t.Error("a slot beyond Slots reads as non-zero")
	}
	if n := len(r.AllRoutes(got, 1<<30)); n != 100 {
		t.Errorf("AllRoutes beyond Slots: %d rows", n)
	}
}

// TestRoutesDirtyFull: more distinct slots than the dirty list holds
// between two publishes are all counted (the list publishes early).
func TestRoutesDirtyFull(t *testing.T) {
	const n = 3 * routeDirty
	r, _ := NewRoutes(1, n)
	c := r.Core(0)
	for slot := range uint32(n) {
		c.Add(slot, 1, 10)
		c.Add(slot, 1, 10)
	}
	c.Publish()
	for slot := range uint32(n) {
		if got := r.Route(slot); got != (Route{2, 20}) {
			t.Fatalf("slot %d: %+v", slot, got)
		}
	}
	if c.Pending() {
		t.Error("pending after Publish")
	}
}

func TestRoutesOutOfRangePanics(t *testing.T) {
	r, _ := NewRoutes(1, 4)
	defer func() {
		if recover() == nil {
			t.Error("Add beyond the slots did not panic")
		}
	}()
	r.Core(0).Add(4, 1, 1)
}

func TestRoutesAllocateNothing(t *testing.T) {
	r, _ := NewRoutes(1, 1024)
	c := r.Core(0)
	if a := testing.AllocsPerRun(100, func() {
		for s := range uint32(64) {
			c.Add(s*7, 1, 100)
		}
		c.Publish()
	}); a != 0 {
		t.Errorf("%v allocations", a)
	}
}

// TestRoutesConcurrentReader runs a reader beside a writer (go test -race
// checks the publication): totals only grow and end exact.
func TestRoutesConcurrentReader(t *testing.T) {
	r, _ := NewRoutes(1, 8)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last uint64
		var buf []Route
		for {
			select {
			case <-stop:
				return
			default:
			}
			buf = r.AllRoutes(buf, 8)
			if buf[3].Packets < last {
				t.Errorf("packets went back: %d after %d", buf[3].Packets, last)
				return
			}
			last = buf[3].Packets
		}
	}()
	c := r.Core(0)
	for range 10000 {
		c.Add(3, 1, 64)
		c.Publish()
	}
	close(stop)
	wg.Wait()
	if got := r.Route(3); got != (Route{10000, 640000}) {
		t.Errorf("%+v", got)
	}
}

// BenchmarkRouteAdd is the cost of counting a relayed frame's route, with a
// Publish every 32 frames (a burst); an op is one frame. The patterns: one
// route per burst (runs summed by the worker are one Add per run, so this
// one is an Add per frame, the worst for the adds) and 32 distinct routes
// per burst (the worst for Publish: two atomic stores per route).
func BenchmarkRouteAdd(b *testing.B) {
	for _, c := range []struct {
		name  string
		route func(i uint32) uint32
	}{
		{"routes=1", func(uint32) uint32 { return 5 }},
		{"routes=32", func(i uint32) uint32 { return 1 + i%32 }},
		{"routes=1M", func(i uint32) uint32 { return 1 + (i*2654435761)%(1<<20) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			r, _ := NewRoutes(1, 1<<20+1)
			core := r.Core(0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += 32 {
				for j := range uint32(32) {
					core.Add(c.route(uint32(i)+j), 1, 1500)
				}
				core.Publish()
			}
		})
	}
}
