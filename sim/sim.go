package sim

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/ledger/score"
	"github.com/poolrelay/poolrelay/sched"
)

// Strategy is how a relay behaves.
type Strategy uint8

// The strategies; see the package doc for what each does.
const (
	Honest Strategy = iota
	IdleReturn
	FreeriderPays
	FreeriderNoPay
	Whitewasher
	ColludePair
	ColludeClique
	HeartbeatLiar
	Lossy
	Newcomer
	// PairNoTrade and CliqueNoTrade are the colluders' controls: relays
	// placed and wired as ColludePair and ColludeClique (linked to a
	// common honest relay), that do not trade. What the trade gains is the
	// difference from them.
	PairNoTrade
	CliqueNoTrade
	// NumStrategies is the number of strategies.
	NumStrategies
)

var strategyNames = [NumStrategies]string{"honest", "idle_return", "freerider_pays", "freerider_nopay",
	"whitewasher", "collude_pair", "collude_clique", "heartbeat_liar", "lossy_link", "newcomer",
	"pair_no_trade", "clique_no_trade"}

// String is the strategy's name in the CSV files and plots.
func (s Strategy) String() string {
	if s < NumStrategies {
		return strategyNames[s]
	}
	return fmt.Sprintf("strategy(%d)", uint8(s))
}

// honest reports whether the strategy follows the protocol in every
// respect, so that a disconnect of such a relay is a defect.
func (s Strategy) honest() bool {
	return s == Honest || s == IdleReturn || s == Lossy || s == Newcomer
}

// transits reports whether the relay forwards frames for others.
func (s Strategy) transits() bool {
	return s == Honest || s == IdleReturn || s == Lossy || s == Newcomer || s == HeartbeatLiar
}

// pairLike and cliqueLike report whether the relay is in a colluding pair
// or clique, trading or not; trades whether it pumps.
func (s Strategy) pairLike() bool   { return s == ColludePair || s == PairNoTrade }
func (s Strategy) cliqueLike() bool { return s == ColludeClique || s == CliqueNoTrade }
func (s Strategy) trades() bool     { return s == ColludePair || s == ColludeClique }

// pays reports whether the relay sends the cheques its ledger issues.
func (s Strategy) pays() bool { return s != FreeriderNoPay && s != Whitewasher }

// Config is a simulation's parameters. Times are simulated.
type Config struct {
	// Relays is the number of relays N.
	Relays int
	// Seed makes a run reproducible.
	Seed uint64
	// Attach is the number of links each relay makes when the scale-free
	// topology grows (Barabási–Albert m).
	Attach int
	// Duration is the simulated time; Step the tick (one hop per tick).
	Duration, Step time.Duration
	// Warmup is excluded from the goodput figures.
	Warmup time.Duration
	// IdleStart and IdleEnd bound the idle phase of IdleReturn relays;
	// Newcomer relays join at IdleStart.
	IdleStart, IdleEnd time.Duration
	// Heartbeat is the interval of the signed counter claims.
	Heartbeat time.Duration
	// Overload is the demand routed through each relay's egress at the
	// start divided by its capacity: above 1, every egress is congested.
	Overload float64
	// FrameBytes is the size of one simulated frame (a cell of traffic).
	FrameBytes uint32
	// MeanRate is a flow's mean offered load, in frames per second.
	MeanRate float64
	// PumpRate is a colluder's pumping rate, frames per second.
	PumpRate float64
	// RekeyDelay is how long a whitewasher takes from being choked to its
	// new identity's enrollment: noticing the choke and a handshake.
	RekeyDelay time.Duration
	// Loss is the frame loss on the links of Lossy relays.
	Loss float64
	// Share is the fraction of relays of each strategy; Honest takes what
	// the others leave. The largest hubs (1%) are always honest.
	Share [NumStrategies]float64
	// CliqueSize is the number of relays in a colluding clique.
	CliqueSize int
	// Swap exchanges the relays given FreeriderPays and Whitewasher, and
	// those given each colluding strategy and its control (ColludePair
	// and PairNoTrade, ColludeClique and CliqueNoTrade), with
	// everything else (topology, flows, keys) the same: two runs that
	// differ only in it compare the two strategies on the same relays.
	Swap bool
	// Ledger and Sched are the real components' configurations.
	Ledger ledger.Config
	Sched  sched.Config
	// Dir holds each relay's store (its journal is in memory); "" is a
	// temporary directory (in /dev/shm when there is one), removed at the
	// end.
	Dir string
	// Progress, if set, receives a line per simulated minute.
	Progress io.Writer
}

