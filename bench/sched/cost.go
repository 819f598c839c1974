package main

import (
	"testing"

	"github.com/poolrelay/poolrelay/bench/internal/stats"
	"github.com/poolrelay/poolrelay/sched"
)

// cost is the median per-frame cost of a number of benchmark runs, on the
// wall clock and on the thread's CPU time (which leaves out the time other
// processes held the core).
type cost struct{ wall, cpu float64 }

// measureCost runs the per-frame cost benchmark runs times, unshaped (every
// frame enqueued and dequeued) and shaped with a standing queue (some frames
// dropped at a full queue).
func measureCost(cfg sched.Config, runs int) (unshaped, shaped cost) {
	med := func(shape bool) cost {
		w, c := make([]float64, runs), make([]float64, runs)
		for i := range w {
			w[i], c[i] = costOnce(cfg, shape)
		}
		return cost{stats.Median(w), stats.Median(c)}
	}
	return med(false), med(true)
}

// costOnce returns the wall-clock and the thread-CPU-time cost per frame.
func costOnce(cfg sched.Config, shape bool) (wall, cpu float64) {
	const burst = 32
	const gbps = 125_000_000
	eg := sched.Egress{TicksPerSecond: 1e9, LineRate: 10 * gbps, MaxBurst: burst}
	if shape {
		eg.ShapeRate = gbps
	}
	var lens [1024]uint32
	for i := range lens {
		lens[i] = imix[(i*7)%len(imix)]
	}
	res := testing.Benchmark(func(b *testing.B) {
		s, err := sched.New(cfg, eg, 0)
		if err != nil {
			b.Fatal(err)
		}
		out := make([]sched.Handle, burst)
		now := int64(0)
		cpu, release, _ := newClock("cpu")
		defer release()
		b.ReportAllocs()
		b.ResetTimer()
		t0 := cpu()
		for i := 0; i < b.N; i++ {
			for j := 0; j < burst; j++ {
				k := (i*burst + j) & 1023
				s.Enqueue(now, sched.Class(k&3), sched.Handle(k), lens[k])
			}
			s.Dequeue(now, out)
			// 32 IMIX frames take about 90 us at 1 Gbit/s: 80 us
			// keeps the shaped queue standing.
			now += 80_000
		}
		b.ReportMetric(float64(cpu()-t0)/float64(b.N*burst), "cpu-ns/pkt")
	})
	return float64(res.T.Nanoseconds()) / float64(res.N*burst), res.Extra["cpu-ns/pkt"]
}
