package counters

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

func TestNewBounds(t *testing.T) {
	for _, c := range [][4]int{{0, 1, 1, 1}, {1, 0, 1, 1}, {1, 1, 0, 1}, {1, 1, 1, 0}, {MaxCores + 1, 1, 1, 1}, {1, MaxPeers + 1, 1, 1}} {
		if _, err := New(c[0], c[1], c[2], c[3]); err == nil {
			t.Errorf("New%v succeeded", c)
		}
	}
	s, err := New(3, 10, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	if s.Cores() != 3 || s.Peers() != 10 || s.Reasons() != 4 || s.Ports() != 2 {
		t.Fatalf("sizes %d %d %d %d", s.Cores(), s.Peers(), s.Reasons(), s.Ports())
	}
}

func TestPublishAndSum(t *testing.T) {
	s, _ := New(2, 8, 5, 3)
	a, b := s.Core(0), s.Core(1)
	a.Relayed(1, 2, 100)
	a.Relayed(1, 3, 50)
	a.Dropped(4)
	a.Received(2, 3, 300)
	a.Sent(1, 2, 150)
	// Nothing is visible before Publish.
	if p := s.Peer(1); p != (Peer{}) || s.Drops(4) != 0 || s.Port(2) != (Port{}) {
		t.Fatalf("unpublished counts visible: %+v", p)
	}
	a.Publish()
	b.Relayed(2, 1, 1000)
	b.RelayedFor(1, 2, 20)
	b.RelayedTowards(7, 3, 30)
	b.DroppedN(4, 6)
	b.Received(2, 1, 64)
	b.Event(1)
	a.Event(1)
	b.Publish()
	want := map[uint32]Peer{
		1: {ForPackets: 4, ForBytes: 170, ToPackets: 1, ToBytes: 1000},
		2: {ForPackets: 1, ForBytes: 1000, ToPackets: 1, ToBytes: 100},
		3: {ToPackets: 1, ToBytes: 50},
		7: {ToPackets: 3, ToBytes: 30},
	}
	all := s.AllPeers(nil)
	for slot := range uint32(8) {
		if got := s.Peer(slot); got != want[slot] || all[slot] != want[slot] {
			t.Errorf("peer %d: Peer %+v, AllPeers %+v, want %+v", slot, got, all[slot], want[slot])
		}
	}
	if got := s.Drops(4); got != 7 {
		t.Errorf("drops = %d, want 7", got)
	}
	if d := s.AllDrops(nil); len(d) != 5 || d[4] != 7 || d[0] != 0 {
		t.Errorf("AllDrops = %v", d)
	}
	// a's event was counted after its last Publish: not visible yet.
	if ev := s.AllEvents(nil); len(ev) != MaxEvents || ev[1] != 1 || ev[0] != 0 {
		t.Errorf("AllEvents = %v", ev)
	}
	ports := s.AllPorts(nil)
	if w := (Port{RxPackets: 4, RxBytes: 364}); s.Port(2) != w || ports[2] != w {
		t.Errorf("port 2 = %+v", s.Port(2))
	}
	if w := (Port{TxPackets: 2, TxBytes: 150}); ports[1] != w {
		t.Errorf("port 1 = %+v", ports[1])
	}
	// Values are cumulative across publishes; reused result slices are
	// cleared, not added to.
	a.Relayed(1, 2, 1)
	a.Publish()
	all = s.AllPeers(all)
	if all[1].ForPackets != 5 || all[1].ForBytes != 171 {
		t.Errorf("after a second publish: %+v", all[1])
	}
	// The uncredited part of the traffic towards a peer, from every core.
	a.RelayedUncredited(7, 1, 10)
	b.RelayedUncredited(7, 2, 25)
	a.Publish()
	b.Publish()
	all = s.AllPeers(all)
	if p := s.Peer(7); p.UncreditedPackets != 3 || p.UncreditedBytes != 35 || all[7] != p || p.ToPackets != 3 {
		t.Errorf("uncredited towards 7: %+v (all %+v)", p, all[7])
	}
}

func TestOutOfRangePanics(t *testing.T) {
	s, _ := New(1, 4, 2, 1)
	for name, f := range map[string]func(){
		"peer":   func() { s.Core(0).Relayed(4, 0, 1) },
		"reason": func() { s.Core(0).Dropped(2) },
		"port":   func() { s.Core(0).Sent(1, 1, 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s beyond the count did not panic", name)
				}
			}()
			f()
		}()
	}
}