// DefaultConfig is the configuration of make sim, for n relays.
func DefaultConfig(n int) Config {
	lc := ledger.DefaultConfig()
	// Amounts scaled to the simulated rates (a flow offers about 200 kB/s):
	// a newcomer's credit line lasts about three minutes of one flow, a
	// peer in good standing pays every few minutes of a link's traffic.
	lc.PaymentThreshold = 256 << 20
	lc.DisconnectThreshold = 320 << 20
	lc.InitialCredit = 32 << 20
	lc.MinPaymentThreshold = 16 << 20
	// The band must cover a step of frames in flight on a busy link.
	lc.MismatchSlackBytes = 64 << 20
	lc.MismatchSlackPackets = 1024
	lc.PricePerPacket = 0
	// The store is a crash checkpoint, which a simulation does not need
	// often; cheques are still durable in the journal at once.
	lc.CheckpointInterval = 5 * time.Minute
	sc := sched.DefaultConfig()
	var share [NumStrategies]float64
	for _, s := range []Strategy{IdleReturn, FreeriderPays, FreeriderNoPay, Whitewasher, HeartbeatLiar, Lossy, Newcomer} {
		share[s] = 0.05
	}
	for _, s := range []Strategy{ColludePair, ColludeClique, PairNoTrade, CliqueNoTrade} {
		share[s] = 0.02
	}
	return Config{
		Relays: n, Seed: 1, Attach: 2,
		Duration: 15 * time.Minute, Step: time.Second, Warmup: 150 * time.Second,
		IdleStart: 300 * time.Second, IdleEnd: 600 * time.Second, Heartbeat: 5 * time.Second,
		Overload: 1.5, RekeyDelay: 5 * time.Second, FrameBytes: 64 << 10, MeanRate: 3, PumpRate: 6, Loss: 0.02,
		Share: share, CliqueSize: 4, Ledger: lc, Sched: sc,
	}
}

// IdleSettle is how long after going idle a relay's standing is taken as
// its standing while idle: the frames it sent last are still in queues
// for a few steps and the class tick (10 s) must see them.
const IdleSettle = 30 * time.Second

// simClock is the simulated time every relay's ledger reads.
type simClock struct{ ns atomic.Int64 }

func (c *simClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// epoch is the simulated start, a fixed date so that runs are reproducible.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// link is one end of a link: what a relay keeps about one neighbour.
type link struct {
	nb   int32
	back int32 // index of this link in the neighbour's links
	// them is the identity the neighbour presents on this link (a
	// whitewasher changes it).
	them peer.ID
	up   bool
	// ctr are our cumulative counters about the neighbour, as our data
	// plane counts them: a frame is charged when it is relayed, before the
	// egress queue, to the peer it came from (RelayedFor) and to the next
	// hop (RelayedBy).
	ctr account.Counters
	// class, choked and nocredit (not Credits) are what our ledger
	// publishes about the neighbour; sc is the score class behind class.
	class    sched.Class
	nocredit bool
	choked   bool
	sc       score.Class
	lossy    bool
	// reconnectAt is when a disconnected link comes back, Unix ns (0: never).
	reconnectAt int64
}

type relay struct {
	strat  Strategy
	key    ed25519.PrivateKey
	id     peer.ID
	l      *ledger.Ledger
	s      *sched.Scheduler
	cap    int
	links  []link
	byPeer map[peer.ID]int32
	inbox  []handoff
	joined bool
	idle   bool
	ver    uint64
	// offered counts the frames offered to the egress after the warm-up.
	offered uint64
	// Colluders: the honest relay they trade through.
	hub int32
	// Per step, from the parallel part of account: the ledger's
	// disconnects and due cheques, and claim mismatches by strategy.
	disc       []peer.ID
	due        []ledger.Outgoing
	mismatches [NumStrategies]int
}

type handoff struct {
	frame int32
	link  int32 // the receiver's link the frame arrived on
}

type flow struct {
	src, dst int32
	// path is the route in use, one of alts (a pinned one for pumps);
	// links[i] is the index in path[i]'s links of the link to path[i+1].
	path     []int32
	links    []int32
	alts     [][]int32
	altLinks [][]int32
	rate     float64
	acc      float64
	fixed    bool
	pump     bool
	offered  uint64
	deliv    uint64
	measured bool
}

type frame struct {
	flow int32
	hop  int32
	// marked is the POOL header's deprioritised mark
	// (wire.FlagDeprioritised): set by the first relay that queued the
	// frame as deprioritised, never cleared (sched.Relayed).
	marked bool
	path   []int32
	links  []int32
}

// Sim is one simulation.
type Sim struct {
	cfg    Config
	rng    *rand.Rand
	clock  *simClock
	g      graph
	relays []relay
	flows  []flow
	frames []frame
	free   []int32
	dir    string
	ownDir bool
	out    []sched.Handle
	states []ledger.PeerState
	res    *Result
}

// Run builds and runs a simulation and returns its result.
func Run(cfg Config) (*Result, error) {
	s, err := newSim(cfg)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := s.run(); err != nil {
		return nil, err
	}
	return s.res, nil
}

func newSim(cfg Config) (*Sim, error) {
	if cfg.Relays < 20 {
		return nil, fmt.Errorf("sim: %d relays: use at least 20", cfg.Relays)
	}
	if cfg.Step <= 0 || cfg.Duration < cfg.IdleEnd || cfg.IdleEnd <= cfg.IdleStart || cfg.IdleStart <= cfg.Warmup {
		return nil, errors.New("sim: need 0 < warmup < idle_start < idle_end <= duration and a positive step")
	}
	if cfg.Swap && (cfg.Share[FreeriderPays] != cfg.Share[Whitewasher] || cfg.Share[ColludePair] != cfg.Share[PairNoTrade] ||
		cfg.Share[ColludeClique] != cfg.Share[CliqueNoTrade]) {
		return nil, errors.New("sim: Swap needs as many freerider_pays as whitewasher relays, and as many colluders as controls")
	}
	s := &Sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), clock: &simClock{}}
	s.clock.ns.Store(epoch.UnixNano())
	s.res = newResult(cfg)
	s.g = scaleFree(cfg.Relays, cfg.Attach, s.rng)
	s.assign()
	if err := s.open(); err != nil {
		s.close()
		return nil, err
	}
	s.makeFlows()
	// Capacity is provisioned for everyone present, newcomers included, so
	// that a newcomer has an egress to relay with once it joins.
	s.reroute(true)
	if err := s.provision(); err != nil {
		s.close()
		return nil, err
	}
	for i := range s.relays {
		if s.relays[i].strat != Newcomer {
			s.join(int32(i))
		}
	}
	s.reroute(false)
	return s, nil
}

