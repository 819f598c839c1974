package route

import (
	"fmt"
	"math"
	"math/bits"
	"reflect"
	"slices"
	"time"
)

// Batch collects route changes that Table.Apply installs together: each
// shard the batch touches is copied once, however many of its routes
// change, so a bulk install of n routes costs O(n) rather than O(n) shard
// copies. A Batch is not safe for concurrent use; reuse it with Reset.
type Batch struct {
	ops []op
}

type op struct {
	id    SessionID
	route Route
	del   bool
}

// Put adds or replaces the route of id.
func (b *Batch) Put(id SessionID, r Route) { b.ops = append(b.ops, op{id: id, route: r}) }

// Delete removes the route of id, if there is one.
func (b *Batch) Delete(id SessionID) { b.ops = append(b.ops, op{id: id, del: true}) }

// Len returns the number of changes in the batch.
func (b *Batch) Len() int { return len(b.ops) }

// Reset empties the batch and keeps its memory.
func (b *Batch) Reset() { b.ops = b.ops[:0] }

// Put adds or replaces the route of id. It copies one shard.
func (t *Table) Put(id SessionID, r Route) error {
	b := Batch{ops: []op{{id: id, route: r}}}
	return t.Apply(&b)
}

// Delete removes the route of id and reports whether there was one. It
// copies one shard when there was.
func (t *Table) Delete(id SessionID) bool {
	if id == (SessionID{}) {
		return false
	}
	h := t.key.sum(&id)
	t.mu.Lock()
	defer t.mu.Unlock()
	si := int(h >> t.shift)
	if _, ok := t.shards[si].Load().find(h, &id); !ok {
		return false
	}
	t.applyLocked([]pending{{shard: si, h: h, op: &op{id: id, del: true}}})
	return true
}

// pending is one change of a batch with its hash, grouped by shard.
type pending struct {
	shard int
	h     uint64
	op    *op
}

// Apply installs the changes of b in order (a later change of the same id
// wins). It validates everything first and either applies the whole batch or
// returns an error and changes nothing: ErrZeroID, ErrInvalidRoute, or ErrFull
// when the table would end with more than Max routes.
//
// Each shard is published as soon as it is rebuilt, so a concurrent reader
// can see the batch's changes to one shard before those to another; every
// single route is always seen whole.
func (t *Table) Apply(b *Batch) error {
	ps := make([]pending, 0, len(b.ops))
	for i := range b.ops {
		o := &b.ops[i]
		if o.id == (SessionID{}) {
			return fmt.Errorf("route: change %d: %w", i, ErrZeroID)
		}
		if !o.del {
			if err := o.route.Validate(); err != nil {
				return fmt.Errorf("route: change %d: %w", i, err)
			}
		}
		h := t.key.sum(&o.id)
		ps = append(ps, pending{shard: int(h >> t.shift), h: h, op: o})
	}
	ps = t.byShard(ps)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.applyLocked(ps)
}

