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
	// the table size, plus its share of the compactions and of the huge
	// page faults of the table's chunks (see arena).
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
	// slotArena and sigArena hold the slot and signature arrays of every
	// shard but empty; liveSlots and liveBuckets are how many of their
	// elements the published shards use.
	slotArena              arena[slot]
	sigArena               arena[bucket]
	liveSlots, liveBuckets int
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
// the slot and its expiry are zero). A route lives in its home bucket, or
// when that is full in the first bucket after it with room, and every
// bucket it passed over carries the overflow mark (the top bit of lane 0):
// a lookup that finds no matching signature in a bucket without the mark
// is a miss and has read nothing but the signatures.
//
// What workers read of a route is in slots, one cache line each; what only
// the control core reads is in parallel cold arrays: expires[i] is slot
// i's Expires, and a route that does not fit a slot (see fits) is whole in
// spill, at the index its slot holds.
type shard struct {
	// What lookups read first, so that it shares the header's first
	// line.
	sigs    []bucket
	slots   []slot
	spill   []Route
	expires []int64
	n       int // occupied slots
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

// slot is a key and what a worker needs of its route, in 64 bytes: one
// cache line, and on a line of its own, since slot arrays are carved at
// multiples of 64 bytes from chunks that start on a 64-byte boundary
// (chunks from 512 bytes up are in size classes that are multiples of 64,
// in page-aligned spans, or are page-aligned large objects;
// TestSlotsAligned checks). A lookup of a table far larger than the cache
// then costs two misses, the signatures' line and this one, where the
// 104-byte key and Route it replaced spanned two or three lines and made
// the lookup wait on memory about twice as long.
//
// It holds an IPv4 route whole, but for its expiry (the cold expires
// array: workers never test it). An IPv6 route, whose addresses alone
// would take half the line, is spilled: its slot holds the key, the spill
// mark and, in src4, its index in the shard's spill array, where it is
// whole; its lookups cost one more line.
type slot struct {
	key             SessionID
	inPeer, inKey   uint32
	outKey, outPeer uint32
	port            uint16
	// vlan is the VLAN id in the low 12 bits (Validate keeps it below
	// 4095) and the bits of vlanMeta above.
	vlan           uint16
	dstMAC, srcMAC [6]byte
	// src4 and dst4 are the IPv4 addresses (SrcIP[12:16] and
	// DstIP[12:16]); src4 is the spill index of a spilled route.
	src4, dst4       [4]byte
	srcPort, dstPort uint16
	counter          uint32
}

// The bits a slot's vlan field holds above the VLAN id: the route's two
// Flags, EncapIP (EncapUDP without), and the spill mark. A new flag needs
// a bit here, or routes that carry it must be spilled.
const (
	vlanMask      = 0x0fff
	vlanFlagShift = 12
	vlanEncapIP   = 1 << 14
	vlanSpill     = 1 << 15
)

// fits reports whether r, a valid route, fits a slot without spilling.
func fits(r *Route) bool { return r.Family == IPv4 }

// set stores id and r, which must be valid and fit, in e.
func (e *slot) set(id *SessionID, r *Route) {
	vlan := r.VLAN | uint16(r.Flags)<<vlanFlagShift
	if r.Encap == EncapIP {
		vlan |= vlanEncapIP
	}
	*e = slot{
		key: *id, inPeer: r.IngressPeer, inKey: r.IngressKey, outKey: r.EgressKey, outPeer: r.EgressPeer,
		port: r.EgressPort, vlan: vlan, dstMAC: r.DstMAC, srcMAC: r.SrcMAC,
		src4: [4]byte(r.SrcIP[12:16]), dst4: [4]byte(r.DstIP[12:16]), srcPort: r.SrcPort, dstPort: r.DstPort,
		counter: r.Counter,
	}
}

// setSpilled stores id in e as a route spilled at index x.
func (e *slot) setSpilled(id *SessionID, x uint32) {
	*e = slot{key: *id, vlan: vlanSpill}
	binary.LittleEndian.PutUint32(e.src4[:], x)
}

// spilled returns e's spill index and whether e is spilled.
func (e *slot) spilled() (uint32, bool) {
	return binary.LittleEndian.Uint32(e.src4[:]), e.vlan&vlanSpill != 0
}

// route writes e's route to r, but for Expires, which it sets to 0: the
// copy a worker gets. Arrays are copied as integers (encoding/binary on
// constant offsets: single moves), since the compiler copies a small
// array through a temporary on the stack, which made this take twice as
// long.
func (s *shard) route(e *slot, r *Route) {
	if x, ok := e.spilled(); ok {
		*r = s.spill[x] // stored with Expires 0
		return
	}
	le := binary.LittleEndian
	r.IngressPeer, r.IngressKey, r.EgressKey, r.EgressPeer = e.inPeer, e.inKey, e.outKey, e.outPeer
	r.EgressPort, r.VLAN = e.port, e.vlan&vlanMask
	le.PutUint32(r.DstMAC[0:4], le.Uint32(e.dstMAC[0:4]))
	le.PutUint16(r.DstMAC[4:6], le.Uint16(e.dstMAC[4:6]))
	le.PutUint32(r.SrcMAC[0:4], le.Uint32(e.srcMAC[0:4]))
	le.PutUint16(r.SrcMAC[4:6], le.Uint16(e.srcMAC[4:6]))
	le.PutUint64(r.SrcIP[0:8], 0)
	le.PutUint64(r.SrcIP[8:16], v4Mapped|uint64(le.Uint32(e.src4[:]))<<32)
	le.PutUint64(r.DstIP[0:8], 0)
	le.PutUint64(r.DstIP[8:16], v4Mapped|uint64(le.Uint32(e.dst4[:]))<<32)
	r.SrcPort, r.DstPort = e.srcPort, e.dstPort
	r.Family, r.Encap, r.Flags = IPv4, EncapUDP+Encap(e.vlan>>14&1), Flags(e.vlan>>vlanFlagShift)&knownFlags
	r.Counter = e.counter
	r.Expires = 0
}

// v4Mapped is bytes 8 to 15 of an IPv4-mapped address (::ffff:a.b.c.d) but
// for the IPv4 address, as a little-endian word: 0xff at bytes 10 and 11.
const v4Mapped = 0xffff_0000

// full returns the whole route of occupied slot i, Expires included: the
// control core's copy.
func (s *shard) full(i uint32) Route {
	var r Route
	s.route(&s.slots[i], &r)
	r.Expires = s.expires[i]
	return r
}

// empty is the shard every shard pointer starts at: one empty bucket, so
// lookups in an empty shard need no special case.
var empty = &shard{sigs: make([]bucket, 1), slots: make([]slot, bucketSlots), expires: make([]int64, bucketSlots)}

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
	full := bucketsFor(maxRoutes) // buckets of a full table, roughly
	t := &Table{
		key:        newHashKey(),
		shift:      uint(64 - log2(shards)),
		max:        maxRoutes,
		shards:     make([]atomic.Pointer[shard], shards),
		minExpires: make([]int64, shards),
		slotArena:  newArena[slot](slotBytes, full*bucketSlots*slotBytes),
		sigArena:   newArena[bucket](bucketBytes, full*bucketBytes),
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
		return s.full(i), true
	}
	return Route{}, false
}