// assign gives each relay a strategy, keeping the largest hubs honest, and
// places the colluders next to a common honest relay.
func (s *Sim) assign() {
	n := s.cfg.Relays
	s.relays = make([]relay, n)
	// Candidates in decreasing degree, ties in random order; the largest
	// hubs stay honest.
	cand := make([]int32, n)
	for i := range cand {
		cand[i] = int32(i)
	}
	s.rng.Shuffle(n, func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
	sort.SliceStable(cand, func(i, j int) bool { return len(s.g.adj[cand[i]]) > len(s.g.adj[cand[j]]) })
	cand = cand[max(1, n/100):]
	var count [NumStrategies]int
	rest := len(cand)
	for st := IdleReturn; st < NumStrategies; st++ {
		c := int(math.Round(s.cfg.Share[st] * float64(n)))
		switch {
		case st.pairLike():
			c -= c % 2
		case st.cliqueLike():
			c -= c % s.cfg.CliqueSize
		}
		c = min(c, rest)
		count[st], rest = c, rest-c
	}
	count[Honest] = rest
	// Each strategy's relays are spread evenly over the degree order
	// (stride scheduling), so the groups compared have the same mix of
	// hubs and small relays and the differences measured are the
	// strategies', not the placement's.
	var given [NumStrategies]int
	members := make([][]int32, NumStrategies)
	for _, v := range cand {
		best, bestAt := Honest, math.Inf(1)
		for st := Strategy(0); st < NumStrategies; st++ {
			if given[st] < count[st] {
				if at := (float64(given[st]) + 0.5) / float64(count[st]); at < bestAt {
					best, bestAt = st, at
				}
			}
		}
		given[best]++
		if s.cfg.Swap {
			for _, tw := range [][2]Strategy{{FreeriderPays, Whitewasher}, {ColludePair, PairNoTrade}, {ColludeClique, CliqueNoTrade}} {
				if best == tw[0] || best == tw[1] {
					best = tw[0] + tw[1] - best
					break
				}
			}
		}
		s.relays[v].strat = best
		members[best] = append(members[best], v)
	}
	for _, st := range []Strategy{ColludePair, ColludeClique, PairNoTrade, CliqueNoTrade} {
		size := 2
		if st.cliqueLike() {
			size = s.cfg.CliqueSize
		}
		m := members[st]
		for i := 0; i+size <= len(m); i += size {
			s.collude(m[i : i+size])
		}
	}
	for i := range s.relays {
		if st := s.relays[i].strat; !st.pairLike() && !st.cliqueLike() {
			s.relays[i].hub = -1
		}
	}
}

// collude links a group of colluders to one honest relay, the first
// member's first honest neighbour (or a hub), through which they trade.
func (s *Sim) collude(group []int32) {
	h := int32(-1)
	for _, u := range s.g.adj[group[0]] {
		if s.relays[u].strat == Honest {
			h = u
			break
		}
	}
	if h < 0 {
		h = s.g.byDegree()[0]
	}
	for _, m := range group {
		if !s.g.linked(m, h) {
			s.g.link(m, h)
		}
		s.relays[m].hub = h
	}
}

// open creates each relay's identity, ledger and scheduler state.
func (s *Sim) open() error {
	s.dir = s.cfg.Dir
	if s.dir == "" {
		base := ""
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			base = "/dev/shm"
		}
		d, err := os.MkdirTemp(base, "pool_sim-")
		if err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		s.dir, s.ownDir = d, true
	}
	for i := range s.relays {
		r := &s.relays[i]
		r.key = s.newKey()
		copy(r.id[:], r.key.Public().(ed25519.PublicKey))
		l, _, err := ledger.Open(ledger.Options{Config: s.cfg.Ledger, DataDir: filepath.Join(s.dir, fmt.Sprint(i)),
			Network: 1, Signer: r.key, Clock: s.clock, Log: zerolog.Nop(),
			Rand: rand.New(rand.NewPCG(s.cfg.Seed, uint64(i))), MemoryJournal: true})
		if err != nil {
			return fmt.Errorf("sim: relay %d: %w", i, err)
		}
		r.l = l
		r.byPeer = make(map[peer.ID]int32, len(s.g.adj[i]))
		r.links = make([]link, len(s.g.adj[i]))
		for j, nb := range s.g.adj[i] {
			r.links[j].nb = nb
		}
	}
	for i := range s.relays {
		r := &s.relays[i]
		for j := range r.links {
			lk := &r.links[j]
			nb := &s.relays[lk.nb]
			for b := range nb.links {
				if nb.links[b].nb == int32(i) {
					lk.back = int32(b)
				}
			}
			lk.them = nb.id
			lk.lossy = r.strat == Lossy || nb.strat == Lossy
			r.byPeer[nb.id] = int32(j)
		}
	}
	return nil
}

