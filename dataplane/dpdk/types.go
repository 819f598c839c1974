package dpdk

// MaxBurst is the largest Burst size (PR_BURST_MAX in shim.h): the
// largest [dataplane] burst the configuration accepts.
const MaxBurst = 512

// Queue names one RX or TX queue of a port. Port.RxQueue and Port.TxQueue
// return checked ones.
type Queue struct {
	Port uint16
	ID   uint16
}

// Stats are a port's basic counters (struct rte_eth_stats), cumulative
// since the port started.
type Stats struct {
	RxPackets uint64 // frames received
	TxPackets uint64 // frames sent
	RxBytes   uint64
	TxBytes   uint64
	RxMissed  uint64 // frames the device dropped because RX queues were full
	RxErrors  uint64 // erroneous frames received
	TxErrors  uint64 // frames that failed to send
	RxNoMbuf  uint64 // RX allocation failures: the mempool ran dry
}

// Link is a port's link status.
type Link struct {
	Up         bool
	SpeedMbps  uint32 // 0 when unknown
	FullDuplex bool
	Autoneg    bool
}

// XStat is one extended statistic of a port: a PMD-specific name and its
// value.
type XStat struct {
	Name  string
	Value uint64
}

// BurstStats are a Burst's cumulative counters. The worker owning the Burst
// writes them; read them from that worker, or accept that another goroutine
// sees values a few bursts old.
type BurstStats struct {
	Rx       uint64 // frames received by Cycle
	Tx       uint64 // frames the PMDs accepted for sending
	TxUnsent uint64 // frames the PMDs refused (TX queue full) and were freed
	// TxRefused counts refusals of frames kept for a retry
	// (BurstConfig.KeepRefused): a frame refused twice counts twice.
	TxRefused uint64
	Injected  uint64 // frames taken from inject rings (sent, refused, or collected)
	Dropped   uint64 // frames freed through Drop
	Punted    uint64 // frames enqueued on the punt ring
	PuntFull  uint64 // frames freed because the punt ring was full or absent
}

// RingMode says which sides of a ring may be used by several threads at
// once. A single-producer or single-consumer side uses no atomic
// read-modify-write; choose it only where it is the truth.
type RingMode int

const (
	// RingSPSC: one producer and one consumer at a time, e.g. the punt
	// ring from one worker to the control core, or an inject ring from the
	// control core to one worker.
	RingSPSC RingMode = iota
	// RingMPMC: any number of producers and consumers.
	RingMPMC
)

// BurstConfig describes a worker's Burst.
type BurstConfig struct {
	// Size is the most frames one Cycle receives, 1 to MaxBurst (32 is
	// DPDK's usual burst). Every TX buffer holds Size frames.
	Size int
	// Tx are the TX queues the worker sends on; the index into Tx is the
	// tx argument of Send. A worker owns its TX queues: no other thread
	// may send on them.
	Tx []Queue
	// Inject optionally gives TX buffer i an inject ring (nil entries and
	// a shorter slice mean none): each flush tops the buffer up from it,
	// so frames the control core builds go out on the worker's own queue.
	Inject []*Ring
	// Punt is the ring Punt hands frames to (nil: punted frames are freed
	// and counted as PuntFull).
	Punt *Ring
	// Socket is the NUMA socket for the Burst's arrays (-1: any); use the
	// worker core's socket.
	Socket int

	// KeepRefused keeps the frames a PMD refuses (its TX ring is full)
	// instead of freeing them: they stay at the head of their TX buffer,
	// in order, Pending counts them after the flush, and the next flush
	// sends them first, ahead of anything queued since. A caller that
	// keeps its own queues can take them back with Unsend instead. The
	// default (false) frees them and counts them as TxUnsent.
	KeepRefused bool
	// CollectInject hands the frames of the inject rings to the worker
	// instead of sending them: each flush moves up to Size frames from
	// buffer i's ring into a collect array, which TakeInjected empties,
	// and moves more only once the worker took all of them. The worker can
	// then queue control frames with its own (an egress scheduler's
	// Control class), so that its shaper counts them and a full NIC ring
	// keeps them. The default (false) tops the TX buffer up from the ring
	// on every flush.
	CollectInject bool
}

// l2Overhead is what an Ethernet frame adds to its IP MTU in an mbuf:
// the 14-byte header and two VLAN tags (802.1ad + 802.1Q). PMDs strip the
// CRC by default.
const l2Overhead = 14 + 2*4

// DataRoomFor is the mbuf buffer size (Headroom included) a pool needs for
// a port of IP MTU mtu to receive its largest frame in one mbuf: the
// default, DefaultDataRoom, up to an MTU of 2026, more above. The relay
// handles a frame as one segment (no scatter), so a jumbo port's pool
// must be sized for it.
func DataRoomFor(mtu int) int {
	return max(DefaultDataRoom, mtu+l2Overhead+Headroom)
}

// MbufHeaderLen is the size of an mbuf's header, struct rte_mbuf, before
// its buffer: what a mempool element takes beyond DataRoom.
const MbufHeaderLen = mbufSize
