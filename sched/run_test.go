package sched

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestEnqueueRunIsEnqueue feeds two schedulers the same frames, one a run
// of one class at a time through EnqueueRun, the other frame by frame
// through Enqueue, with small queues that overflow and random Dequeues and
// Requeues in between: what each accepts, what each sends and every
// counter and policy state must agree.
func TestEnqueueRunIsEnqueue(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 200; round++ {
		cfg := DefaultConfig()
		cfg.Control.QueueFrames = minQueueFrames + rng.IntN(20)
		cfg.Priority.QueueFrames = minQueueFrames + rng.IntN(20)
		cfg.Normal.QueueFrames = minQueueFrames + rng.IntN(20)
		cfg.Deprioritised.QueueFrames = minQueueFrames + rng.IntN(20)
		var shape uint64
		if rng.IntN(2) == 0 {
			shape = minRate * uint64(1+rng.IntN(200))
		}
		eg := Egress{TicksPerSecond: hz, LineRate: gbps, ShapeRate: shape, MaxBurst: 32}
		a, err := New(cfg, eg, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := New(cfg, eg, 0)
		var (
			id, now  int64
			hs       = make([]Handle, 64)
			ls       = make([]uint32, 64)
			outA     = make([]Handle, 32)
			outB     = make([]Handle, 32)
			accepted []bool
		)
		for op := 0; op < 300; op++ {
			now += int64(rng.IntN(2000))
			switch rng.IntN(3) {
			case 0, 1:
				c := Class(rng.IntN(int(NumClasses)))
				n := rng.IntN(40)
				for i := range n {
					id++
					hs[i], ls[i] = Handle(id), uint32(64+rng.IntN(1500))
				}
				k := a.EnqueueRun(now, c, hs[:n], ls[:n])
				accepted = accepted[:0]
				for i := range n {
					accepted = append(accepted, b.Enqueue(now, c, hs[i], ls[i]))
				}
				for i, ok := range accepted {
					if ok != (i < k) {
						t.Fatalf("round %d op %d: EnqueueRun took %d of %d frames, Enqueue accepted %v", round, op, k, n, accepted)
					}
				}
			default:
				burst := 1 + rng.IntN(32)
				na, nb := a.Dequeue(now, outA[:burst]), b.Dequeue(now, outB[:burst])
				if !slices.Equal(outA[:na], outB[:nb]) {
					t.Fatalf("round %d op %d: Dequeue %v against %v", round, op, outA[:na], outB[:nb])
				}
				if na > 0 && rng.IntN(3) == 0 {
					sent := rng.IntN(na + 1)
					a.Requeue(sent)
					b.Requeue(sent)
				}
			}
			if sa, sb := policyState(a), policyState(b); sa != sb {
				t.Fatalf("round %d op %d: states differ:\n%+v\n%+v", round, op, sa, sb)
			}
			if a.Stats() != b.Stats() {
				t.Fatalf("round %d op %d: stats differ:\n%+v\n%+v", round, op, a.Stats(), b.Stats())
			}
		}
	}
}
