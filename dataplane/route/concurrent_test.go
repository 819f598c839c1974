package route

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadersDuringUpdates runs lookups on several goroutines while one
// writer puts, replaces, deletes, sweeps and bulk-installs. Readers check
// that routes that are never deleted are always found, and that every route
// they see is whole (all fields agree). Run it under -race: the detector
// then also proves that readers and the writer share memory only through
// the shard pointers.
func TestReadersDuringUpdates(t *testing.T) {
	tbl, _ := New(1 << 13) // 8 shards: plenty of shard copies per second
	const stable, churn = 2000, 4000
	var b Batch
	for i := range uint64(stable) {
		b.Put(testID(i), testRoute(i, 0))
	}
	if err := tbl.Apply(&b); err != nil {
		t.Fatal(err)
	}
	var (
		done    atomic.Bool
		lookups atomic.Int64
		wg      sync.WaitGroup
		errs    = make(chan string, 8)
	)
	fail := func(msg string) {
		select {
		case errs <- msg:
		default:
		}
	}
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]SessionID, 32)
			routes := make([]Route, 32)
			found := make([]bool, 32)
			n := uint64(g)
			for !done.Load() {
				for j := range ids {
					n = n*6364136223846793005 + 1442695040888963407
					ids[j] = testID(n >> 33 % (stable + churn))
				}
				tbl.LookupBurst(ids, routes, found)
				for j, id := range ids {
					r, ok := tbl.Lookup(id)
					for _, x := range []struct {
						r  Route
						ok bool
					}{{r, ok}, {routes[j], found[j]}} {
						if x.ok && !consistent(x.r) {
							fail("torn route")
						}
						if n := binary.BigEndian.Uint64(id[:8]); !x.ok && n < stable {
							fail("a stable route went missing")
						}
					}
				}
				lookups.Add(int64(2 * len(ids)))
			}
		}()
	}
	// The writer: single puts and deletes on the churn ids, replacements of
	// stable routes, batches, and sweeps of routes that expire.
	now := time.Unix(1_700_000_000, 0)
	deadline := time.Now().Add(2 * time.Second)
	for v := uint32(1); time.Now().Before(deadline); v++ {
		i := stable + uint64(v*7919)%churn
		r := testRoute(i, v)
		if v%5 == 0 {
			r.Expires = now.Add(time.Duration(v%3) * time.Second).UnixNano()
		}
		if err := tbl.Put(testID(i), r); err != nil {
			t.Fatal(err)
		}
		tbl.Delete(testID(stable + uint64(v*104729)%churn))
		if err := tbl.Put(testID(uint64(v)%stable), testRoute(uint64(v)%stable, v)); err != nil {
			t.Fatal(err)
		}
		if v%64 == 0 {
			b.Reset()
			for k := range uint64(200) {
				j := stable + (uint64(v)+k*13)%churn
				if k%4 == 0 {
					b.Delete(testID(j))
				} else {
					b.Put(testID(j), testRoute(j, v))
				}
			}
			if err := tbl.Apply(&b); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Second)
			tbl.Sweep(now)
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	checkShards(t, tbl)
	if lookups.Load() == 0 {
		t.Fatal("readers made no lookups")
	}
	t.Logf("%d lookups during updates", lookups.Load())
}