func (s *Sim) newKey() ed25519.PrivateKey {
	var seed [ed25519.SeedSize]byte
	for i := 0; i < len(seed); i += 8 {
		v := s.rng.Uint64()
		for b := 0; b < 8; b++ {
			seed[i+b] = byte(v >> (8 * b))
		}
	}
	return ed25519.NewKeyFromSeed(seed[:])
}

// makeFlows gives every relay's end nodes a flow to a random destination
// that delivers to end nodes (a relay that carries traffic), and every
// colluder its pumping flow.
func (s *Sim) makeFlows() {
	var dests []int32
	for i := range s.relays {
		if s.relays[i].strat.transits() {
			dests = append(dests, int32(i))
		}
	}
	for i := range s.relays {
		r := &s.relays[i]
		// A pair's second member only pumps (in a pair that does not
		// trade, it does nothing); every other relay's end nodes send.
		pairPumper := r.strat.pairLike() && s.pairIndex(int32(i))%2 == 1
		if !pairPumper {
			d := dests[s.rng.IntN(len(dests))]
			for d == int32(i) {
				d = dests[s.rng.IntN(len(dests))]
			}
			s.flows = append(s.flows, flow{src: int32(i), dst: d, rate: s.cfg.MeanRate * (0.5 + s.rng.Float64()), measured: true})
		}
		// Only the trading groups pump; their controls do not.
		if r.strat.trades() && (pairPumper || r.strat.cliqueLike()) {
			peerOf := s.colludePartner(int32(i))
			f := flow{src: int32(i), dst: peerOf, rate: s.cfg.PumpRate, fixed: true, pump: true,
				path: []int32{int32(i), r.hub, peerOf}}
			s.flows = append(s.flows, f)
		}
	}
}

// pairIndex is the position of a pair member among the relays of its hub's
// pair (0: the beneficiary, 1: the pumper).
func (s *Sim) pairIndex(v int32) int {
	n := 0
	for _, u := range s.g.adj[s.relays[v].hub] {
		if s.relays[u].strat == s.relays[v].strat && s.relays[u].hub == s.relays[v].hub {
			if u == v {
				return n
			}
			n++
		}
	}
	return 0
}

// colludePartner is whom a colluder pumps to: its pair's beneficiary, or
// the next member of its clique.
func (s *Sim) colludePartner(v int32) int32 {
	var group []int32
	for _, u := range s.g.adj[s.relays[v].hub] {
		if s.relays[u].strat == s.relays[v].strat && s.relays[u].hub == s.relays[v].hub {
			group = append(group, u)
		}
	}
	for i, u := range group {
		if u == v {
			return group[(i+len(group)-1)%len(group)]
		}
	}
	return group[0]
}

// present reports whether relay v takes part now (joined and not idle).
func (s *Sim) present(v int32) bool { return s.relays[v].joined && !s.relays[v].idle }

// reroute recomputes every flow's path over the relays present now (all:
// as if every relay were).
func (s *Sim) reroute(all bool) {
	transit := make([]bool, len(s.relays))
	for i := range s.relays {
		r := &s.relays[i]
		transit[i] = r.strat.transits() && (all || s.present(int32(i)))
	}
	s.g.routeAll(s.flows, transit)
	for i := range s.flows {
		f := &s.flows[i]
		if f.fixed {
			f.links = s.linksOf(f.path)
			continue
		}
		f.altLinks = f.altLinks[:0]
		for _, p := range f.alts {
			f.altLinks = append(f.altLinks, s.linksOf(p))
		}
		f.path, f.links = nil, nil
		if len(f.alts) > 0 {
			f.path, f.links = f.alts[0], f.altLinks[0]
		}
	}
	s.pickRoutes()
}

