package dpdk

// IO is a worker's packet I/O as the worker (relay.Worker) and its egress
// (egress.Port) use it between two flushes: *Burst is the real one, and
// dpdk/bursttest has an in-memory one that runs without DPDK, cgo or root.
//
// Every method works on a whole burst or a whole TX buffer, never on one
// frame: a layer generic over its IO (relay.Worker[B], egress.Port[B])
// calls B's methods through the instantiation's dictionary, an indirect
// call the compiler cannot inline, so the per-frame work stays on plain
// data (the mbufs' own accessors and the caller's arrays) and only the
// hand-over of each burst's results crosses the seam.
type IO interface {
	// Size is the most frames one receive returns and one TX buffer,
	// the drop and the punt arrays hold between flushes.
	Size() int
	// TSC is the clock read at the end of the last flush, in the ticks
	// the caller configured its egress with.
	TSC() uint64
	// Flushes counts the flushes so far.
	Flushes() uint64
	// Opts are the KeepRefused and CollectInject settings.
	Opts() (keepRefused, collectInject bool)
	// InDPDKMemory reports whether the frames it hands out are in DPDK's
	// memory, which C code may hold across a call (a GMACBatch does); Go
	// memory may not be, by cgo's pointer rules.
	InDPDKMemory() bool
	// SendBurst queues ms, in order, on TX buffer tx.
	SendBurst(tx int, ms []*Mbuf)
	// DropBurst queues ms to be freed by the next flush.
	DropBurst(ms []*Mbuf)
	// PuntBurst queues ms for the punt ring.
	PuntBurst(ms []*Mbuf)
	// Pending is the frames waiting on TX buffer tx for the next flush.
	Pending(tx int) int
	// Unsend takes the last n pending frames off TX buffer tx.
	Unsend(tx, n int)
	// TakeInjected returns up to max collected inject frames of tx.
	TakeInjected(tx, max int) []*Mbuf
	// Flush sends, frees and punts what is queued.
	Flush()
	// FreeBulk frees ms at once (frames taken off every queue, as a
	// closing egress does).
	FreeBulk(ms []*Mbuf)
}

var _ IO = (*Burst)(nil)
