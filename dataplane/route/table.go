package route

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
)

// Sizing constants. Each carries its reason.
const (
	// targetShardRoutes is the number of routes a shard holds when the table
	// is full. An update copies one shard: at about a thousand routes that
	// is ~140 KB, some 30 µs on the control core (BenchmarkUpdate), whatever
	// the table size.
	targetShardRoutes = 1024
	// maxShards bounds the shard pointer array (512 KB) for the largest
	// table the configuration allows (16 M routes).
	maxShards = 1 << 16
	// bucketSlots is the number of slots a bucket's signatures cover: eight
	// 15-bit signatures in 16 bytes, four buckets to a cache line, so a
	// lookup reads one line of signatures and then, nearly always, only the
	// one slot whose signature matches (rte_hash's scheme, with the slots
	// in a parallel array rather than behind key indexes).
	bucketSlots = 8
	// rebuildLoad is the load a shard is sized for when it is rebuilt. At
	// 0.7 an 8-slot bucket overflows into the next one for about one route
	// in twenty; the next bucket's signatures are usually in the same line.
	rebuildLoad = 0.7
	// maxLoad is the load past which an insert rebuilds the shard. Up to it,
	// inserts copy the shard as it is.
	maxLoad = 0.85
	// minLoad is the load below which a delete shrinks the shard, so that
	// a table that was once full does not keep its memory for ever (and
	// stale overflow marks are dropped).
	minLoad = 0.25
	// minBuckets is the smallest shard: one bucket. A table made for a
	// million routes but holding a thousand has a route or two per shard,
	// and every spare slot is cache the workers could use for something
	// else.
	minBuckets = 1
)

// Table maps hop session ids to routes. Lookup and LookupBurst may be called
// from any number of goroutines at any time; they never block, allocate or
// write shared memory. Updates (Put, Delete, Apply, Sweep) are meant for the
// control core; they are serialised by a mutex, so calling them from several
// goroutines is safe but gains nothing.
type Table struct {
	// Immutable after New.
	key    hashKey
	shift  uint // 64 - log2(len(shards)): the top hash bits pick the shard
	max    int  // most routes the table accepts
	shards []atomic.Pointer[shard]

	// n is the number of routes: written under mu, read by Len anywhere.
	n atomic.Int64

	// mu serialises writers and guards the fields below.
	mu sync.Mutex
	// minExpires[i] is a lower bound of the non-zero Expires values in
	// shard i (math.MaxInt64 when it has none): Sweep skips shards with
	// nothing due. Kept here, not in the shard, so that readers never see
	// writer bookkeeping.
	minExpires []int64
}

// shard is one immutable bucketed array. Once published it is never
// written again.
//
// Slot i belongs to bucket i/bucketSlots, whose sigs word holds a 15-bit
// signature per slot (lane i%bucketSlots; 0: the slot is empty, and then
// its key and route are zero). A route lives in its home bucket, or when
// that is full in the first bucket after it with room, and every bucket it
// passed over carries the overflow mark (the top bit of lane 0): a lookup
// that finds no matching signature in a bucket without the mark is a miss
// and has read nothing but the signatures.
type shard struct {
	sigs  []bucket
	slots []slot
	n     int // occupied slots
}

// bucket is the signatures of bucketSlots slots, four 16-bit lanes to a
// word, lane 0 in the low bits of word 0.
type bucket [2]uint64

const (
	// overMark is bucket word 0's overflow mark.
	overMark = 1 << 15
	// laneLow and laneHigh are SWAR masks: the low and the top bit of every
	// 16-bit lane; sigMask the signature bits.
	laneLow  = 0x0001_0001_0001_0001
	laneHigh = 0x8000_8000_8000_8000
	sigMask  = 0x7fff_7fff_7fff_7fff
)

// slot is a key and its route: 104 bytes, no pointers.
type slot struct {
	key   SessionID
	route Route
}