// linksOf returns the link indices along path. Frames in flight keep the
// slices of the path they were sent on, so these are always new.
func (s *Sim) linksOf(path []int32) []int32 {
	links := make([]int32, 0, len(path))
	for h := 0; h+1 < len(path); h++ {
		r := &s.relays[path[h]]
		for j := range r.links {
			if r.links[j].nb == path[h+1] {
				links = append(links, int32(j))
				break
			}
		}
	}
	return links
}

// pickRoutes has every source choose, among its flow's first hops, the
// neighbour for which it has relayed the most relative to what that
// neighbour relayed for it, by its own ledger: the neighbour whose score
// it measures lowest, where its own standing is therefore highest. That
// is where its traffic gets the best class, and it is what an end node
// choosing --via relays would do.
func (s *Sim) pickRoutes() {
	for i := range s.flows {
		f := &s.flows[i]
		if f.fixed || len(f.alts) < 2 {
			continue
		}
		r := &s.relays[f.src]
		best, bestScore := 0, math.Inf(1)
		for k, p := range f.alts {
			lk := &r.links[f.altLinks[k][0]]
			if !lk.up || !s.present(p[1]) {
				continue
			}
			v, err := r.l.Peer(lk.them)
			if err != nil {
				continue
			}
			if v.Score < bestScore {
				best, bestScore = k, v.Score
			}
		}
		f.path, f.links = f.alts[best], f.altLinks[best]
	}
}

// provision sizes each relay's egress at 1/Overload of the demand routed
// through it (at least two frames a step), and builds its scheduler.
func (s *Sim) provision() error {
	load := make([]float64, len(s.relays))
	for _, f := range s.flows {
		// The egresses are provisioned for the end nodes' demand; the
		// colluders' pumps come on top, at the honest relay they pass
		// (their sink discards them).
		if f.pump {
			continue
		}
		for _, v := range f.path {
			load[v] += f.rate
		}
	}
	stepS := s.cfg.Step.Seconds()
	for i := range s.relays {
		r := &s.relays[i]
		r.cap = max(2, int(math.Ceil(load[i]*stepS/s.cfg.Overload)))
		rate := uint64(float64(r.cap) * float64(s.cfg.FrameBytes) / stepS)
		cfg := s.cfg.Sched
		fb := int(s.cfg.FrameBytes)
		// Queues of two steps of capacity; quanta and bursts in frames of
		// this size, so the shares are those of the defaults.
		q := max(16, 2*r.cap)
		cfg.Control.QueueFrames, cfg.Priority.QueueFrames, cfg.Normal.QueueFrames, cfg.Deprioritised.QueueFrames = 16, q, q, q
		cfg.Control.QuantumBytes, cfg.Priority.QuantumBytes, cfg.Normal.QuantumBytes, cfg.Deprioritised.QuantumBytes = 2*fb, 2*fb, 2*fb, fb
		// A strict class may run one step's worth of its cap ahead: the
		// scheduler is called once a step.
		cfg.Control.BurstBytes = max(fb, min(1<<26, int(float64(rate)*stepS)*cfg.Control.RatePercent/100))
		cfg.Priority.BurstBytes = max(fb, min(1<<26, int(float64(rate)*stepS)*cfg.Priority.RatePercent/100))
		cfg.MaxWaitMicros = int(min(s.cfg.Step.Microseconds(), 1_000_000))
		sch, err := sched.New(cfg, sched.Egress{TicksPerSecond: 1e9, LineRate: rate, MaxBurst: min(4096, r.cap)}, s.clock.ns.Load())
		if err != nil {
			return fmt.Errorf("sim: relay %d: %w", i, err)
		}
		r.s = sch
	}
	maxCap := 0
	for i := range s.relays {
		maxCap = max(maxCap, s.relays[i].cap)
	}
	s.out = make([]sched.Handle, min(4096, maxCap))
	return nil
}

// join connects relay v on every link to a neighbour that has joined.
func (s *Sim) join(v int32) {
	r := &s.relays[v]
	r.joined = true
	for j := range r.links {
		if s.relays[r.links[j].nb].joined {
			s.connect(v, int32(j))
		}
	}
}

// connect runs the enrollment on link j of relay v: both ends exchange
// terms and their ledgers record the connection.
func (s *Sim) connect(v, j int32) {
	a := &s.relays[v]
	la := &a.links[j]
	b := &s.relays[la.nb]
	lb := &b.links[la.back]
	ta := a.l.Terms(la.them)
	tb := b.l.Terms(lb.them)
	if _, err := a.l.Connect(la.them, "", tb); err != nil {
		panic(fmt.Sprintf("sim: connect: %v", err))
	}
	if _, err := b.l.Connect(lb.them, "", ta); err != nil {
		panic(fmt.Sprintf("sim: connect: %v", err))
	}
	la.up, lb.up = true, true
	la.reconnectAt, lb.reconnectAt = 0, 0
	s.refresh(v)
	s.refresh(la.nb)
}

