package sched

import "testing"

// benchBurst is one burst of the mixed traffic the benchmarks schedule.
const benchBurst = 32

// BenchmarkEnqueueDequeue is the per-frame cost of the hot path: a burst
// of 32 frames of mixed classes and sizes enqueued, then dequeued, on a
// shaped egress that is kept just busy enough to hold a backlog.
func BenchmarkEnqueueDequeue(b *testing.B) {
	for _, tc := range []struct {
		name  string
		shape uint64
	}{{"unshaped", 0}, {"shaped", gbps}} {
		b.Run(tc.name, func(b *testing.B) {
			s := newSched(b, DefaultConfig(), tc.shape)
			out := make([]Handle, benchBurst)
			var z sizes = 9
			lens := make([]uint32, 1024)
			for i := range lens {
				lens[i] = z.next()
			}
			now := int64(0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := 0; j < benchBurst; j++ {
					k := (i*benchBurst + j) & 1023
					s.Enqueue(now, Class(k&3), Handle(k), lens[k])
				}
				s.Dequeue(now, out)
				// 32 frames of 782 bytes on average take 200 us at
				// 1 Gbit/s: advance a bit less, so the shaped case
				// runs with a standing queue and some drops.
				now += 180 * us
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBurst), "ns/pkt")
		})
	}
}