// empty is the shard every shard pointer starts at: one empty bucket, so
// lookups in an empty shard need no special case.
var empty = &shard{sigs: make([]bucket, 1), slots: make([]slot, bucketSlots)}

// sigOf returns the signature of hash h: 15 bits that neither pick the
// shard (the top bits) nor the bucket (the low 32), never 0.
func sigOf(h uint64) uint64 { return (h>>32)&0x7fff | 1 }

// match returns the top bit of every lane of w whose signature is sig
// (SWAR: a lane of x is zero where the signatures agree). A lane above a
// match may be flagged too, when the subtraction borrows from it; the
// lowest flag is always a true match, and every flag is checked against
// the key anyway.
func match(w, sig uint64) uint64 {
	x := w&sigMask ^ sig*laneLow
	return (x - laneLow) & laneHigh &^ x
}

// free returns the top bit of every empty lane of w.
func free(w uint64) uint64 {
	x := w & sigMask
	return (x - laneLow) & laneHigh &^ x
}

// New returns an empty table that holds up to maxRoutes routes, with a fresh
// random hash key.
func New(maxRoutes int) (*Table, error) {
	if maxRoutes < 1 || maxRoutes > 1<<24 {
		return nil, fmt.Errorf("route: maximum of %d routes is out of range: use 1 to 16777216", maxRoutes)
	}
	shards := 1
	for shards*targetShardRoutes < maxRoutes && shards < maxShards {
		shards *= 2
	}
	t := &Table{
		key:        newHashKey(),
		shift:      uint(64 - log2(shards)),
		max:        maxRoutes,
		shards:     make([]atomic.Pointer[shard], shards),
		minExpires: make([]int64, shards),
	}
	for i := range t.shards {
		t.shards[i].Store(empty)
		t.minExpires[i] = math.MaxInt64
	}
	return t, nil
}

func log2(n int) int {
	l := 0
	for 1<<l < n {
		l++
	}
	return l
}

// Lookup returns the route of id. It is wait-free and allocation-free and
// may run concurrently with updates: it sees each route either entirely
// before or entirely after an update, never in between.
func (t *Table) Lookup(id SessionID) (Route, bool) {
	if id == (SessionID{}) {
		// The zero id would match an empty slot's key.
		return Route{}, false
	}
	h := t.key.sum(&id)
	s := t.shards[h>>t.shift].Load()
	if i, ok := s.find(h, &id); ok {
		return s.slots[i].route, true
	}
	return Route{}, false
}

// burstChunk is how many lookups LookupBurst starts before it finishes any:
// a whole 32-frame receive burst, with scratch arrays small enough for the
// stack.
const burstChunk = 32