// disconnect closes link j of relay v at both ends.
func (s *Sim) disconnect(v, j int32, reason string) {
	a := &s.relays[v]
	la := &a.links[j]
	b := &s.relays[la.nb]
	lb := &b.links[la.back]
	if !la.up {
		return
	}
	_ = a.l.Disconnect(la.them, reason)
	_ = b.l.Disconnect(lb.them, reason)
	la.up, lb.up = false, false
}

// rekey gives whitewasher v a fresh identity on link j: the neighbour sees
// a new peer, with a new account.
func (s *Sim) rekey(v, j int32) {
	a := &s.relays[v]
	la := &a.links[j]
	b := &s.relays[la.nb]
	lb := &b.links[la.back]
	delete(b.byPeer, lb.them)
	k := s.newKey()
	copy(lb.them[:], k.Public().(ed25519.PublicKey))
	b.byPeer[lb.them] = la.back
	lb.ctr = account.Counters{}
	s.res.Rekeys++
	s.connect(v, j)
}

// refresh copies relay v's published peer states into its links when its
// ledger's version moved.
func (s *Sim) refresh(v int32) {
	r := &s.relays[v]
	ver := r.l.Version()
	if ver == r.ver {
		return
	}
	r.ver = ver
	s.states = r.l.PeerStates(s.states[:0])
	for _, ps := range s.states {
		j, ok := r.byPeer[ps.Peer]
		if !ok {
			continue
		}
		lk := &r.links[j]
		lk.class, lk.choked, lk.sc = schedClass(ps.Class), ps.Choked, ps.Class
		lk.nocredit = !ps.Credits
	}
}

// schedClass is the relay's mapping of a generosity class to an egress
// queue (package control publishes the same).
func schedClass(c score.Class) sched.Class {
	switch c {
	case score.MajorContributor:
		return sched.Priority
	case score.HeavyConsumer:
		return sched.Deprioritised
	}
	return sched.Normal
}

func (s *Sim) close() {
	for i := range s.relays {
		if s.relays[i].l != nil {
			s.relays[i].l.Close()
		}
	}
	if s.ownDir {
		os.RemoveAll(s.dir)
	}
}

func (s *Sim) newFrame(f int32) int32 {
	var h int32
	if n := len(s.free); n > 0 {
		h = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		s.frames = append(s.frames, frame{})
		h = int32(len(s.frames) - 1)
	}
	fl := &s.flows[f]
	s.frames[h] = frame{flow: f, path: fl.path, links: fl.links}
	return h
}

func (s *Sim) freeFrame(h int32) {
	s.frames[h].path, s.frames[h].links = nil, nil
	s.free = append(s.free, h)
}

func (s *Sim) run() error {
	steps := int(s.cfg.Duration / s.cfg.Step)
	idleStart := int(s.cfg.IdleStart / s.cfg.Step)
	idleEnd := int(s.cfg.IdleEnd / s.cfg.Step)
	warm := int(s.cfg.Warmup / s.cfg.Step)
	hb := max(1, int(s.cfg.Heartbeat/s.cfg.Step))
	idleSettle := int(IdleSettle / s.cfg.Step)
	sample := max(1, int(10*time.Second/s.cfg.Step))
	wall := time.Now()
	for step := 0; step <= steps; step++ {
		now := epoch.Add(time.Duration(step) * s.cfg.Step)
		s.clock.ns.Store(now.UnixNano())
		switch step {
		case idleStart + idleSettle:
			// The idle relays' last frames have drained and the class
			// tick has seen them: from here on nothing flows.
			s.res.markIdle(s)
		case idleStart:
			for i := range s.relays {
				r := &s.relays[i]
				if r.strat == IdleReturn {
					r.idle = true
				}
				if r.strat == Newcomer {
					s.join(int32(i))
					s.res.joinedAt[i] = now.UnixNano()
				}
			}
			s.reroute(false)
		case idleEnd:
			for i := range s.relays {
				s.relays[i].idle = false
			}
			s.reroute(false)
		}
		measure := step >= warm
		s.receive(now.UnixNano(), measure)
		s.generate(now.UnixNano(), measure)
		s.transmit(now.UnixNano(), measure)
		if err := s.account(now.UnixNano(), step%hb == 0); err != nil {
			return err
		}
		if step%sample == 0 {
			s.pickRoutes()
			s.res.sample(s, now, step >= idleStart+idleSettle && step < idleEnd)
		}
		if s.cfg.Progress != nil && step%60 == 0 {
			fmt.Fprintf(s.cfg.Progress, "sim: t=%ds wall=%s frames=%d\n", step*int(s.cfg.Step/time.Second), time.Since(wall).Round(time.Second), len(s.frames)-len(s.free))
		}
	}
	s.res.finish(s)
	return nil
}

