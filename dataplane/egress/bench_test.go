package egress

import (
	"runtime"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/internal/cputime"
	"github.com/poolrelay/poolrelay/sched"
)

// BenchmarkEnqueueDrain is the worker's loop on net_null, 32-frame bursts
// of 128-byte frames: receive, then either send every frame directly (the
// baseline) or enqueue it in one of three classes and drain the Port. The
// difference of the ns/pkt figures is what the egress scheduler costs per
// frame, DPDK's own work included in both. "shaped" shapes to 1 Gbit/s, so
// most frames are dropped at full queues (freed through the Burst): the
// overload path. cpu-ns/pkt is the same on the thread's CPU time, which
// stands still while other processes hold the core: steadier on a shared
// machine.
func BenchmarkEnqueueDrain(b *testing.B) {
	needDPDK(b)
	classes := [...]sched.Class{sched.Priority, sched.Normal, sched.Deprioritised, sched.Normal}
	for _, tc := range []struct {
		name   string
		egress bool
		rate   int
		burst  bool // EnqueueBurst, not Enqueue per frame
	}{{"direct", false, 0, false}, {"egress", true, 0, false}, {"egress_burst", true, 0, true}, {"egress_shaped", true, 1000, false}} {
		b.Run(tc.name, func(b *testing.B) {
			burst := newBurst(b, 32, env.null.TxQueue(0), nil)
			cfg := testConfig(tc.rate)
			cfg.TicksPerSecond = env.EAL.TSCHz()
			p := newPort(b, burst, cfg)
			rxq := env.null.RxQueue(0)
			cs, queued := make([]sched.Class, 32), make([]bool, 32)
			for j := range cs {
				cs[j] = classes[j&3]
			}
			frames := 0
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0, _ := cputime.Thread()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ms := burst.Cycle(rxq)
				frames += len(ms)
				if !tc.egress {
					burst.SendBurst(0, ms)
					continue
				}
				now := int64(burst.TSC())
				if tc.burst {
					p.EnqueueBurst(ms, cs, now, queued)
				} else {
					for j, m := range ms {
						p.Enqueue(m, classes[j&3], now)
					}
				}
				p.Drain(now)
			}
			b.StopTimer()
			cpu1, _ := cputime.Thread()
			cpu := cpu1 - cpu0
			if frames > 0 {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/pkt")
				b.ReportMetric(float64(cpu)/float64(frames), "cpu-ns/pkt")
			}
		})
	}
}

// BenchmarkClock compares the two clocks a worker could read once per
// burst: the Go runtime's monotonic clock (time.Now, through the vDSO) and
// the TSC the Burst reads inside its cgo call (Burst.TSC, a field load; the
// rdtsc instruction itself is part of every Cycle).
func BenchmarkClock(b *testing.B) {
	needDPDK(b)
	b.Run("time.Now", func(b *testing.B) {
		var sink int64
		for i := 0; i < b.N; i++ {
			sink += time.Now().UnixNano()
		}
		_ = sink
	})
	b.Run("Burst.TSC", func(b *testing.B) {
		burst, err := env.EAL.NewBurst(dpdk.BurstConfig{Size: 1, Socket: -1})
		if err != nil {
			b.Fatal(err)
		}
		defer burst.Close()
		burst.Flush()
		var sink uint64
		for i := 0; i < b.N; i++ {
			sink += burst.TSC()
		}
		_ = sink
	})
}
