package sched

// entry is one queued frame: the caller's handle and the bytes it is charged.
type entry struct {
	h   Handle
	len uint32
}

// ring is a fixed-capacity FIFO of entries, its storage a power of two at
// least as large as its limit.
type ring struct {
	e     []entry
	mask  uint32
	limit uint32 // entries Enqueue accepts
	pos
}

// pos is the part of a ring that dequeuing changes, which Requeue rewinds.
// Popping leaves an entry where it was, so rewinding pos brings it back.
type pos struct {
	head    uint32 // index of the oldest entry, free-running
	tail    uint32 // index after the newest entry, free-running
	bytes   uint64 // bytes queued
	deficit int64  // deficit round robin credit, bytes
}

func newRing(limit int) ring {
	size := 1
	for size < limit {
		size <<= 1
	}
	return ring{e: make([]entry, size), mask: uint32(size - 1), limit: uint32(limit)}
}

// n is the number of entries queued.
func (r *ring) n() uint32 { return r.tail - r.head }

func (r *ring) push(x entry) {
	r.e[r.tail&r.mask] = x
	r.tail++
	r.bytes += uint64(x.len)
}

func (r *ring) pop() entry {
	x := r.e[r.head&r.mask]
	r.head++
	r.bytes -= uint64(x.len)
	return x
}

// headLen is the length of the oldest entry; the ring must not be empty.
func (r *ring) headLen() uint32 { return r.e[r.head&r.mask].len }