// control is relay v's own part of account: it touches only v's ledger
// and reads its neighbours' counters (their signed claims).
func (s *Sim) control(v int32, heartbeat bool) error {
	r := &s.relays[v]
	r.disc, r.due = r.disc[:0], r.due[:0]
	if !r.joined {
		return nil
	}
	for j := range r.links {
		lk := &r.links[j]
		if !lk.up {
			continue
		}
		c := lk.ctr
		c.Epoch = 1
		if err := r.l.Observe(lk.them, c); err != nil {
			return fmt.Errorf("sim: relay %d: %w", v, err)
		}
		if heartbeat {
			nb := &s.relays[lk.nb]
			claim := nb.links[lk.back].ctr
			claim.Epoch = 1
			if nb.strat == HeartbeatLiar {
				// Inflated: it claims to have relayed three times what it
				// did for us.
				claim.RelayedBy.Bytes = claim.RelayedBy.Bytes*3 + 1<<20
				claim.RelayedBy.Packets *= 3
			}
			if _, bad, err := r.l.CheckClaim(lk.them, claim); err == nil && bad {
				r.mismatches[nb.strat]++
			}
		}
	}
	rep, err := r.l.Tick()
	if err != nil {
		return fmt.Errorf("sim: relay %d: %w", v, err)
	}
	r.disc = append(r.disc, rep.Disconnect...)
	r.due = r.l.Due(r.due)
	// The ledger visits its peers in map order; the simulation's random
	// draws (loss on the way) must not depend on it.
	sort.Slice(r.disc, func(a, b int) bool { return string(r.disc[a][:]) < string(r.disc[b][:]) })
	sort.Slice(r.due, func(a, b int) bool { return string(r.due[a].Peer[:]) < string(r.due[b].Peer[:]) })
	return nil
}

// receive takes each relay's handed-over frames: dropped for debt when the
// sender is choked, else counted as relayed for the sender and queued in
// the sender's class (a full queue drops at the tail).
func (s *Sim) receive(now int64, measure bool) {
	for i := range s.relays {
		r := &s.relays[i]
		for _, h := range r.inbox {
			lk := &r.links[h.link]
			if !lk.up || lk.choked {
				s.res.DebtDrops++
				s.freeFrame(h.frame)
				continue
			}
			// The data plane's decision (relay.Worker.rewrite): the class
			// of the peer that handed the frame over, lowered by the
			// deprioritised mark, which a frame deprioritised for a peer
			// that gives no credit leaves with (sched.Relayed).
			fr := &s.frames[h.frame]
			var class sched.Class
			class, fr.marked = sched.Relayed(lk.class, !lk.nocredit, fr.marked)
			// The data plane charges a frame as it relays it: to the peer
			// it is relayed for and towards the next hop at once, before
			// the egress queue (relay.Worker.charge); towards the next hop
			// as uncredited when the peer it is relayed for gives no
			// credit (score.Config.Credits, published with the class).
			lk.ctr.RelayedFor.Packets++
			lk.ctr.RelayedFor.Bytes += uint64(s.cfg.FrameBytes)
			s.chargeTowards(r, h.frame, lk.nocredit)
			if s.flows[fr.flow].pump && int(fr.hop) == len(fr.path)-1 {
				// The colluder at the end of a pump is its sink: it
				// discards what was pumped to it, on no egress of its own.
				s.freeFrame(h.frame)
				continue
			}
			ok := r.s.Enqueue(now, class, sched.Handle(h.frame), s.cfg.FrameBytes)
			if measure {
				s.res.offer(s, int32(i), h.frame, class, ok)
			}
			if !ok {
				s.res.QueueDrops++
				s.freeFrame(h.frame)
			}
		}
		r.inbox = r.inbox[:0]
	}
}

// generate offers each active flow's frames at its source relay's egress
// (its end nodes' traffic, in the normal class).
func (s *Sim) generate(now int64, measure bool) {
	for i := range s.flows {
		f := &s.flows[i]
		if f.path == nil || !s.present(f.src) || !s.present(f.dst) {
			continue
		}
		f.acc += f.rate * s.cfg.Step.Seconds()
		n := int(f.acc)
		f.acc -= float64(n)
		r := &s.relays[f.src]
		for ; n > 0; n-- {
			if measure {
				f.offered++
			}
			h := s.newFrame(int32(i))
			s.chargeTowards(r, h, false)
			ok := r.s.Enqueue(now, sched.Normal, sched.Handle(h), s.cfg.FrameBytes)
			if measure {
				s.res.offer(s, f.src, h, sched.Normal, ok)
			}
			if !ok {
				s.res.QueueDrops++
				s.freeFrame(h)
			}
		}
	}
}

