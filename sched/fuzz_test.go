package sched

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// opReader hands out fuzz bytes, zero once they run out.
type opReader []byte

func (r *opReader) byte() byte {
	if len(*r) == 0 {
		return 0
	}
	b := (*r)[0]
	*r = (*r)[1:]
	return b
}

// FuzzOps runs random sequences of Enqueue, Dequeue, Requeue and clock
// moves against a model that is obviously right about what a scheduler may
// do with handles, whatever it decides to send: a class queue is a FIFO of
// at most its limit, a refused frame returns to the head of its class, and
// every handle is at all times exactly one of queued, sent or dropped.
//
// A twin scheduler gets the same operations, except that where the first
// one dequeues a burst and has part of it refused, the twin dequeues only
// what was accepted: Requeue must leave both in the same state.
func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte{5, 9, 1, 40, 9, 3, 0, 1, 0, 7, 2, 2, 3, 3, 4, 31, 2, 5, 3, 4, 10, 5, 5, 2, 0})
	f.Add([]byte{255, 255, 255, 255, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 32, 200, 5, 3, 6, 100, 4, 32, 1})
	f.Fuzz(runOps)
}

// TestOpsRandom runs the fuzz target's checks on long pseudo-random
// sequences, so that plain go test covers more than the seed corpus.
func TestOpsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		data := make([]byte, 3000)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		runOps(t, data)
	}
}

