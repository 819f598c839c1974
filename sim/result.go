package sim

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/poolrelay/poolrelay/ledger/score"
	"github.com/poolrelay/poolrelay/sched"
)

// Result is what a run measured. The headline figures are defined in the
// package doc.
type Result struct {
	Relays int
	// Goodput is delivered over offered frames of the measured flows of
	// relays of each strategy, after the warm-up; NaN-free: 0 when a
	// strategy offered nothing. Offered and Delivered are the frame counts.
	Goodput            [NumStrategies]float64
	Offered, Delivered [NumStrategies]uint64
	// Ratio is Goodput relative to the honest relays'.
	Ratio [NumStrategies]float64

	FreeriderGoodputRatio float64
	WhitewashGain         float64
	CollusionGain         float64
	// CollusionVsFreerider is the colluders' relative goodput minus
	// freerider_pays', the first definition of the collusion gain: it
	// also measures their placement (the link to a common honest relay),
	// which the controls share (package doc).
	CollusionVsFreerider float64
	HonestDisconnects    int
	// IdleContributorDemoted is true when any neighbour lowered the class
	// of an idle relay while it was idle; IdleDemotions counts those
	// (relay, neighbour) pairs, IdleContributors the pairs where the idle
	// relay was a major contributor when it went idle, and IdlePairs all
	// pairs watched.
	IdleContributorDemoted bool
	IdleDemotions          int
	IdleContributors       int
	IdlePairs              int
	// IdleBusy counts the pairs left out because traffic still passed
	// between them during the idle phase.
	IdleBusy int
	// NewcomerPriorityS is the median time from a newcomer's join until a
	// neighbour first ranks it major contributor, in seconds (-1 when none
	// did); NewcomersReached of Newcomers did.
	NewcomerPriorityS           float64
	NewcomersReached, Newcomers int

	// HopOffered and HopRefused count, by the strategy of the flow's
	// source, the frames of measured flows offered to an egress queue
	// after the warm-up, by hop (0: the source's own egress, 1: the first
	// relay after it, ..., the last bucket every hop from HopBuckets-1 on)
	// and class, and those of them the full queue refused. They show where
	// a strategy's frames are lost and in which class (pool_sim prints
	// them; the README's Incentives section reads them).
	HopOffered, HopRefused [NumStrategies][HopBuckets][sched.NumClasses]uint64
	// EgressLoad is the distribution over relays of the frames offered to
	// the egress after the warm-up (every class, pumps included) over its
	// capacity in that time: the 10th, 25th, 50th, 75th and 90th
	// percentiles. Overload is this ratio at the start before any flow
	// is thinned; the hops after a congested one see less.
	EgressLoad [5]float64

	// Disconnects and Mismatches count ledger disconnects of, and
	// heartbeat-claim mismatches about, relays of each strategy.
	Disconnects, Mismatches [NumStrategies]int
	// Drops of frames, by cause; cheques accepted and rejected; re-keys.
	DebtDrops, QueueDrops, LinkDrops, WireLoss uint64
	Cheques, ChequesRejected, Rekeys           int
	// ClassSent and ClassDropped are the frames every relay's egress
	// scheduler sent and refused (queue full) per class (sched.Stats);
	// GuardServed the deprioritised frames its starvation guard (floor
	// share and maximum wait) sent ahead of their turn.
	ClassSent, ClassDropped [sched.NumClasses]uint64
	GuardServed             uint64
	// Series is the class of each strategy's relays as their neighbours
	// see them, every 10 simulated seconds.
	Series []ClassSample

	joinedAt  []int64
	reachedAt []int64
	idleRefs  []idleRef
}

// ClassSample is how many (relay, neighbour) pairs rank relays of a
// strategy in each class at one time.
type ClassSample struct {
	T        time.Duration
	Strategy Strategy
	Count    [score.NumClasses]int
}

// Mean is the mean class index (0 heavy consumer … 3 major contributor).
func (c ClassSample) Mean() float64 {
	n, s := 0, 0
	for k, v := range c.Count {
		n += v
		s += k * v
	}
	if n == 0 {
		return 0
	}
	return float64(s) / float64(n)
}

