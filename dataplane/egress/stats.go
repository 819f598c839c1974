package egress

import (
	"runtime"
	"sync/atomic"

	"github.com/poolrelay/poolrelay/internal/cacheline"
	"github.com/poolrelay/poolrelay/sched"
)

// Stats are a Port's counters: the scheduler's per class (enqueued, sent,
// dropped at a full queue, requeued after a refusal, depth) and the
// control frames taken from the inject ring. Values are cumulative, except
// the depths; a snapshot is consistent (Enqueued = Sent + Depth holds in it).
type Stats struct {
	sched.Stats
	// Injected counts control frames taken from the inject ring into the
	// Control class.
	Injected uint64
}

// The published words: per class nine counters, then the guard counts and
// the injected count.
const (
	perClass = 9
	nWords   = perClass*sched.NumClasses + 3
)

// published is the readers' copy of the counters, written only by the
// owning worker under a sequence count (a seqlock): odd while a write is in
// progress, so a reader retries until it saw the same even count before and
// after copying. Every word is an atomic, so readers never race, and the
// worker never waits for them.
type published struct {
	seq atomic.Uint64
	w   [nWords]atomic.Uint64
	_   cacheline.Pad // keep the next Port's hot fields off these lines
}

// Publish copies the counters to where Stats reads them. Drain does so
// every Config.PublishMicros; call it after the last Drain too. If the
// Burst flushed since the last Drain, what it refused is requeued first,
// so that the counters count as sent only what the NIC took.
func (p *Port[B]) Publish() {
	if p.inflight != 0 && p.b.Flushes() != p.gen {
		p.settle()
	}
	st := p.s.Stats()
	pub := &p.published
	seq := pub.seq.Load()
	pub.seq.Store(seq + 1)
	for c, cs := range st.Class {
		w := pub.w[c*perClass : (c+1)*perClass]
		w[0].Store(cs.EnqueuedPkts)
		w[1].Store(cs.EnqueuedBytes)
		w[2].Store(cs.SentPkts)
		w[3].Store(cs.SentBytes)
		w[4].Store(cs.DroppedPkts)
		w[5].Store(cs.DroppedBytes)
		w[6].Store(cs.RequeuedPkts)
		w[7].Store(uint64(cs.Depth))
		w[8].Store(cs.DepthBytes)
	}
	tail := pub.w[perClass*sched.NumClasses:]
	tail[0].Store(st.FloorServed)
	tail[1].Store(st.MaxWaitServed)
	tail[2].Store(p.injected)
	pub.seq.Store(seq + 2)
}

// Stats returns the counters as last published: a consistent snapshot,
// safe from any goroutine. It retries while the worker is publishing
// (a few hundred nanoseconds every PublishMicros).
func (p *Port[B]) Stats() Stats {
	pub := &p.published
	for {
		seq := pub.seq.Load()
		if seq&1 != 0 {
			runtime.Gosched()
			continue
		}
		var st Stats
		for c := range st.Class {
			w := pub.w[c*perClass : (c+1)*perClass]
			st.Class[c] = sched.ClassStats{
				EnqueuedPkts: w[0].Load(), EnqueuedBytes: w[1].Load(),
				SentPkts: w[2].Load(), SentBytes: w[3].Load(),
				DroppedPkts: w[4].Load(), DroppedBytes: w[5].Load(),
				RequeuedPkts: w[6].Load(),
				Depth:        int(w[7].Load()), DepthBytes: w[8].Load(),
			}
		}
		tail := pub.w[perClass*sched.NumClasses:]
		st.FloorServed, st.MaxWaitServed, st.Injected = tail[0].Load(), tail[1].Load(), tail[2].Load()
		if pub.seq.Load() == seq {
			return st
		}
	}
}