// TestConcurrentReaders runs one writer goroutine per core, counting bursts
// and publishing after each, while readers sum all cores. Under -race this
// proves the write and read paths share memory only through atomics;
// the test itself checks that totals never decrease and end exact.
func TestConcurrentReaders(t *testing.T) {
	const cores, peers, reasons, ports = 2, 64, 8, 2
	const bursts, burst = 3000, 32
	s, _ := New(cores, peers, reasons, ports)
	var wg sync.WaitGroup
	var writing atomic.Int32
	writing.Store(cores)
	for c := range cores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer writing.Add(-1)
			core := s.Core(c)
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for range bursts {
				for range burst {
					in, out := rng.Uint32N(peers), rng.Uint32N(peers)
					core.Relayed(in, out, 100)
					core.Dropped(int(in % reasons))
				}
				core.Received(uint16(c%ports), burst, burst*100)
				core.Sent(uint16(c%ports), burst, burst*100)
				core.Publish()
			}
		}()
	}
	readerErr := make(chan string, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var prev, cur []Peer
		var prevDrops, curDrops []uint64
		reads := 0
		for writing.Load() > 0 || reads == 0 {
			cur = s.AllPeers(cur)
			curDrops = s.AllDrops(curDrops)
			for i := range cur {
				if prev != nil && (cur[i].ForPackets < prev[i].ForPackets || cur[i].ToBytes < prev[i].ToBytes) {
					readerErr <- "a peer total went down"
					return
				}
			}
			for i := range curDrops {
				if prevDrops != nil && curDrops[i] < prevDrops[i] {
					readerErr <- "a drop total went down"
					return
				}
			}
			prev, cur = cur, prev
			prevDrops, curDrops = curDrops, prevDrops
			reads++
		}
	}()
	wg.Wait()
	select {
	case e := <-readerErr:
		t.Fatal(e)
	default:
	}
	var sum Peer
	for _, p := range s.AllPeers(nil) {
		sum.ForPackets += p.ForPackets
		sum.ForBytes += p.ForBytes
		sum.ToPackets += p.ToPackets
		sum.ToBytes += p.ToBytes
	}
	const frames = cores * bursts * burst
	if sum != (Peer{ForPackets: frames, ForBytes: frames * 100, ToPackets: frames, ToBytes: frames * 100}) {
		t.Fatalf("final peer totals %+v, want %d frames", sum, frames)
	}
	var drops uint64
	for _, d := range s.AllDrops(nil) {
		drops += d
	}
	var rx uint64
	for _, p := range s.AllPorts(nil) {
		rx += p.RxPackets
	}
	if drops != frames || rx != frames {
		t.Fatalf("drops %d, rx %d, want %d", drops, rx, frames)
	}
}

func TestWritePathAllocatesNothing(t *testing.T) {
	s, _ := New(1, 1024, 16, 4)
	c := s.Core(0)
	var i uint32
	if a := testing.AllocsPerRun(1000, func() {
		for range 32 {
			i++
			c.Relayed(i%1024, (i*7)%1024, 1500)
			c.Dropped(int(i % 16))
			c.Event(int(i % MaxEvents))
		}
		c.Received(uint16(i%4), 32, 32*1500)
		c.Sent(uint16(i%4), 32, 32*1500)
		c.Publish()
	}); a != 0 {
		t.Fatalf("a burst of updates and a publish allocate %v times", a)
	}
	var dst []Peer
	dst = s.AllPeers(dst)
	if a := testing.AllocsPerRun(100, func() { dst = s.AllPeers(dst); _ = s.Peer(3) }); a != 0 {
		t.Fatalf("reading into a reused slice allocates %v times", a)
	}
}