// burstChunk is how many lookups LookupBurst starts before it finishes any:
// a whole 32-frame receive burst, with scratch arrays small enough for the
// stack.
const burstChunk = 32

// LookupBurst looks up ids[i] into routes[i] and found[i] for each i, for a
// worker's whole receive burst. routes and found must be at least as long as
// ids. It returns the number of ids found. A route it finds has every field
// but Expires, which it leaves 0: expiries sit in a cold array that workers
// never read (see Route.Expires), and Lookup gives them.
//
// On a table larger than the cache a lookup waits on memory twice, for its
// bucket's signatures (2 bytes a slot: a million routes' take 3 MB) and
// then for its slot, and lookups made one after another wait one after
// another. LookupBurst works in passes over a chunk of ids, so that the
// misses of the whole chunk are in flight together: it hashes every id and
// finds its bucket (arithmetic and shard pointers, all in cache); loads
// every bucket's signatures; finds in them each id's candidate slot, the
// one whose signature matches; loads every candidate's first word; then
// compares the keys and copies the routes out, from the cache. The passes
// that load do nothing else, so that the CPU's window holds the loads of
// the whole chunk rather than of the few iterations of a longer loop that
// fit in it, and no branch waits on a load still in flight (one that did,
// mispredicted, threw away the loads issued after it). A miss whose bucket
// has no matching signature and no overflow mark reads no slot at all.
// Each load is used by a later pass, so the compiler keeps it (Go has no
// prefetch instruction).
func (t *Table) LookupBurst(ids []SessionID, routes []Route, found []bool) int {
	_ = routes[:len(ids)]
	_ = found[:len(ids)]
	var (
		ss    [burstChunk]*shard
		bs    [burstChunk]uint32
		sigs  [burstChunk]uint64
		bp    [burstChunk]*bucket
		w0    [burstChunk]uint64 // the bucket's first signature word
		sp    [burstChunk]*slot  // the candidate slot, or noSlot
		first [burstChunk]uint64 // first half of that slot's key
		hits  int
	)
	for base := 0; base < len(ids); base += burstChunk {
		chunk := ids[base:min(base+burstChunk, len(ids))]
		out := routes[base : base+len(chunk)]
		for j := range chunk {
			h := t.key.sum(&chunk[j])
			s := t.shards[h>>t.shift].Load()
			b := s.home(h)
			ss[j], bs[j], sigs[j], bp[j] = s, b, sigOf(h), &s.sigs[b]
		}
		for j := range chunk {
			w0[j] = bp[j][0]
		}
		for j := range chunk {
			sp[j] = &noSlot
			b := bs[j] * bucketSlots
			if m := match(w0[j], sigs[j]); m != 0 {
				sp[j] = &ss[j].slots[b+uint32(bits.TrailingZeros64(m)/16)]
			} else if m := match(bp[j][1], sigs[j]); m != 0 {
				sp[j] = &ss[j].slots[b+4+uint32(bits.TrailingZeros64(m)/16)]
			}
		}
		for j := range chunk {
			first[j] = binary.LittleEndian.Uint64(sp[j].key[0:8])
		}
		for j := range chunk {
			id := &chunk[j]
			s, e := ss[j], sp[j]
			switch {
			case first[j] == binary.LittleEndian.Uint64(id[0:8]) && e.key == *id && e != &noSlot:
			case e == &noSlot && w0[j]&overMark == 0:
				// No signature matched and nothing overflowed: a miss.
				e = nil
			default:
				e = nil
				if i, ok := s.find0(bs[j], sigs[j], id); ok {
					e = &s.slots[i]
				}
			}
			if e != nil {
				s.route(e, &out[j])
				hits++
			} else {
				out[j] = Route{}
			}
			found[base+j] = e != nil
		}
	}
	return hits
}

// noSlot is the slot LookupBurst loads for an id whose bucket has no
// matching signature: a zero key, which no id looked up equals but the
// zero id, which the comparison then refuses by address.
var noSlot slot

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
