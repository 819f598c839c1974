package route

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"

	"github.com/poolrelay/poolrelay/internal/cputime"
)

// benchSizes are the route counts the issue asks figures for. Every table is
// made with the default maximum (1 M routes, 1024 shards) so that only the
// number of routes changes between sizes.
var benchSizes = []int{1_000, 100_000, 1_000_000}

const benchMax = 1 << 20

type benchTable struct {
	tbl        *Table
	hits, miss []SessionID // 1 M random picks each: index with i & (1<<20 - 1)
	heapBytes  uint64      // heap growth measured while building
}

type benchKey struct {
	n  int
	v6 bool
}

var benchTables = map[benchKey]*benchTable{}

// benchRoute returns route i of a benchmark table: IPv4, which fits a
// slot, or IPv6, which is spilled (see slot).
func benchRoute(i int, v6 bool) Route {
	r := testRoute(uint64(i), 0)
	src, dst := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), netip.AddrFrom4([4]byte{198, 51, 100, byte(i >> 8)})
	if v6 {
		src, dst = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}), netip.AddrFrom16([16]byte{0xfd, 14: byte(i >> 8), 15: 1})
	}
	if err := r.SetAddrs(src, dst); err != nil {
		panic(err)
	}
	return r
}

func randomID(rng *rand.Rand) SessionID {
	var id SessionID
	for id == (SessionID{}) {
		for i := 0; i < 16; i += 8 {
			v := rng.Uint64()
			for k := range 8 {
				id[i+k] = byte(v >> (8 * k))
			}
		}
	}
	return id
}

// benchTableOf builds (once per process) a table of n random routes, all
// IPv4 or all IPv6, installed by one batch as a control core would at
// start.
func benchTableOf(b *testing.B, n int, v6 bool) *benchTable {
	if bt := benchTables[benchKey{n, v6}]; bt != nil {
		return bt
	}
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	ids := make([]SessionID, n)
	var batch Batch
	for i := range ids {
		ids[i] = randomID(rng)
		batch.Put(ids[i], benchRoute(i, v6))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tbl, _ := New(benchMax)
	if err := tbl.Apply(&batch); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// The batch must outlive the second reading, or its memory, freed by
	// then, would be subtracted from the table's.
	runtime.KeepAlive(&batch)
	bt := &benchTable{tbl: tbl, heapBytes: after.HeapAlloc - before.HeapAlloc}
	bt.hits = make([]SessionID, 1<<20)
	bt.miss = make([]SessionID, 1<<20)
	for i := range bt.hits {
		bt.hits[i] = ids[rng.IntN(n)]
		bt.miss[i] = randomID(rng) // a collision with a route is a 2^-108 event
	}
	benchTables[benchKey{n, v6}] = bt
	return bt
}

func sizeName(n int) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("routes=%dM", n/1_000_000)
	case n >= 1_000:
		return fmt.Sprintf("routes=%dK", n/1_000)
	}
	return fmt.Sprintf("routes=%d", n)
}

// BenchmarkLookup is one Lookup per op of a random id: present ("hit") or
// not ("miss"). It also reports the table's memory per route, both as the
// table counts it and as the heap grew while it was built.
func BenchmarkLookup(b *testing.B) {
	for _, n := range benchSizes {
		for _, kind := range []string{"hit", "miss"} {
			b.Run(sizeName(n)+"/"+kind, func(b *testing.B) {
				bt := benchTableOf(b, n, false)
				ids := bt.hits
				if kind == "miss" {
					ids = bt.miss
				}
				b.ReportAllocs()
				found := 0
				var sink uint32
				b.ResetTimer()
				cpu := cputime.Start()
				for i := range b.N {
					r, ok := bt.tbl.Lookup(ids[i&(1<<20-1)])
					if ok {
						found++
					}
					sink += r.EgressPeer
				}
				b.StopTimer()
				cpu.Report(b)
				if want := kind == "hit"; (found == b.N) != want || (found == 0) == want {
					b.Fatalf("%s benchmark found %d of %d", kind, found, b.N)
				}
				st := bt.tbl.Stats()
				b.ReportMetric(st.BytesPerRoute(), "B/route")
				b.ReportMetric(float64(bt.heapBytes)/float64(n), "heapB/route")
				b.ReportMetric(st.Load(), "load")
				b.ReportMetric(float64(st.HugeBytes)/float64(max(1, st.ChunkBytes)), "huge")
				_ = sink
			})
		}
	}
}

// BenchmarkLookupBurst is LookupBurst over bursts of 32 random ids; an op is
// one id, so the figure compares with BenchmarkLookup. "hit" and "miss"
// are over IPv4 routes, which fit a slot; "hit6" over IPv6 routes, which
// are spilled and cost a lookup one more line.
func BenchmarkLookupBurst(b *testing.B) {
	const burst = 32
	for _, n := range benchSizes {
		for _, kind := range []string{"hit", "miss", "hit6"} {
			b.Run(sizeName(n)+"/"+kind, func(b *testing.B) {
				bt := benchTableOf(b, n, kind == "hit6")
				ids := bt.hits
				if kind == "miss" {
					ids = bt.miss
				}
				routes := make([]Route, burst)
				found := make([]bool, burst)
				b.ReportAllocs()
				b.ResetTimer()
				cpu := cputime.Start()
				for i := 0; i < b.N; i += burst {
					off := i & (1<<20 - 1)
					bt.tbl.LookupBurst(ids[off:off+burst], routes, found)
				}
				b.StopTimer()
				cpu.Report(b)
			})
		}
	}
}

// BenchmarkUpdate is the cost of one Put (replacing a route: one shard copy)
// and of one Put of a new route followed by its Delete (two shard copies),
// on the control core.
func BenchmarkUpdate(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n)+"/replace", func(b *testing.B) {
			bt := benchTableOf(b, n, false)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := bt.tbl.Put(bt.hits[i&(1<<20-1)], testRoute(uint64(i), 1)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(sizeName(n)+"/add+delete", func(b *testing.B) {
			bt := benchTableOf(b, n, false)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				id := bt.miss[i&(1<<20-1)]
				if err := bt.tbl.Put(id, testRoute(uint64(i), 1)); err != nil {
					b.Fatal(err)
				}
				bt.tbl.Delete(id)
			}
		})
	}
}

// BenchmarkBulkInstall installs routes in batches of up to 1 M into empty
// tables, as a control core does at start; an op is one route.
func BenchmarkBulkInstall(b *testing.B) {
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(7, 7))
	var batch Batch
	for i := range n {
		batch.Put(randomID(rng), testRoute(uint64(i), 0))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += n {
		part := Batch{ops: batch.ops[:min(n, b.N-done)]}
		tbl, _ := New(benchMax)
		if err := tbl.Apply(&part); err != nil {
			b.Fatal(err)
		}
	}
}