// chargeTowards counts frame h, about to be queued at r, as relayed
// towards its next hop (nothing when r delivers it), and as uncredited
// too when it is relayed for a peer that gives no credit.
func (s *Sim) chargeTowards(r *relay, h int32, uncredited bool) {
	fr := &s.frames[h]
	if int(fr.hop) == len(fr.path)-1 {
		return
	}
	lk := &r.links[fr.links[fr.hop]]
	lk.ctr.RelayedBy.Packets++
	lk.ctr.RelayedBy.Bytes += uint64(s.cfg.FrameBytes)
	if uncredited {
		lk.ctr.RelayedByUncredited.Packets++
		lk.ctr.RelayedByUncredited.Bytes += uint64(s.cfg.FrameBytes)
	}
}

// transmit runs each relay's scheduler for one step of its capacity:
// frames at their last relay are delivered, the others handed to the next
// relay (and lost on a lossy link).
func (s *Sim) transmit(now int64, measure bool) {
	for i := range s.relays {
		r := &s.relays[i]
		n := r.s.Dequeue(now, s.out[:min(len(s.out), r.cap)])
		for _, hd := range s.out[:n] {
			h := int32(hd)
			fr := &s.frames[h]
			if int(fr.hop) == len(fr.path)-1 {
				if measure {
					s.flows[fr.flow].deliv++
				}
				s.freeFrame(h)
				continue
			}
			lk := &r.links[fr.links[fr.hop]]
			if !lk.up {
				s.res.LinkDrops++
				s.freeFrame(h)
				continue
			}
			if lk.lossy && s.rng.Float64() < s.cfg.Loss {
				s.res.WireLoss++
				s.freeFrame(h)
				continue
			}
			fr.hop++
			nb := &s.relays[lk.nb]
			nb.inbox = append(nb.inbox, handoff{frame: h, link: lk.back})
		}
	}
}

// account is each relay's control core for one step: counters to the
// ledger, heartbeats (signed claims cross-checked), the ledger's tick with
// its disconnects, cheques sent and acknowledged, and the published
// classes and choke states. The relays' ledgers are independent, so the
// first part runs on every core; what crosses between relays (sessions,
// cheques) follows in order.
func (s *Sim) account(now int64, heartbeat bool) error {
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(s.relays); i += workers {
				if err := s.control(int32(i), heartbeat); err != nil && errs[w] == nil {
					errs[w] = err
				}
			}
		}(w)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	for i := range s.relays {
		r := &s.relays[i]
		if !r.joined {
			continue
		}
		for st, n := range r.mismatches {
			s.res.Mismatches[st] += n
			r.mismatches[st] = 0
		}
		for j := range r.links {
			lk := &r.links[j]
			if !lk.up && lk.reconnectAt != 0 && lk.reconnectAt <= now && s.relays[lk.nb].joined && r.strat != Whitewasher && s.relays[lk.nb].strat != Whitewasher {
				s.connect(int32(i), int32(j))
			}
		}
		for _, p := range r.disc {
			j, ok := r.byPeer[p]
			if !ok || !r.links[j].up {
				continue
			}
			lk := &r.links[j]
			nb := &s.relays[lk.nb]
			s.res.Disconnects[nb.strat]++
			s.disconnect(int32(i), j, "debt")
			// A whitewasher comes back under a new identity; anyone else
			// under the same one, debt and all, a grace period later.
			delay := int64(s.cfg.Ledger.DisconnectGrace)
			if nb.strat == Whitewasher {
				delay = int64(s.cfg.RekeyDelay)
			}
			lk.reconnectAt = now + delay
			nb.links[lk.back].reconnectAt = lk.reconnectAt
		}
		for _, o := range r.due {
			j, ok := r.byPeer[o.Peer]
			if !ok || !r.strat.pays() {
				continue
			}
			lk := &r.links[j]
			if lk.lossy && s.rng.Float64() < s.cfg.Loss {
				continue
			}
			nb := &s.relays[lk.nb]
			rc, err := nb.l.ReceiveCheque(nb.links[lk.back].them, o.Cheque[:])
			if err != nil && !errors.Is(err, ledger.ErrDuplicate) {
				s.res.ChequesRejected++
				continue
			}
			s.res.Cheques++
			s.refresh(lk.nb)
			if lk.lossy && s.rng.Float64() < s.cfg.Loss {
				continue
			}
			_ = r.l.ChequeAcked(o.Peer, rc.Cumulative)
		}
		s.refresh(int32(i))
	}
	// Whitewashers drop an identity as soon as a neighbour chokes it and
	// come back under a new one RekeyDelay later.
	for i := range s.relays {
		r := &s.relays[i]
		if r.strat != Whitewasher || !r.joined {
			continue
		}
		for j := range r.links {
			lk := &r.links[j]
			nbl := &s.relays[lk.nb].links[lk.back]
			switch {
			case lk.up && nbl.choked:
				s.disconnect(int32(i), int32(j), "rekey")
				lk.reconnectAt = now + int64(s.cfg.RekeyDelay)
			case !lk.up && lk.reconnectAt != 0 && lk.reconnectAt <= now && s.relays[lk.nb].joined:
				s.rekey(int32(i), int32(j))
			}
		}
	}
	return nil
}