// byShard returns ps grouped by shard in shard order, by counting sort: O(n)
// for a bulk install of any size, and stable, so that the changes of one id
// keep their order.
func (t *Table) byShard(ps []pending) []pending {
	if len(ps) < 2 {
		return ps
	}
	start := make([]int, len(t.shards)+1)
	for _, p := range ps {
		start[p.shard+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	out := make([]pending, len(ps))
	for _, p := range ps {
		out[start[p.shard]] = p
		start[p.shard]++
	}
	return out
}

// applyLocked rebuilds every shard that ps touches, and publishes them all if
// the table stays within its maximum. ps is sorted by shard.
func (t *Table) applyLocked(ps []pending) error {
	type rebuilt struct {
		shard      int
		s          *shard
		minExpires int64
	}
	var (
		out    []rebuilt
		delta  int
		chunks = t.slotArena.chunks + t.sigArena.chunks
	)
	for len(ps) > 0 {
		n := 1
		for n < len(ps) && ps[n].shard == ps[0].shard {
			n++
		}
		si := ps[0].shard
		old := t.shards[si].Load()
		s := t.change(old, ps[:n])
		delta += s.n - old.n
		out = append(out, rebuilt{si, s, s.minExpires()})
		ps = ps[n:]
	}
	if total := int(t.n.Load()) + delta; total > t.max {
		return fmt.Errorf("route: %d routes would exceed the maximum of %d: %w", total, t.max, ErrFull)
	}
	for _, r := range out {
		old := t.shards[r.shard].Load()
		t.liveSlots += len(r.s.arenaSlots()) - len(old.arenaSlots())
		t.liveBuckets += len(r.s.arenaSigs()) - len(old.arenaSigs())
		t.shards[r.shard].Store(r.s)
		t.minExpires[r.shard] = r.minExpires
	}
	t.n.Add(int64(delta))
	// A change of a shard or two takes at most a chunk from each arena;
	// more is a bulk install, whose table compaction lays out in one run.
	if t.slotArena.chunks+t.sigArena.chunks > chunks+2 ||
		t.slotArena.wasteful(t.liveSlots) || t.sigArena.wasteful(t.liveBuckets) {
		t.compactLocked()
	}
	return nil
}

// arenaSlots and arenaSigs return s's arrays that come from the table's
// arenas: all of them but empty's.
func (s *shard) arenaSlots() []slot {
	if s == empty {
		return nil
	}
	return s.slots
}

func (s *shard) arenaSigs() []bucket {
	if s == empty {
		return nil
	}
	return s.sigs
}

// compactLocked copies every shard's slots and signatures into fresh
// chunks, one per arena, and publishes the copies, so that the chunks the
// old arrays kept alive can be freed (see arena). A reader sees each shard
// before or after, and both hold the same routes. The expiry and spill
// arrays are shared with the old shard: published shards are never
// written.
func (t *Table) compactLocked() {
	t.slotArena.reset(t.liveSlots)
	t.sigArena.reset(t.liveBuckets)
	for si := range t.shards {
		s := t.shards[si].Load()
		if s == empty {
			continue
		}
		t.shards[si].Store(&shard{
			sigs: t.sigArena.clone(s.sigs), slots: t.slotArena.clone(s.slots),
			spill: s.spill, expires: s.expires, n: s.n,
		})
	}
}

// change returns a new shard: old with the changes ps applied. old is not
// modified.
func (t *Table) change(old *shard, ps []pending) *shard {
	puts := 0
	for _, p := range ps {
		if !p.op.del {
			puts++
		}
	}
	var s *shard
	if need := old.n + puts; float64(need) > maxLoad*float64(len(old.slots)) {
		s = t.resized(old, bucketsFor(need))
	} else {
		s = t.clone(old)
	}
	for _, p := range ps {
		if p.op.del {
			s.remove(p.h, &p.op.id)
		} else {
			s.put(p.h, &p.op.id, &p.op.route)
		}
	}
	switch {
	case s.n == 0:
		return empty
	case len(s.sigs) > minBuckets && float64(s.n) < minLoad*float64(len(s.slots)):
		return t.resized(s, bucketsFor(s.n))
	}
	return s
}

// bucketsFor returns the number of buckets for n routes at rebuildLoad.
func bucketsFor(n int) int {
	return max(minBuckets, int(math.Ceil(float64(n)/(rebuildLoad*bucketSlots))))
}

// clone returns a private copy of s, its slots and signatures in the
// table's arenas. The spill array is copied compacted: the entries of
// routes since deleted or replaced by ones that fit a slot are dropped, so
// it never holds more than the shard's spilled routes and the changes of
// one update.
func (t *Table) clone(s *shard) *shard {
	c := &shard{sigs: t.sigArena.clone(s.sigs), slots: t.slotArena.clone(s.slots), expires: slices.Clone(s.expires), n: s.n}
	if len(s.spill) == 0 {
		return c
	}
	c.spill = make([]Route, 0, len(s.spill))
	for i := range c.slots {
		e := &c.slots[i]
		if x, ok := e.spilled(); ok {
			id := e.key
			e.setSpilled(&id, uint32(len(c.spill)))
			c.spill = append(c.spill, s.spill[x])
		}
	}
	return c
}

// resized returns a copy of s with size buckets, every route rehashed into
// it (which also drops overflow marks that deletes left behind).
func (t *Table) resized(s *shard, size int) *shard {
	ns := &shard{sigs: t.sigArena.alloc(size), slots: t.slotArena.alloc(size * bucketSlots), expires: make([]int64, size*bucketSlots)}
	for i := range s.slots {
		if e := &s.slots[i]; e.key != (SessionID{}) {
			r := s.full(uint32(i))
			ns.put(t.key.sum(&e.key), &e.key, &r)
		}
	}
	return ns
}

// put adds or replaces id, whose hash is h, in s, which must not be
// published yet and must have an empty slot: in the first bucket from its
// home with room, marking every full bucket it passes over.
func (s *shard) put(h uint64, id *SessionID, r *Route) {
	if i, ok := s.find(h, id); ok {
		s.store(i, id, r)
		return
	}
	n := uint32(len(s.sigs))
	b, sig := s.home(h), sigOf(h)
	for {
		w := &s.sigs[b]
		for half := range uint32(2) {
			if m := free(w[half]); m != 0 {
				lane := uint32(bits.TrailingZeros64(m) / 16)
				w[half] |= sig << (16 * lane)
				s.store(b*bucketSlots+half*4+lane, id, r)
				s.n++
				return
			}
		}
		w[0] |= overMark
		if b++; b == n {
			b = 0
		}
	}
}

// store writes id and r to slot i, empty or id's own, of s, which must not
// be published yet: in the slot when r fits, else in the spill array (in
// place when the slot's route was spilled already).
func (s *shard) store(i uint32, id *SessionID, r *Route) {
	s.expires[i] = r.Expires
	e := &s.slots[i]
	if fits(r) {
		e.set(id, r)
		return
	}
	sr := *r
	sr.Expires = 0 // kept in expires, like every route's
	x, ok := e.spilled()
	if ok {
		s.spill[x] = sr
	} else {
		x = uint32(len(s.spill))
		s.spill = append(s.spill, sr)
	}
	e.setSpilled(id, x)
}

// remove deletes id, whose hash is h, from s, which must not be published
// yet. Overflow marks stay (a later route may rely on them); a rebuild
// drops the stale ones.
func (s *shard) remove(h uint64, id *SessionID) {
	i, ok := s.find(h, id)
	if !ok {
		return
	}
	b, lane := i/bucketSlots, i%bucketSlots
	s.sigs[b][lane/4] &^= 0x7fff << (16 * (lane % 4))
	s.slots[i] = slot{}
	s.expires[i] = 0
	s.n--
}

// minExpires returns the earliest non-zero Expires of s, or math.MaxInt64.
func (s *shard) minExpires() int64 {
	m := int64(math.MaxInt64)
	for _, x := range s.expires {
		if x != 0 && x < m {
			m = x
		}
	}
	return m
}

// Sweep removes every route whose Expires is not after now and returns how
// many it removed. Shards with nothing due are skipped without being read,
// so a sweep with nothing to do costs one comparison per shard. now comes
// from the control core's clock.
func (t *Table) Sweep(now time.Time) int {
	ns := now.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	removed := 0
	var ps []pending
	var ops []op
	for si := range t.shards {
		if t.minExpires[si] > ns {
			continue
		}
		s := t.shards[si].Load()
		ps, ops = ps[:0], ops[:0]
		for i, x := range s.expires {
			if x != 0 && x <= ns {
				ops = append(ops, op{id: s.slots[i].key, del: true})
			}
		}
		for i := range ops {
			ps = append(ps, pending{shard: si, h: t.key.sum(&ops[i].id), op: &ops[i]})
		}
		if len(ps) == 0 {
			t.minExpires[si] = s.minExpires()
			continue
		}
		// Deletes never fail, so applyLocked cannot refuse.
		_ = t.applyLocked(ps)
		removed += len(ps)
	}
	return removed
}

// Range calls fn for each route until fn returns false. Each shard is read
// from one snapshot; routes changed during the walk may or may not be seen.
// It is meant for the control core (listing routes), not for workers.
func (t *Table) Range(fn func(id SessionID, r Route) bool) {
	for si := range t.shards {
		s := t.shards[si].Load()
		for i := range s.slots {
			if s.slots[i].key != (SessionID{}) && !fn(s.slots[i].key, s.full(uint32(i))) {
				return
			}
		}
	}
}

// Stats describes a table's size and shape.
type Stats struct {
	// Routes is the number of routes.
	Routes int
	// Shards is the number of shards.
	Shards int
	// Slots is the number of slots over all shards.
	Slots int
	// Bytes is the memory the table holds: slot, signature, expiry and
	// spill arrays, shard headers and the shard pointer array.
	Bytes int
	// ChunkBytes is the memory of the slot and signature chunks allocated
	// since the table last compacted: what its arrays, old ones included,
	// can keep from the garbage collector (see arena). HugeBytes is the
	// part of it advised for transparent huge pages.
	ChunkBytes, HugeBytes int
	// MaxProbe is the longest distance in buckets of a route from its home
	// bucket plus one: the most buckets a lookup of an installed route
	// reads.
	MaxProbe int
}

// Load returns Routes/Slots.
func (s Stats) Load() float64 {
	if s.Slots == 0 {
		return 0
	}
	return float64(s.Routes) / float64(s.Slots)
}

// BytesPerRoute returns Bytes/Routes.
func (s Stats) BytesPerRoute() float64 {
	if s.Routes == 0 {
		return 0
	}
	return float64(s.Bytes) / float64(s.Routes)
}

// Sizes of the table's parts, for Stats. reflect, not unsafe: unsafe is
// confined to the DPDK binding.
var (
	slotBytes    = int(reflect.TypeFor[slot]().Size())
	expiresBytes = int(reflect.TypeFor[int64]().Size())
	routeBytes   = int(reflect.TypeFor[Route]().Size())
	bucketBytes  = int(reflect.TypeFor[bucket]().Size())
	shardBytes   = int(reflect.TypeFor[shard]().Size())
	pointerSize  = int(reflect.TypeFor[*shard]().Size())
)

// Stats walks the table and returns its figures. It rehashes every route,
// so it is for the control core and benchmarks, not for a hot path.
func (t *Table) Stats() Stats {
	st := Stats{Shards: len(t.shards), Bytes: len(t.shards) * pointerSize}
	t.mu.Lock()
	st.ChunkBytes = t.slotArena.chunkBytes + t.sigArena.chunkBytes
	st.HugeBytes = t.slotArena.hugeBytes + t.sigArena.hugeBytes
	t.mu.Unlock()
	for si := range t.shards {
		s := t.shards[si].Load()
		st.Routes += s.n
		if s == empty {
			continue
		}
		st.Slots += len(s.slots)
		st.Bytes += len(s.slots)*slotBytes + len(s.sigs)*bucketBytes + len(s.expires)*expiresBytes + len(s.spill)*routeBytes + shardBytes
		for i := range s.slots {
			if s.slots[i].key != (SessionID{}) {
				st.MaxProbe = max(st.MaxProbe, int(s.probe(&t.key, uint32(i))))
			}
		}
	}
	return st
}
