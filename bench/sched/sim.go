package main

import (
	"fmt"
	"math/rand"
	"slices"
	"time"

	"github.com/poolrelay/poolrelay/sched"
)

// IMIX frame sizes: 64, 576 and 1500 bytes at 7:4:1.
var imix = [12]uint32{64, 64, 64, 64, 64, 64, 64, 576, 576, 576, 576, 1500}

const meanFrame = (7*64 + 4*576 + 1500) / 12.0

// Bursty arrivals: each peer is on for burstOn of every burstPeriod, at
// period/on times its mean rate (1.5C for a 0.3C peer), with its own random
// phase, so bursts sometimes overlap and overload the egress for a while.
const (
	burstPeriod = 5 * time.Millisecond
	burstOn     = time.Millisecond
)

// classResult are one peer's figures over the measured part of a case.
type classResult struct {
	class     sched.Class
	load      float64 // offered, multiple of C
	offered   float64 // Mbit/s measured
	sent      float64 // Mbit/s
	share     float64 // of the bytes sent
	dropRate  float64 // of the frames offered
	p50, p99  time.Duration
	framesOut int
}

type result struct {
	name    string
	class   [3]classResult
	stalls  int           // clock gaps taken as the machine stalling the loop
	removed time.Duration // and removed from the clock
	guard   sched.Stats
}

// peer is one arrival process.
type peer struct {
	class  sched.Class
	mean   float64 // mean inter-arrival, ns (on-rate for bursty peers)
	next   float64 // next arrival, ns
	phase  float64 // bursty: start of the on period within each period, ns
	rng    *rand.Rand
	active bool
}

// advance draws the next arrival after the current one.
func (p *peer) advance(bursty bool) {
	for {
		p.next += p.rng.ExpFloat64() * p.mean
		if !bursty {
			return
		}
		// Thinning: arrivals of the on-rate process that fall in the
		// off part of the period are discarded.
		pos := p.next - p.phase
		per := float64(burstPeriod)
		if pos-per*float64(int64(pos/per)) < float64(burstOn) {
			return
		}
	}
}

// newPeers returns the arrival processes of a case on an egress of c
// bytes/s, and room for the latencies of dur.
func newPeers(sc scenario, c uint64, dur time.Duration, seed int64) (peers [3]peer, lat [3][]int64) {
	for i := range peers {
		p := &peers[i]
		p.class = peerClasses[i]
		p.rng = rand.New(rand.NewSource(seed*7 + int64(i)))
		if sc.load[i] == 0 {
			continue
		}
		p.active = true
		fps := sc.load[i] * float64(c) / meanFrame
		if sc.bursty {
			fps *= float64(burstPeriod) / float64(burstOn)
			p.phase = p.rng.Float64() * float64(burstPeriod)
		}
		p.mean = 1e9 / fps
		p.advance(sc.bursty)
		// A peer cannot get more than C: room for that, so appending
		// does not allocate (and collect) while the clock runs.
		lat[i] = make([]int64, 0, int(float64(c)/meanFrame*dur.Seconds()*1.2))
	}
	return peers, lat
}

// simulate runs one case in real time: peers enqueue their arrivals as the
// clock passes them, and every loop iteration dequeues one TX burst that the
// (ideal) NIC accepts whole.
func simulate(sc scenario, cfg sched.Config, c uint64, o options, seed int64) (result, error) {
	dur, warm := o.dur, o.warm
	const burst = 32
	s, err := sched.New(cfg, sched.Egress{TicksPerSecond: 1e9, LineRate: 10 * c, ShapeRate: c, MaxBurst: burst}, 0)
	if err != nil {
		return result{}, err
	}
	peers, lat := newPeers(sc, c, dur, seed)

	out := make([]sched.Handle, burst)
	var base sched.Stats
	based := false
	clk, release, err := newStallClock(o)
	if err != nil {
		return result{}, err
	}
	defer release()
	for {
		now := clk.now()
		if now >= int64(dur) {
			break
		}
		if !based && now >= int64(warm) {
			base, based = s.Stats(), true
		}
		for i := range peers {
			p := &peers[i]
			for p.active && p.next <= float64(now) {
				// The handle carries the arrival time and the peer,
				// so the latency needs no lookup.
				h := sched.Handle(uint64(p.next)<<2 | uint64(i))
				s.Enqueue(now, p.class, h, imix[p.rng.Intn(len(imix))])
				p.advance(sc.bursty)
			}
		}
		n := s.Dequeue(now, out)
		for _, h := range out[:n] {
			arr := int64(h >> 2)
			if arr >= int64(warm) {
				i := int(h & 3)
				lat[i] = append(lat[i], now-arr)
			}
		}
	}
	return summarise(sc, base, s.Stats(), lat, (dur - warm).Seconds(), clk), nil
}

// summarise turns a case's counters at the end of the warm-up (base) and at
// the end (end), and the latencies of the frames sent after the warm-up,
// into its result.
func summarise(sc scenario, base, end sched.Stats, lat [3][]int64, secs float64, clk *stallClock) result {
	r := result{name: sc.name, stalls: clk.stalls, removed: time.Duration(clk.removed), guard: end}
	var total uint64
	for _, cl := range peerClasses {
		total += end.Class[cl].SentBytes - base.Class[cl].SentBytes
	}
	for i, cl := range peerClasses {
		e, b := end.Class[cl], base.Class[cl]
		offPkts := (e.EnqueuedPkts + e.DroppedPkts) - (b.EnqueuedPkts + b.DroppedPkts)
		offBytes := (e.EnqueuedBytes + e.DroppedBytes) - (b.EnqueuedBytes + b.DroppedBytes)
		sent := e.SentBytes - b.SentBytes
		cr := classResult{class: cl, load: sc.load[i], offered: float64(offBytes) * 8 / secs / 1e6,
			sent: float64(sent) * 8 / secs / 1e6, framesOut: len(lat[i])}
		if total > 0 {
			cr.share = float64(sent) / float64(total)
		}
		if offPkts > 0 {
			cr.dropRate = float64(e.DroppedPkts-b.DroppedPkts) / float64(offPkts)
		}
		if l := lat[i]; len(l) > 0 {
			slices.Sort(l)
			cr.p50 = time.Duration(l[len(l)/2])
			cr.p99 = time.Duration(l[len(l)*99/100])
		}
		r.class[i] = cr
	}
	return r
}

func (r result) print() {
	fmt.Printf("\n%s (stalls removed from the clock: %d, %v; lowest class served by floor %d, by max wait %d)\n",
		r.name, r.stalls, r.removed.Round(time.Microsecond), r.guard.FloorServed, r.guard.MaxWaitServed)
	fmt.Printf("  %-14s %6s %9s %9s %7s %8s %10s %10s\n", "class", "load", "offered", "sent", "share", "drop", "p50", "p99")
	for _, c := range r.class {
		fmt.Printf("  %-14s %5.2fC %6.0f Mb %6.0f Mb %6.2f%% %7.3f%% %10v %10v\n",
			c.class, c.load, c.offered, c.sent, 100*c.share, 100*c.dropRate, c.p50, c.p99)
	}
}
