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