type idleRef struct {
	v, j    int32
	base    score.Class
	demoted bool
	// bytes is the neighbour's count of traffic with the idle relay when
	// the phase settled; busy is set if it moved since (a frame that sat
	// in a deprioritised queue for longer than IdleSettle): that pair was
	// not idle, and what its class did is not idleness's doing.
	bytes uint64
	busy  bool
}

// linkBytes is the neighbour's count of all traffic with v on link j.
func (s *Sim) linkBytes(v int32, j int) uint64 {
	lk := &s.relays[v].links[j]
	c := &s.relays[lk.nb].links[lk.back].ctr
	return c.RelayedFor.Bytes + c.RelayedBy.Bytes
}

func newResult(cfg Config) *Result {
	return &Result{Relays: cfg.Relays, joinedAt: make([]int64, cfg.Relays), reachedAt: make([]int64, cfg.Relays)}
}

// neighbourView is the class neighbour of link j of relay v gives v.
func (s *Sim) neighbourView(v int32, j int) (score.Class, bool) {
	lk := &s.relays[v].links[j]
	if !lk.up {
		return 0, false
	}
	return s.relays[lk.nb].links[lk.back].sc, true
}

// markIdle records each idle relay's class at each neighbour as it goes
// idle.
func (r *Result) markIdle(s *Sim) {
	for i := range s.relays {
		if s.relays[i].strat != IdleReturn {
			continue
		}
		for j := range s.relays[i].links {
			if c, ok := s.neighbourView(int32(i), j); ok {
				r.idleRefs = append(r.idleRefs, idleRef{v: int32(i), j: int32(j), base: c, bytes: s.linkBytes(int32(i), j)})
				if c == score.MajorContributor {
					r.IdleContributors++
				}
			}
		}
	}
	r.IdlePairs = len(r.idleRefs)
}

func (r *Result) sample(s *Sim, now time.Time, idle bool) {
	t := now.Sub(epoch)
	var per [NumStrategies][score.NumClasses]int
	for i := range s.relays {
		rl := &s.relays[i]
		if !rl.joined {
			continue
		}
		for j := range rl.links {
			if c, ok := s.neighbourView(int32(i), j); ok {
				per[rl.strat][c]++
				if rl.strat == Newcomer && c == score.MajorContributor && r.reachedAt[i] == 0 {
					r.reachedAt[i] = now.UnixNano()
				}
			}
		}
	}
	for st := Strategy(0); st < NumStrategies; st++ {
		r.Series = append(r.Series, ClassSample{T: t, Strategy: st, Count: per[st]})
	}
	if idle {
		for k := range r.idleRefs {
			ref := &r.idleRefs[k]
			if s.linkBytes(ref.v, int(ref.j)) != ref.bytes {
				ref.busy = true
			}
			if c, ok := s.neighbourView(ref.v, int(ref.j)); ok && c < ref.base && !ref.busy {
				ref.demoted = true
			}
		}
	}
}

// HopBuckets is the number of hop buckets of Result.HopOffered.
const HopBuckets = 6

// offer counts frame h offered to relay v's egress in class c, and refused
// unless ok, after the warm-up.
func (r *Result) offer(s *Sim, v, h int32, c sched.Class, ok bool) {
	s.relays[v].offered++
	fr := &s.frames[h]
	f := &s.flows[fr.flow]
	if f.pump {
		return
	}
	st := s.relays[f.src].strat
	hop := min(HopBuckets-1, int(fr.hop))
	r.HopOffered[st][hop][c]++
	if !ok {
		r.HopRefused[st][hop][c]++
	}
}

