package route

import (
	"encoding/binary"
	"fmt"
	"math"
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
	// rebuildLoad is the load a shard is sized for when it is rebuilt. Robin
	// Hood probing at 0.7 averages 2.2 probes per hit, which are adjacent
	// 104-byte slots: the first one or two cache lines after the home slot.
	rebuildLoad = 0.7
	// maxLoad is the load past which an insert rebuilds the shard. Up to it,
	// inserts copy the shard as it is; at 0.85 a hit averages 3.8 probes.
	maxLoad = 0.85
	// minLoad is the load below which a delete shrinks the shard, so that
	// a table that was once full does not keep its memory for ever.
	minLoad = 0.25
	// minSlots is the smallest shard array. Small, because a table made for
	// a million routes but holding a thousand has a route or two per shard,
	// and every spare slot is cache the workers could use for something else.
	minSlots = 2
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

// shard is one immutable open-addressing array. Once published it is never
// written again.
//
// A slot is empty when its key is all zero. Robin Hood probing needs each
// resident's distance from its home slot; rather than store it (a separate
// array would cost a second cache miss per lookup, a byte in the slot would
// grow it past 104 bytes), a probe that meets a foreign key rehashes that key,
// which it has just read: two multiplications, no memory access.
type shard struct {
	slots []slot
	n     int // occupied slots
}

// slot is a key and its route: 104 bytes, no pointers.
type slot struct {
	key   SessionID
	route Route
}

// empty is the shard every shard pointer starts at: one empty slot, so
// lookups in an empty shard need no special case.
var empty = &shard{slots: make([]slot, 1)}

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
	if i, ok := s.find(&t.key, h, &id); ok {
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
// LookupBurst works in three passes over a chunk of ids: the first computes
// the home slots (arithmetic and shard pointers, all in cache), the second
// only loads each home slot's key, so that the chunk's cache and TLB misses
// are in flight together, and the third finishes the lookups, now mostly
// from the cache. Each load of the second pass is used by the third, so the
// compiler keeps it. Touching more of each slot in the second pass (the
// route's second line, the next slot) measured no better: the misses it
// adds compete for the same miss buffers and page walkers.
func (t *Table) LookupBurst(ids []SessionID, routes []Route, found []bool) int {
	_ = routes[:len(ids)]
	_ = found[:len(ids)]
	var (
		ss      [burstChunk]*shard
		homes   [burstChunk]uint32
		homeKey [burstChunk]uint64 // first half of the home slot's key
		hits    int
	)
	for base := 0; base < len(ids); base += burstChunk {
		chunk := ids[base:min(base+burstChunk, len(ids))]
		out := routes[base : base+len(chunk)]
		for j := range chunk {
			h := t.key.sum(&chunk[j])
			s := t.shards[h>>t.shift].Load()
			ss[j], homes[j] = s, s.home(h)
		}
		for j := range chunk {
			homeKey[j] = binary.LittleEndian.Uint64(ss[j].slots[homes[j]].key[0:8])
		}
		for j := range chunk {
			id := &chunk[j]
			s, i, ok := ss[j], homes[j], false
			switch {
			case *id == (SessionID{}):
				// The zero id would match an empty slot's key.
			case homeKey[j] == binary.LittleEndian.Uint64(id[0:8]) && s.slots[i].key == *id:
				ok = true
			default:
				i, ok = s.findFrom(&t.key, i, id)
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

// home returns the home slot of hash h: Lemire's multiply-shift maps the low
// 32 bits onto [0, len(slots)) without a division and without requiring a
// power-of-two size, so a shard can be sized exactly for its load.
func (s *shard) home(h uint64) uint32 {
	return uint32((h & math.MaxUint32) * uint64(len(s.slots)) >> 32)
}

// find returns the slot index holding id, whose hash is h.
func (s *shard) find(k *hashKey, h uint64, id *SessionID) (uint32, bool) {
	return s.findFrom(k, s.home(h), id)
}

// findFrom probes from home for id, which must not be zero. The key is
// compared first, so a hit in the home slot, the common case, reads nothing
// but that slot. On a mismatch, Robin Hood's invariant ends the search at an
// empty slot or as soon as the resident sits closer to its home than id
// would, so a miss costs about as many probes as a hit instead of a run to
// the next empty slot. The loop ends because no shard is ever full.
func (s *shard) findFrom(k *hashKey, i uint32, id *SessionID) (uint32, bool) {
	slots := s.slots
	n := uint32(len(slots))
	for d := uint32(1); ; d++ {
		key := &slots[i].key
		if *key == *id {
			return i, true
		}
		if *key == (SessionID{}) || s.distance(k, i) < d {
			return 0, false
		}
		if i++; i == n {
			i = 0
		}
	}
}

// distance returns 1 + how far occupied slot i is from its key's home slot.
func (s *shard) distance(k *hashKey, i uint32) uint32 {
	home := s.home(k.sum(&s.slots[i].key))
	if i >= home {
		return i - home + 1
	}
	return i + uint32(len(s.slots)) - home + 1
}
