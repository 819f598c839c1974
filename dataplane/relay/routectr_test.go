package relay

import (
	"sync"
	"testing"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/bursttest"
	"github.com/poolrelay/poolrelay/dataplane/neigh"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
)

// poolLen is the charged size of a test frame: its outer POOL header and
// payload.
func poolLen(t testing.TB, f []byte) uint64 {
	var r wire.Result
	wire.Classify(f, wiretest.Matcher(), &r)
	return uint64(int(r.PayloadOff) + int(r.PayloadLen) - int(r.PoolOff))
}

// TestRouteCounters: frames of two routes interleaved in bursts, and
// frames the worker drops, count exactly under their routes' slots; a route
// whose slot lies beyond the counters is dropped as a bad egress.
func TestRouteCounters(t *testing.T) {
	f := newFixture(t, true)
	rx := hopmac.New(rxKey)
	seq := uint64(1)
	var want4, want6, bytes4, bytes6 uint64
	for round := range 20 {
		var fs [][]byte
		for i := range 3 + round%5 {
			ipv6 := i%3 == 2
			s := sessV4
			if ipv6 {
				s = sessV6
			}
			fr := signed(t, ipv6, s, seq, rx)
			seq++
			if ipv6 {
				want6++
				bytes6 += poolLen(t, fr)
			} else {
				want4++
				bytes4 += poolLen(t, fr)
			}
			fs = append(fs, fr)
		}
		// Dropped frames count on no route: a replay and a disabled route.
		fs = append(fs, signed(t, false, sessV4, 1, rx), signed(t, false, sessDisabled, seq, rx))
		f.decide(0, fs...)
	}
	if got := f.routes.Route(ctrV4); got != (counters.Route{Packets: want4, Bytes: bytes4}) {
		t.Errorf("route v4: %+v, want %d frames, %d bytes", got, want4, bytes4)
	}
	if got := f.routes.Route(ctrV6); got != (counters.Route{Packets: want6, Bytes: bytes6}) {
		t.Errorf("route v6: %+v, want %d frames, %d bytes", got, want6, bytes6)
	}
	if got := f.routes.Route(0); got != (counters.Route{}) {
		t.Errorf("shared slot counted %+v", got)
	}
	// The peers' counts are the routes' sum.
	if p := f.set.Peer(peerIn); p.ForPackets != want4+want6 || p.ForBytes != bytes4+bytes6 {
		t.Errorf("peer %+v, routes %d frames %d bytes", p, want4+want6, bytes4+bytes6)
	}

	r := testRoute(t, false)
	r.Counter = uint32(f.routes.Slots())
	bad := wire.SessionID{0xbc}
	if err := f.tables.Routes().Put(route.SessionID(bad), r); err != nil {
		t.Fatal(err)
	}
	if v := f.decide(0, signed(t, false, bad, seq, rx))[0]; v.act != actDrop || Reason(v.reason) != ReasonBadEgress {
		t.Errorf("route with slot %d of %d: %+v (%v)", r.Counter, f.routes.Slots(), v, Reason(v.reason))
	}
}

// TestRouteCountersTwoWorkers: two workers on their own goroutines, at
// once, relay known numbers of frames of the same routes; the counters
// summed over both cores are exact per route.
func TestRouteCountersTwoWorkers(t *testing.T) {
	rt, err := route.New(64)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := NewTables(rt, 2, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	sessions := []wire.SessionID{{0x51}, {0x52}, {0x53}}
	for i, s := range sessions {
		r := testRoute(t, false)
		r.Counter = uint32(1 + i)
		if err := rt.Put(route.SessionID(s), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := tables.SetHopKeys(keyIn, rxKey, nil); err != nil {
		t.Fatal(err)
	}
	if err := tables.SetHopKeys(keyOut, nil, txKey); err != nil {
		t.Fatal(err)
	}
	set, err := counters.New(2, 16, int(NumReasons), 2)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := counters.NewRoutes(2, 8)
	if err != nil {
		t.Fatal(err)
	}
	rx := hopmac.New(rxKey)
	// Worker w sends (w+1)*(i+1)*100 frames of route i, in bursts of up
	// to 32 frames mixing the routes; seqs are disjoint per worker (each
	// keeps its own replay window, and the same seq on two workers is
	// what RSS never does).
	var wg sync.WaitGroup
	for w := range 2 {
		wk, err := NewWorker[*bursttest.Burst](WorkerConfig{ID: w, Tables: tables, Counters: set.Core(w), Routes: rc.Core(w),
			Matcher: wiretest.Matcher(), Addrs: neigh.NewAddrs(nil), MACs: []wire.MAC{wiretest.RelayMAC}, KeepAuth: true})
		if err != nil {
			t.Fatal(err)
		}
		var frames [][]byte
		seq := uint64(1 + w<<20)
		for i, s := range sessions {
			for range (w + 1) * (i + 1) * 100 {
				frames = append(frames, signed(t, false, s, seq, rx))
				seq++
			}
		}
		io := newFake(t, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(frames) > 0 {
				n := min(32, len(frames))
				wk.Burst(io, 0, io.Cycle(frames[:n]...))
				for i := range n {
					if wk.verdicts[i].act != actRelay {
						t.Errorf("worker %d: frame dropped: %v", w, Reason(wk.verdicts[i].reason))
					}
				}
				frames = frames[n:]
			}
			io.Flush()
		}()
	}
	wg.Wait()
	per := poolLen(t, signed(t, false, sessions[0], 1, nil))
	for i := range sessions {
		n := uint64((1 + 2) * (i + 1) * 100)
		if got := rc.Route(uint32(1 + i)); got != (counters.Route{Packets: n, Bytes: n * per}) {
			t.Errorf("route %d: %+v, want %d frames, %d bytes", i, got, n, n*per)
		}
	}
}
