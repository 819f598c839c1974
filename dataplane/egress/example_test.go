package egress_test

import (
	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/egress"
	"github.com/poolrelay/poolrelay/sched"
)

// A worker's loop with one egress Port per port it sends on: every frame
// goes through its egress port's class queues, and every Port is drained
// before each Cycle, which sends.
func Example() {
	var (
		eal   *dpdk.EAL    // from dpdk.Init
		ports []*dpdk.Port // from EAL.OpenPort
		w     *dpdk.Worker // this worker, number i
		i     int
		cfg   = sched.DefaultConfig()
	)
	tx := make([]dpdk.Queue, len(ports))
	for p, port := range ports {
		tx[p] = port.TxQueue(i)
	}
	b, err := eal.NewBurst(dpdk.BurstConfig{Size: 32, Tx: tx, Socket: -1, KeepRefused: true, CollectInject: true})
	if err != nil {
		return
	}
	eg := make([]*egress.Port[*dpdk.Burst], len(ports))
	for p, port := range ports {
		_, txd := port.Descriptors()
		eg[p], err = egress.New(b, p, egress.Config{Sched: cfg, EgressRateMbps: 9500, TxQueues: 2,
			LinkMbps: 10_000, TxDescriptors: txd, TicksPerSecond: eal.TSCHz()}, int64(b.TSC()), zerolog.Nop())
		if err != nil {
			return
		}
	}
	for !w.Stopping() {
		for _, port := range ports {
			for _, e := range eg {
				e.Drain(int64(b.TSC()))
			}
			ms := b.Cycle(port.RxQueue(i))
			now := int64(b.TSC())
			for _, m := range ms {
				// Parse, verify, look up the route, rewrite; then the
				// class of the peer the frame is relayed for:
				out, class := 0, sched.Normal
				eg[out].Enqueue(m, class, now)
			}
		}
	}
	for _, e := range eg {
		e.Drain(int64(b.TSC()))
	}
	b.Flush()
	for _, e := range eg {
		e.Close()
	}
	b.Close()
}