// LookupBurst looks up ids[i] into routes[i] and found[i] for each i, for a
// worker's whole receive burst. routes and found must be at least as long as
// ids. It returns the number of ids found.
//
// On a table larger than the cache a lookup waits on memory, and lookups
// made one after another wait for their misses one after another.
// LookupBurst works in three passes over a chunk of ids, so that each
// pass's misses are in flight together: the first hashes every id and
// finds its bucket (arithmetic and shard pointers, all in cache); the
// second reads each bucket's signatures (2 bytes a slot: a million routes'
// fit in 3 MB, mostly cached) and touches the slot whose signature matches,
// its key and every line of its route; the third compares the keys and
// copies the routes, now from the cache. A miss whose bucket has no
// matching signature and no overflow mark reads no slot at all. Each
// touching load is used by the third pass, so the compiler keeps it (Go
// has no prefetch instruction).
func (t *Table) LookupBurst(ids []SessionID, routes []Route, found []bool) int {
	_ = routes[:len(ids)]
	_ = found[:len(ids)]
	var (
		ss    [burstChunk]*shard
		bs    [burstChunk]uint32
		sigs  [burstChunk]uint64
		cand  [burstChunk]int32  // the slot to compare, -1: none matched
		first [burstChunk]uint64 // first half of that slot's key
		hits  int
	)
	for base := 0; base < len(ids); base += burstChunk {
		chunk := ids[base:min(base+burstChunk, len(ids))]
		out := routes[base : base+len(chunk)]
		for j := range chunk {
			h := t.key.sum(&chunk[j])
			s := t.shards[h>>t.shift].Load()
			ss[j], bs[j], sigs[j] = s, s.home(h), sigOf(h)
		}
		for j := range chunk {
			s := ss[j]
			w := &s.sigs[bs[j]]
			c := int32(-1)
			if m := match(w[0], sigs[j]); m != 0 {
				c = int32(bs[j]*bucketSlots) + int32(bits.TrailingZeros64(m)/16)
			} else if m := match(w[1], sigs[j]); m != 0 {
				c = int32(bs[j]*bucketSlots) + 4 + int32(bits.TrailingZeros64(m)/16)
			}
			cand[j] = c
			if c >= 0 {
				// A slot spans up to three lines: touch each.
				e := &s.slots[c]
				first[j] = binary.LittleEndian.Uint64(e.key[0:8])
				// The result goes to found, which the third pass
				// overwrites: a store the compiler cannot drop, so it
				// keeps the loads.
				found[base+j] = binary.LittleEndian.Uint64(e.route.SrcIP[8:16]) == uint64(e.route.Expires)
			}
		}
		for j := range chunk {
			id := &chunk[j]
			s, c, ok := ss[j], cand[j], false
			i := uint32(0)
			switch {
			case c >= 0 && first[j] == binary.LittleEndian.Uint64(id[0:8]) && s.slots[c].key == *id:
				i, ok = uint32(c), true
			case c < 0 && s.sigs[bs[j]][0]&overMark == 0:
				// No signature matched and nothing overflowed: a miss.
			default:
				i, ok = s.find0(bs[j], sigs[j], id)
			}
			if ok {
				out[j] = s.slots[i].route
				hits++
			} else {
				out[j] = Route{}
			}
			found[base+j] = ok
		}
	}
	return hits
}

// Len returns the number of routes.
func (t *Table) Len() int { return int(t.n.Load()) }

// Max returns the most routes the table accepts.
func (t *Table) Max() int { return t.max }

// home returns the home bucket of hash h: Lemire's multiply-shift maps the
// low 32 bits onto [0, len(sigs)) without a division and without requiring
// a power-of-two size, so a shard can be sized exactly for its load.
func (s *shard) home(h uint64) uint32 {
	return uint32((h & math.MaxUint32) * uint64(len(s.sigs)) >> 32)
}

// find returns the slot index holding id, whose hash is h.
func (s *shard) find(h uint64, id *SessionID) (uint32, bool) {
	return s.find0(s.home(h), sigOf(h), id)
}

// find0 looks for id, of signature sig, from bucket b on: each slot of the
// bucket whose signature matches has its key compared, and the search goes
// on to the next bucket only while the overflow mark says a route passed
// over this one. It reads at most every bucket once.
func (s *shard) find0(b uint32, sig uint64, id *SessionID) (uint32, bool) {
	n := uint32(len(s.sigs))
	for range n {
		w := &s.sigs[b]
		for half := range uint32(2) {
			for m := match(w[half], sig); m != 0; m &= m - 1 {
				i := b*bucketSlots + half*4 + uint32(bits.TrailingZeros64(m)/16)
				if s.slots[i].key == *id {
					return i, true
				}
			}
		}
		if w[0]&overMark == 0 {
			return 0, false
		}
		if b++; b == n {
			b = 0
		}
	}
	return 0, false
}

// probe returns 1 + how many buckets after its home the route in occupied
// slot i sits: the buckets a lookup of it reads.
func (s *shard) probe(k *hashKey, i uint32) uint32 {
	home, at := s.home(k.sum(&s.slots[i].key)), i/bucketSlots
	if at >= home {
		return at - home + 1
	}
	return at + uint32(len(s.sigs)) - home + 1
}
