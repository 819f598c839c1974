package route

// arena hands out the slot and signature arrays of shards from large
// chunks, so that a big table's arrays lie in a few long runs of memory
// that the kernel can back with transparent huge pages (see adviseHuge).
//
// Why: a lookup in a table far larger than the cache reads a random slot,
// and on 4 KiB pages a random slot of a million-route table (some 90 MB of
// slots, 23 000 pages) is also a TLB miss. The CPU walks the page tables
// for it, and it has only a few page walkers: the 32 lookups of a burst,
// whose memory loads LookupBurst issues together, queue behind them. On
// 2 MiB pages the slots take some 45 TLB entries, which the second-level
// TLB holds. The Go runtime does not ask for huge pages itself (it stopped
// in Go 1.21.1), and this machine's kernel, like Debian's default, gives
// them only to memory advised with MADV_HUGEPAGE.
//
// Arrays are carved from the current chunk in order and never returned:
// a shard copied on an update leaves its old arrays in their chunk, which
// the garbage collector frees once no shard (and no reader still holding
// an old shard) points into it. So that a table updated for ever does not
// pin ever more chunks, the table compacts when what it has carved since
// its last compaction exceeds twice what its published shards use: it
// copies every shard into one fresh chunk per arena and publishes the
// copies (see Table.compactLocked). It also compacts after an update that
// filled more than one chunk, a bulk install, so that the table it built
// lies in one run of memory of just its size rather than in chunks of
// growing sizes, the last one partly empty. The memory a table pins is then at most about
// three times what it uses plus a chunk, and the copy costs an update, on
// average, half a shard copy more.
//
// The huge pages cost the control core: a fault of a 2 MiB page zeroes it
// whole, and on a VM the first touch of guest memory never used before
// costs the host's faults too (several ms per 2 MiB page measured on the
// development VM, against ~0.3 ms for memory the Go heap reuses), so
// updates that grow the heap into fresh memory are several times dearer
// than on 4 KiB pages (bench/dataplane/README.md has the figures).
//
// An arena is guarded by the table's mutex.
type arena[T any] struct {
	cur      []T // the chunk being carved: len is what is handed out
	elemSize int
	min, max int // chunk bounds, in elements
	// used is the elements carved since the last compaction, in all
	// chunks, including the current one.
	used int
	// chunks counts the chunks allocated, for Table.applyLocked.
	chunks int
	// chunkBytes is the bytes of the chunks allocated since the last
	// compaction; hugeBytes the part of them advised for huge pages.
	chunkBytes, hugeBytes int
}

// Chunk bounds in bytes. A chunk of at least maxChunkBytes covers seven
// 2 MiB pages wherever the Go runtime places it (large objects are
// page-aligned, not 2 MiB-aligned); a chunk under 2 MiB covers none, but
// then so little memory is at stake that the TLB holds all of it.
const (
	minChunkBytes = 256 << 10
	maxChunkBytes = 16 << 20
)

// newArena returns an arena of T, each elemSize bytes, for a table whose
// arrays of T take at most maxBytes when full: small tables get small
// chunks.
func newArena[T any](elemSize, maxBytes int) arena[T] {
	lo := max(1, min(minChunkBytes, maxBytes)/elemSize)
	return arena[T]{elemSize: elemSize, min: lo, max: max(lo, min(maxChunkBytes, maxBytes)/elemSize)}
}

// alloc returns n zeroed elements, of capacity n, so that an append
// cannot reach into the next array.
func (a *arena[T]) alloc(n int) []T {
	if n > cap(a.cur)-len(a.cur) {
		// Chunks grow with the table: a bulk install of a million routes
		// ends in 16 MiB chunks, one of a thousand routes uses 256 KiB.
		a.newChunk(max(n, min(a.max, max(a.min, a.used))))
	}
	l := len(a.cur)
	a.cur = a.cur[:l+n]
	a.used += n
	return a.cur[l : l+n : l+n]
}

// clone returns a copy of s carved from the arena.
func (a *arena[T]) clone(s []T) []T {
	c := a.alloc(len(s))
	copy(c, s)
	return c
}

func (a *arena[T]) newChunk(n int) {
	a.cur = make([]T, 0, n)
	a.chunks++
	bytes := n * a.elemSize
	a.chunkBytes += bytes
	a.hugeBytes += adviseHuge(a.cur[:n])
}

// reset starts a compaction that will carve live elements: one chunk that
// holds them all, so that the compacted table is one run of memory.
func (a *arena[T]) reset(live int) {
	a.used, a.chunkBytes, a.hugeBytes = 0, 0, 0
	a.cur = nil
	if live > 0 {
		a.newChunk(live)
	}
}

// wasteful reports whether the arena has carved so much more than live
// elements, the ones published shards use, that the table should compact.
func (a *arena[T]) wasteful(live int) bool {
	return a.used > 2*live+a.max
}