// runOps is the body of FuzzOps.
func runOps(t *testing.T, data []byte) {
	{
		r := opReader(data)
		cfg := DefaultConfig()
		limits := [NumClasses]int{}
		for c := range limits {
			limits[c] = minQueueFrames + int(r.byte()%24)
		}
		cfg.Control.QueueFrames, cfg.Priority.QueueFrames = limits[0], limits[1]
		cfg.Normal.QueueFrames, cfg.Deprioritised.QueueFrames = limits[2], limits[3]
		cfg.Control.QuantumBytes = minQuantum + int(r.byte())*12
		cfg.Priority.QuantumBytes = minQuantum + int(r.byte())*12
		cfg.Normal.QuantumBytes = minQuantum + int(r.byte())*12
		cfg.Deprioritised.QuantumBytes = minQuantum + int(r.byte())*12
		cfg.FloorPercent = int(r.byte() % 34)
		cfg.Control.RatePercent = 1 + int(r.byte()%33)
		cfg.Priority.RatePercent = 1 + int(r.byte()%33)
		cfg.MaxWaitMicros = 1 + int(r.byte())*8
		cfg.ShaperBurstMicros = 1 + int(r.byte())*4
		shape := uint64(0)
		if b := r.byte(); b&1 == 1 {
			shape = minRate * (1 + uint64(b))
		}
		maxBurst := 1 + int(r.byte()%32)
		eg := Egress{TicksPerSecond: hz, LineRate: gbps, ShapeRate: shape, MaxBurst: maxBurst}
		s, err := New(cfg, eg, 0)
		if err != nil {
			t.Fatal(err)
		}
		twin, _ := New(cfg, eg, 0)

		var (
			model    [NumClasses][]Handle // queued, oldest first
			sent     = map[Handle]bool{}
			dropped  = map[Handle]bool{}
			last     []Handle // the last Dequeue's frames still counted as sent
			pending  bool     // the twin has not mirrored the last Dequeue yet
			lastNow  int64    // and its time
			enqueued bool     // a frame was accepted since the last Dequeue
			now      int64
			id       Handle
			out      = make([]Handle, 40)
			out2     = make([]Handle, 40)
		)
		classOf := func(h Handle) Class { return Class(h & 3) }
		check := func(where string) {
			st := s.Stats()
			queued := 0
			for c := range model {
				cs := st.Class[c]
				queued += len(model[c])
				if cs.Depth != len(model[c]) || cs.EnqueuedPkts != cs.SentPkts+uint64(cs.Depth) {
					t.Fatalf("%s: %v counters %+v, model holds %d", where, Class(c), cs, len(model[c]))
				}
			}
			if s.Backlog() != queued || int(id) != queued+len(sent)+len(dropped) {
				t.Fatalf("%s: %d handles issued, %d queued (backlog %d), %d sent, %d dropped",
					where, id, queued, s.Backlog(), len(sent), len(dropped))
			}
		}
		// settle has the twin dequeue what the first scheduler finally
		// sent of its last burst, and compares the two.
		settle := func() {
			if !pending {
				return
			}
			pending = false
			n := twin.Dequeue(lastNow, out2[:len(last)])
			if !slices.Equal(out2[:n], last) {
				t.Fatalf("the twin dequeued %v, the first scheduler kept %v", out2[:n], last)
			}
			if a, b := policyState(s), policyState(twin); a != b {
				t.Fatalf("state after Requeue differs from a shorter Dequeue:\n%+v\n%+v", a, b)
			}
		}
		dequeue := func(burst int) {
			settle()
			n := s.Dequeue(now, out[:burst])
			if shape == 0 {
				if want := min(burst, maxBurst, s.Backlog()+n); n != want {
					t.Fatalf("unshaped Dequeue(%d) gave %d frames, want %d", burst, n, want)
				}
			}
			last = append(last[:0], out[:n]...)
			pending, lastNow, enqueued = true, now, false
			for _, h := range out[:n] {
				c := classOf(h)
				if len(model[c]) == 0 || model[c][0] != h {
					t.Fatalf("Dequeue gave %v frame %d, the head of its queue is %v", c, h>>2, model[c])
				}
				model[c] = model[c][1:]
				if sent[h] || dropped[h] {
					t.Fatalf("frame %d handed out twice", h>>2)
				}
				sent[h] = true
			}
		}
		for len(r) > 0 {
			switch op := r.byte(); op % 8 {
			case 0, 1, 2, 3:
				settle()
				c := Class(op % 4)
				id++
				h := id<<2 | Handle(c)
				l := 64 + uint32(r.byte())*6
				twin.Enqueue(now, c, h, l)
				if s.Enqueue(now, c, h, l) {
					enqueued = true
					if len(model[c]) >= limits[c] {
						t.Fatalf("%v accepted frame %d beyond its limit %d", c, id, limits[c])
					}
					model[c] = append(model[c], h)
				} else {
					if len(model[c]) < limits[c] {
						t.Fatalf("%v refused frame %d at depth %d of %d", c, id, len(model[c]), limits[c])
					}
					dropped[h] = true
				}
			case 4:
				now += int64(r.byte()) * 997
				dequeue(int(r.byte() % 40))
			case 5:
				k := int(r.byte()) % (len(last) + 1)
				switch {
				case pending:
					s.Requeue(k)
				case k == len(last):
					s.Requeue(k) // a no-op at any time
					continue
				case enqueued:
					if !panics(func() { s.Requeue(k) }) {
						t.Fatal("Requeue after an Enqueue did not panic")
					}
					continue
				default:
					continue // a second Requeue: valid, but the twin cannot mirror it
				}
				for i := len(last) - 1; i >= k; i-- {
					h := last[i]
					c := classOf(h)
					model[c] = slices.Insert(model[c], 0, h)
					delete(sent, h)
				}
				last = last[:k]
				settle()
			case 6:
				now += int64(r.byte()) * 100 * us
			case 7:
				now -= int64(r.byte()) // a clock stepped back must not stall
			}
			check("after op")
		}
		// Everything still queued comes out, in order, once time moves.
		for i := 0; s.Backlog() > 0; i++ {
			if i > 1_000_000 {
				t.Fatalf("backlog %d never drains", s.Backlog())
			}
			now += 10 * ms
			dequeue(len(out))
		}
		settle()
		check("drained")
		for c := range model {
			if len(model[c]) != 0 {
				t.Fatalf("%v: %d frames never came out", Class(c), len(model[c]))
			}
		}
	}
}

// state is what a scheduler's future behaviour depends on, less the
// Requeued counters, which only one of two twins counts.
type state struct {
	mark
	strict [2]bucket
	shaper bucket
	stats  Stats
}

func policyState(s *Scheduler) state {
	st := state{strict: s.strict, shaper: s.shaper, stats: s.stats}
	st.cur, st.granted, st.lowSince, st.floorCredit = s.cur, s.granted, s.lowSince, s.floorCredit
	for c := range s.q {
		st.pos[c] = s.q[c].pos
		st.stats.Class[c].RequeuedPkts = 0
	}
	return st
}

func panics(f func()) (did bool) {
	defer func() { did = recover() != nil }()
	f()
	return false
}