func (r *Result) finish(s *Sim) {
	var load []float64
	steps := float64((s.cfg.Duration-s.cfg.Warmup)/s.cfg.Step + 1)
	for i := range s.relays {
		if rl := &s.relays[i]; rl.s != nil {
			load = append(load, float64(rl.offered)/(steps*float64(rl.cap)))
		}
	}
	if len(load) > 0 {
		sort.Float64s(load)
		for k, p := range []float64{0.10, 0.25, 0.50, 0.75, 0.90} {
			r.EgressLoad[k] = load[int(p*float64(len(load)-1))]
		}
	}
	for i := range s.relays {
		if s.relays[i].s == nil {
			continue
		}
		st := s.relays[i].s.Stats()
		for c := range st.Class {
			r.ClassSent[c] += st.Class[c].SentPkts
			r.ClassDropped[c] += st.Class[c].DroppedPkts
		}
		r.GuardServed += st.FloorServed + st.MaxWaitServed
	}
	for _, f := range s.flows {
		if !f.measured {
			continue
		}
		st := s.relays[f.src].strat
		r.Offered[st] += f.offered
		r.Delivered[st] += f.deliv
	}
	for st := range r.Goodput {
		if r.Offered[st] > 0 {
			r.Goodput[st] = float64(r.Delivered[st]) / float64(r.Offered[st])
		}
		if g := r.Goodput[Honest]; g > 0 {
			r.Ratio[st] = r.Goodput[st] / g
		}
	}
	r.FreeriderGoodputRatio = max(r.Ratio[FreeriderPays], r.Ratio[FreeriderNoPay], r.Ratio[Whitewasher])
	r.WhitewashGain = r.Ratio[Whitewasher] - max(r.Ratio[FreeriderPays], r.Ratio[FreeriderNoPay])
	r.CollusionGain = max(r.Ratio[ColludePair]-r.Ratio[PairNoTrade], r.Ratio[ColludeClique]-r.Ratio[CliqueNoTrade])
	r.CollusionVsFreerider = max(r.Ratio[ColludePair], r.Ratio[ColludeClique]) - r.Ratio[FreeriderPays]
	for st := Strategy(0); st < NumStrategies; st++ {
		if st.honest() {
			r.HonestDisconnects += r.Disconnects[st]
		}
	}
	for _, ref := range r.idleRefs {
		if ref.demoted {
			r.IdleDemotions++
		}
		if ref.busy {
			r.IdleBusy++
		}
	}
	r.IdleContributorDemoted = r.IdleDemotions > 0
	var waits []float64
	for i := range s.relays {
		if s.relays[i].strat != Newcomer {
			continue
		}
		r.Newcomers++
		if r.reachedAt[i] != 0 {
			r.NewcomersReached++
			waits = append(waits, float64(r.reachedAt[i]-r.joinedAt[i])/1e9)
		}
	}
	r.NewcomerPriorityS = -1
	if len(waits) > 0 {
		sort.Float64s(waits)
		r.NewcomerPriorityS = waits[len(waits)/2]
	}
}

// Line is the summary line pool_sim ends with.
func (r *Result) Line() string {
	return fmt.Sprintf("sim: relays=%d freerider_goodput_ratio=%.3f whitewash_gain=%.3f collusion_gain=%.3f honest_disconnects=%d idle_contributor_demoted=%t newcomer_priority_s=%.0f",
		r.Relays, r.FreeriderGoodputRatio, r.WhitewashGain, r.CollusionGain, r.HonestDisconnects, r.IdleContributorDemoted, r.NewcomerPriorityS)
}

// WriteCSV writes prefix.csv (one row per strategy) and
// prefix_classes.csv (the class series).
func (r *Result) WriteCSV(prefix string) error {
	ff := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	rows := [][]string{{"strategy", "offered_frames", "delivered_frames", "goodput", "goodput_vs_honest", "disconnects", "claim_mismatches"}}
	for st := Strategy(0); st < NumStrategies; st++ {
		rows = append(rows, []string{st.String(), strconv.FormatUint(r.Offered[st], 10), strconv.FormatUint(r.Delivered[st], 10),
			ff(r.Goodput[st]), ff(r.Ratio[st]), strconv.Itoa(r.Disconnects[st]), strconv.Itoa(r.Mismatches[st])})
	}
	if err := writeCSV(prefix+".csv", rows); err != nil {
		return err
	}
	rows = [][]string{{"t_s", "strategy", "heavy_consumer", "light_consumer", "balanced", "major_contributor", "mean_class"}}
	for _, c := range r.Series {
		rows = append(rows, []string{strconv.Itoa(int(c.T / time.Second)), c.Strategy.String(), strconv.Itoa(c.Count[0]),
			strconv.Itoa(c.Count[1]), strconv.Itoa(c.Count[2]), strconv.Itoa(c.Count[3]), ff(c.Mean())})
	}
	return writeCSV(prefix+"_classes.csv", rows)
}

func writeCSV(path string, rows [][]string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	w := csv.NewWriter(f)
	w.WriteAll(rows)
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("sim: %w", err)
	}
	return f.Close()
}
