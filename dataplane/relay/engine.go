package relay

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/egress"
	"github.com/poolrelay/poolrelay/dataplane/neigh"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/sched"
)

// Engine sizes used when Config leaves them zero.
const (
	// DefaultPeers is the number of peer slots: 65536 peers cost the
	// counters 88 B each per worker core, 5.8 MB per core.
	DefaultPeers = 1 << 16
	// DefaultKeySlots is the number of hop key slots: two per peer, for
	// the overlap of an old and a new key during a rekey.
	DefaultKeySlots = 2 * DefaultPeers
)

// Errors of the Engine. Callers test them with errors.Is.
var (
	// ErrNoWorkers means the EAL core list has no core besides the main one.
	ErrNoWorkers = errors.New("relay: the EAL core list leaves no worker core")
	// ErrQueues means a port's configured queues differ from the workers:
	// worker i polls RX queue i and sends on TX queue i of every port.
	ErrQueues = errors.New("relay: a port needs one RX and one TX queue per worker")
	// ErrNoPort means a port index beyond the engine's ports.
	ErrNoPort = errors.New("relay: no such port")
	// ErrInjectFull means the inject ring had no room: the frame was not sent.
	ErrInjectFull = errors.New("relay: inject ring full")
	// ErrStarted means Start was called twice, or after Stop.
	ErrStarted = errors.New("relay: engine already started or stopped")
)

// Config is everything the Engine is made from: the sections of the
// configuration file (configs.File's EAL, Ports, Dataplane and Sched) and
// the table sizes.
type Config struct {
	EAL       dataplane.EALConfig
	Ports     []dataplane.PortConfig
	Dataplane dataplane.Config
	// Sched is the [sched] section: the class queues every worker keeps
	// per port (dataplane/egress), shaped to each port's egress_rate_mbps.
	// The zero value means sched.DefaultConfig(). Its DefaultClass is the
	// class every peer slot starts in.
	Sched sched.Config
	// Peers and KeySlots size the Tables and counters (0: the defaults).
	Peers, KeySlots int
	// NoHopAuth turns hop authentication off (see WorkerConfig.KeepAuth):
	// for benchmarks only.
	NoHopAuth bool
}

// PortInfo is what the control core needs to know of a port: its name,
// its Ethernet address and the relay's own addresses on it.
type PortInfo struct {
	Name  string
	MAC   wire.MAC
	Addrs []netip.Prefix
}

// Engine is the running data plane: the EAL, the ports, one Worker per
// worker core, and the control core's I/O (punted frames out, injected
// frames in).
type Engine struct {
	log      zerolog.Logger
	eal      *dpdk.EAL
	ownsEAL  bool
	cfg      Config
	cores    []int // worker cores
	ports    []*dpdk.Port
	info     []PortInfo
	index    map[uint16]int // DPDK port id to port index
	pool     *dpdk.Mempool
	tables   *Tables
	counters *counters.Set
	// routeCtrs are the per-route counters: one slot per route table
	// entry ([dataplane] max_routes) and the shared slot 0.
	routeCtrs *counters.Routes
	neigh     *neigh.Published
	addrs     *neigh.Addrs
	matcher   *wire.Matcher
	// punt[w] is worker w's punt ring; inject[w][p] its inject ring for
	// port p. The control core is the single consumer, resp. producer.
	punt   []*dpdk.Ring
	inject [][]*dpdk.Ring

	// mu serialises the control core's ring use (Inject, ReadPunted) and
	// Start/Stop.
	mu      sync.Mutex
	vec     *dpdk.MbufVec
	workers []*dpdk.Worker
	state   engineState

	// statsMu guards stats, which each worker writes as it ends, and
	// egress, which each worker fills as it starts.
	statsMu sync.Mutex
	stats   []dpdk.BurstStats
	// egress[w][p] is worker w's egress of port index p (nil until the
	// worker made it). Its Stats are safe from any goroutine.
	egress [][]*egress.Port[*dpdk.Burst]

	// portsMu orders PortStats before closePorts: readers hold it shared
	// while they read the ethdev counters, closePorts takes it exclusively
	// only to set portsClosed, so no reader touches a port being closed and
	// no reader waits for anything but another reader.
	portsMu     sync.RWMutex
	portsClosed bool
}

// engines numbers engines for unique DPDK object names within the process.
var engines atomic.Uint32

// Open starts the EAL for cfg and opens the engine on it; Stop closes the
// EAL too. The EAL starts once per process: see OpenOn to run engines on an
// EAL started elsewhere.
func Open(cfg Config, log zerolog.Logger) (*Engine, error) {
	devs := make([]string, len(cfg.Ports))
	for i, p := range cfg.Ports {
		devs[i] = p.Device
	}
	e, err := dpdk.Init(cfg.EAL, devs, log)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	en, err := OpenOn(e, cfg, log)
	if err != nil {
		if cerr := e.Close(); cerr != nil {
			log.Error().Err(cerr).Msg("closing the EAL")
		}
		return nil, err
	}
	en.ownsEAL = true
	return en, nil
}

// OpenOn opens the engine on an EAL that the caller started and closes:
// the ports (hot-plugged if the EAL was not given them), mempools, rings,
// tables and counters, with one worker per EAL worker core. cfg.EAL is not
// used. The workers start with Start, so that routes and keys can be
// installed first.
func OpenOn(eal *dpdk.EAL, cfg Config, log zerolog.Logger) (_ *Engine, err error) {
	if cfg.Peers == 0 {
		cfg.Peers = DefaultPeers
	}
	if cfg.KeySlots == 0 {
		cfg.KeySlots = DefaultKeySlots
	}
	if cfg.Sched == (sched.Config{}) {
		cfg.Sched = sched.DefaultConfig()
	}
	defClass, err := sched.ParseClass(cfg.Sched.DefaultClass)
	if err != nil {
		return nil, fmt.Errorf("relay: sched: %w", err)
	}
	// The workers make their schedulers as they start; a [sched] they
	// would refuse is refused here, where Open can say so.
	if _, err := sched.New(cfg.Sched, sched.Egress{TicksPerSecond: eal.TSCHz(), LineRate: egress.DefaultLinkMbps * 1_000_000 / 8, MaxBurst: cfg.Dataplane.Burst}, 0); err != nil {
		return nil, fmt.Errorf("relay: sched: %w", err)
	}
	if b := cfg.Dataplane.Burst; b < 1 || b > dpdk.MaxBurst {
		return nil, fmt.Errorf("relay: burst %d: must be 1 to %d", b, dpdk.MaxBurst)
	}
	if len(cfg.Ports) == 0 {
		return nil, errors.New("relay: no ports configured")
	}
	cores := eal.Cores()[1:]
	if len(cores) == 0 {
		return nil, ErrNoWorkers
	}
	n := len(cores)
	e := &Engine{log: log, eal: eal, cfg: cfg, cores: cores, neigh: &neigh.Published{}, index: map[uint16]int{}}
	defer func() {
		if err != nil {
			e.closePorts()
		}
	}()
	id := engines.Add(1)
	// One buffer size for every pool: the largest frame any port may
	// receive, so a jumbo MTU works without scatter (a frame is always one
	// mbuf to the worker) and frames move between ports' pools unchanged.
	room := dpdk.DefaultDataRoom
	for _, pc := range cfg.Ports {
		room = max(room, dpdk.DataRoomFor(pc.MTU))
	}
	pools := eal.NewPools(fmt.Sprintf("relay%d", id), cfg.Dataplane.Mbufs, cfg.Dataplane.MbufCache, room)
	macs := make([]neigh.MAC, len(cfg.Ports))
	for i, pc := range cfg.Ports {
		if (pc.RxQueues != 0 && pc.RxQueues != n) || (pc.TxQueues != 0 && pc.TxQueues != n) {
			return nil, fmt.Errorf("%w: port %s has %d/%d queues for %d workers", ErrQueues, pc.Name, pc.RxQueues, pc.TxQueues, n)
		}
		// An AF_XDP port registers its pool's memory as its socket's UMEM,
		// which one socket can own (Debian's 22.11 has no shared UMEM), so
		// each AF_XDP port gets a pool of its own; other ports share one.
		portPools := pools
		if strings.HasPrefix(pc.Device, "net_af_xdp") {
			// The kernel takes UMEM chunks of at most a page, and an
			// mbuf (its 128-byte header and its buffer) is one chunk, so
			// the pool is sized for this port's own MTU and a jumbo MTU
			// is refused here, by name, rather than by the socket.
			own, chunk := dpdk.DataRoomFor(pc.MTU), os.Getpagesize()
			if own+dpdk.MbufHeaderLen > chunk {
				return nil, fmt.Errorf("relay: port %s: MTU %d: an AF_XDP port takes frames of one %d-byte UMEM chunk, so an MTU of at most %d",
					pc.Name, pc.MTU, chunk, pc.MTU-(own+dpdk.MbufHeaderLen-chunk))
			}
			portPools = eal.NewPools(fmt.Sprintf("relay%d_%d", id, i), cfg.Dataplane.Mbufs, cfg.Dataplane.MbufCache, own)
		}
		p, err := eal.OpenPort(pc, n, portPools)
		if err != nil {
			return nil, fmt.Errorf("relay: port %s: %w", pc.Name, err)
		}
		e.ports = append(e.ports, p)
		e.index[p.ID()] = i
		if macs[i], err = p.MAC(); err != nil {
			return nil, fmt.Errorf("relay: port %s: %w", pc.Name, err)
		}
	}
	nps, err := neigh.PortsFromConfig(cfg.Ports, macs)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	e.addrs = neigh.NewAddrs(nps)
	for i, np := range nps {
		e.info = append(e.info, PortInfo{Name: cfg.Ports[i].Name, MAC: macs[i], Addrs: np.Addrs})
	}
	if e.pool, err = pools.For(e.ports[0].Socket()); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	rt, err := route.New(cfg.Dataplane.MaxRoutes)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	if e.tables, err = NewTables(rt, n, cfg.Peers, cfg.KeySlots); err != nil {
		return nil, err
	}
	for p := range cfg.Peers {
		if err := e.tables.SetPeer(uint32(p), defClass, false); err != nil {
			return nil, err
		}
	}
	if e.counters, err = counters.New(n, cfg.Peers, int(NumReasons), len(e.ports)); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	if e.routeCtrs, err = counters.NewRoutes(n, cfg.Dataplane.MaxRoutes+1); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	e.matcher = wire.NewMatcher()
	for _, p := range cfg.Dataplane.UDPPorts {
		e.matcher.Add(uint16(p))
	}
	for w := range n {
		r, err := eal.NewRing(fmt.Sprintf("rl%d_punt%d", id, w), cfg.Dataplane.PuntRing, -1, dpdk.RingSPSC)
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		e.punt = append(e.punt, r)
		var inj []*dpdk.Ring
		for p := range e.ports {
			r, err := eal.NewRing(fmt.Sprintf("rl%d_inj%d_%d", id, w, p), cfg.Dataplane.InjectRing, -1, dpdk.RingSPSC)
			if err != nil {
				return nil, fmt.Errorf("relay: %w", err)
			}
			inj = append(inj, r)
		}
		e.inject = append(e.inject, inj)
	}
	if e.vec, err = dpdk.NewMbufVec(max(cfg.Dataplane.PuntRing, 1)); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	e.stats = make([]dpdk.BurstStats, n)
	e.egress = make([][]*egress.Port[*dpdk.Burst], n)
	return e, nil
}

// Tables returns the tables the control core installs routes, keys and
// peer classes in.
func (e *Engine) Tables() *Tables { return e.tables }

// Counters returns the per-core counters, readable at any time.
func (e *Engine) Counters() *counters.Set { return e.counters }

// RouteCounters returns the per-route counters, readable at any time: the
// control core gives each route direction a slot of its own
// (route.Route.Counter), 1 to Slots()-1. Workers publish them about every
// millisecond.
func (e *Engine) RouteCounters() *counters.Routes { return e.routeCtrs }

// Neighbors is where the control core's neighbour resolver publishes the
// next-hop MACs that routes with route.FlagResolveMAC use.
func (e *Engine) Neighbors() *neigh.Published { return e.neigh }

// Addrs returns the relay's own addresses per port.
func (e *Engine) Addrs() *neigh.Addrs { return e.addrs }

// Ports returns the ports, by port index (the order of Config.Ports).
func (e *Engine) Ports() []PortInfo { return e.info }

// Workers returns the number of workers.
func (e *Engine) Workers() int { return len(e.cores) }

// engineState is where an Engine is in its life: Start moves it from
// opened to started, Stop from either to stopped, for good.
type engineState uint8

const (
	engineOpened engineState = iota
	engineStarted
	engineStopped
)

// Start starts one worker per worker core. Worker i polls RX queue i of
// every port in turn and sends on TX queue i; its Burst drains its inject
// rings and fills its punt ring.
func (e *Engine) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != engineOpened {
		return ErrStarted
	}
	e.state = engineStarted
	macs := make([]wire.MAC, len(e.info))
	for i, p := range e.info {
		macs[i] = p.MAC
	}
	for i, core := range e.cores {
		w, err := NewWorker[*dpdk.Burst](WorkerConfig{
			ID: i, Tables: e.tables, Counters: e.counters.Core(i), Matcher: e.matcher,
			Routes: e.routeCtrs.Core(i), RoutesEvery: e.eal.TSCHz() / 1000,
			Addrs: e.addrs, Neighbors: e.neigh, MACs: macs, KeepAuth: !e.cfg.NoHopAuth,
		})
		if err != nil {
			e.stopWorkersLocked()
			return err
		}
		dw, err := e.eal.StartWorker(core, func(dw *dpdk.Worker) error { return e.loop(dw, i, w) })
		if err != nil {
			e.stopWorkersLocked()
			return fmt.Errorf("relay: worker on core %d: %w", core, err)
		}
		e.workers = append(e.workers, dw)
	}
	e.log.Info().Int("workers", len(e.cores)).Int("ports", len(e.ports)).Bool("hop_auth", !e.cfg.NoHopAuth).
		Str("hop_macs", e.tables.MACEngine()).Msg("relay started")
	return nil
}

// loop is worker i's life: poll every port's RX queue i in turn until told
// to stop, then flush what is pending.
func (e *Engine) loop(dw *dpdk.Worker, i int, w *Worker[*dpdk.Burst]) error {
	tx := make([]dpdk.Queue, len(e.ports))
	rx := make([]dpdk.Queue, len(e.ports))
	for p, port := range e.ports {
		tx[p], rx[p] = port.TxQueue(i), port.RxQueue(i)
	}
	// KeepRefused and CollectInject: the egress class queues keep what
	// the PMD refuses and queue the control core's frames in class Control.
	b, err := e.eal.NewBurst(dpdk.BurstConfig{
		Size: e.cfg.Dataplane.Burst, Tx: tx, Inject: e.inject[i], Punt: e.punt[i], Socket: -1,
		KeepRefused: true, CollectInject: true,
	})
	if err != nil {
		return fmt.Errorf("relay: worker %d: %w", i, err)
	}
	eg, err := e.newEgress(b, i)
	if err == nil {
		err = w.AttachEgress(eg)
	}
	if err != nil {
		b.Close()
		return fmt.Errorf("relay: worker %d: %w", i, err)
	}
	// idle counts rounds over every port that received nothing; past
	// idleRounds of them the worker sleeps IdleSleep per round ([dataplane]
	// idle_sleep, 0 by default: a dedicated core polls without pause). The
	// run of empty rounds first keeps a short gap between bursts from
	// costing a sleep.
	const idleRounds = 256
	sleep, idle := e.cfg.Dataplane.IdleSleep, 0
	for !dw.Stopping() {
		got := 0
		for p := range rx {
			// Every Cycle sends every TX buffer: each gets what its
			// class queues release first.
			w.Drain(b)
			in := b.Cycle(rx[p])
			got += len(in)
			w.Burst(b, p, in)
		}
		if sleep <= 0 {
			continue
		}
		// Frames waiting in the class queues (a shaped port) are work
		// too: sleeping on them would stretch the shaper's gaps.
		if got > 0 || w.Backlog() > 0 {
			idle = 0
		} else if idle++; idle > idleRounds {
			time.Sleep(sleep)
		}
	}
	w.CloseEgress(b)
	b.Close()
	e.statsMu.Lock()
	e.stats[i] = b.Stats()
	e.statsMu.Unlock()
	return nil
}

// newEgress makes worker i's egress, one Port per port on TX buffer p of
// b (TX queue i of port p), shaped to the port's egress_rate_mbps shared by
// its TX queues, and registers them for EgressStats.
func (e *Engine) newEgress(b *dpdk.Burst, i int) ([]*egress.Port[*dpdk.Burst], error) {
	eg := make([]*egress.Port[*dpdk.Burst], len(e.ports))
	now := int64(b.TSC())
	for p, port := range e.ports {
		_, txd := port.Descriptors()
		link := 0
		if l, err := port.Link(); err == nil && l.Up {
			link = int(l.SpeedMbps)
		}
		var err error
		eg[p], err = egress.New(b, p, egress.Config{
			Sched: e.cfg.Sched, EgressRateMbps: e.cfg.Ports[p].EgressRateMbps, TxQueues: len(e.cores),
			LinkMbps: link, TxDescriptors: txd, TicksPerSecond: e.eal.TSCHz(),
		}, now, e.log.With().Str("subsystem", "egress").Int("worker", i).Str("port", e.info[p].Name).Logger())
		if err != nil {
			return nil, fmt.Errorf("port %s: %w", e.info[p].Name, err)
		}
	}
	e.statsMu.Lock()
	e.egress[i] = eg
	e.statsMu.Unlock()
	return eg, nil
}

// QueueStats are the egress counters of one TX queue of one port: one
// worker's class queues in front of it.
type QueueStats struct {
	// Port is the port index, Queue the TX queue (the worker's index).
	Port, Queue int
	// Class is indexed by sched.Class.
	Class [sched.NumClasses]ClassStats
	// Injected counts control frames taken from the inject ring into class
	// Control.
	Injected uint64
	// FloorServed and MaxWaitServed count the Deprioritised frames the
	// starvation guard sent ahead of their turn.
	FloorServed, MaxWaitServed uint64
}

// ClassStats are one class queue's counters. Counts are cumulative.
type ClassStats struct {
	// Sent counts the frames and bytes the NIC took (requeued refusals
	// are not sent until they are taken).
	SentPkts, SentBytes uint64
	// Dropped counts frames refused at a full queue (tail drop) or freed
	// still queued at shutdown.
	DroppedPkts, DroppedBytes uint64
	// Requeued counts frames the NIC refused that went back to the queue.
	RequeuedPkts uint64
	// Depth is the frames queued now, DepthBytes their bytes.
	Depth      int
	DepthBytes uint64
	// Share is the class's part of the bytes the queue sent, 0 to 1 (0
	// while nothing was sent): the figure the floor and caps are about.
	Share float64
}

// EgressStats returns the egress counters of every (port, TX queue) that
// a worker has set up, port by port, as last published by the workers
// (every egress.Config.PublishMicros, and when they stop). Safe from any
// goroutine, at any time, after Stop too.
func (e *Engine) EgressStats() []QueueStats {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	var out []QueueStats
	for p := range e.ports {
		for w, eg := range e.egress {
			if eg == nil {
				continue
			}
			out = append(out, queueStats(p, w, eg[p].Stats()))
		}
	}
	return out
}

func queueStats(port, queue int, st egress.Stats) QueueStats {
	q := QueueStats{Port: port, Queue: queue, Injected: st.Injected, FloorServed: st.FloorServed, MaxWaitServed: st.MaxWaitServed}
	var total uint64
	for _, c := range st.Class {
		total += c.SentBytes
	}
	for c, cs := range st.Class {
		q.Class[c] = ClassStats{
			SentPkts: cs.SentPkts, SentBytes: cs.SentBytes, DroppedPkts: cs.DroppedPkts, DroppedBytes: cs.DroppedBytes,
			RequeuedPkts: cs.RequeuedPkts, Depth: cs.Depth, DepthBytes: cs.DepthBytes,
		}
		if total != 0 {
			q.Class[c].Share = float64(cs.SentBytes) / float64(total)
		}
	}
	return q
}

// BurstStats returns each worker's Burst counters (TX refused by the PMD,
// punts lost to a full ring), final once Stop returned.
func (e *Engine) BurstStats() []dpdk.BurstStats {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	return append([]dpdk.BurstStats(nil), e.stats...)
}

// Stop shuts the data plane down in the only safe order: the workers stop
// and flush, then the rings are drained, the ports stop and close, and the
// EAL closes if the engine started it (leaving nothing in /var/run/dpdk or
// hugetlbfs). No port is stopped under a worker, so the PMDs have nothing to
// complain about. A second Stop returns nil.
func (e *Engine) Stop() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == engineStopped {
		return nil
	}
	e.state = engineStopped
	err := e.stopWorkersLocked()
	e.drainLocked()
	err = errors.Join(err, e.closePorts())
	if e.vec != nil {
		e.vec.Close()
		e.vec = nil
	}
	if e.ownsEAL {
		err = errors.Join(err, e.eal.Close())
	}
	e.log.Info().Err(err).Msg("relay stopped")
	return err
}

func (e *Engine) stopWorkersLocked() error {
	for _, w := range e.workers {
		w.Stop()
	}
	var err error
	for _, w := range e.workers {
		err = errors.Join(err, w.Wait())
	}
	e.workers = nil
	return err
}

// drainLocked frees what is left in the rings: punted frames nobody read
// and injected frames no worker sent.
func (e *Engine) drainLocked() {
	if e.vec == nil {
		return
	}
	ms := e.vec.Mbufs()
	drain := func(r *dpdk.Ring) {
		for n := r.DequeueBurst(ms); n > 0; n = r.DequeueBurst(ms) {
			dpdk.FreeBulk(ms[:n])
		}
	}
	for w := range e.punt {
		drain(e.punt[w])
		for _, r := range e.inject[w] {
			drain(r)
		}
	}
}

func (e *Engine) closePorts() error {
	e.portsMu.Lock()
	e.portsClosed = true
	e.portsMu.Unlock()
	var err error
	for _, p := range e.ports {
		err = errors.Join(err, p.Close())
	}
	return err
}

// ErrPortsClosed is returned by PortStats once Stop has closed the ports.
var ErrPortsClosed = errors.New("relay: ports closed")

// PortStats appends every port's device counters (rte_eth_stats_get), in
// port index order, to dst: what the NIC or PMD itself counted, so they
// include every frame sent, relayed or injected by the control core
// (handshakes, heartbeats, CLOSE), which the workers' per-port counters
// (Counters) do not see leave. Safe from any goroutine; not for the packet
// path. A port whose counters cannot be read is left zero and its error
// returned with the others; after Stop it returns ErrPortsClosed.
func (e *Engine) PortStats(dst []dpdk.Stats) ([]dpdk.Stats, error) {
	e.portsMu.RLock()
	defer e.portsMu.RUnlock()
	if e.portsClosed {
		return dst, ErrPortsClosed
	}
	var errs error
	for _, p := range e.ports {
		st, err := p.Stats()
		errs = errors.Join(errs, err)
		dst = append(dst, st)
	}
	return dst, errs
}

// Inject copies frame into an mbuf and queues it for port (a port index).
// Every injection goes through worker 0's inject ring for the port, so the
// frames the control core sends on a port leave in the order it sent them.
// It returns ErrInjectFull when the ring has no room and an error wrapping
// dpdk.ErrNoMbufs or dpdk.ErrTooLarge when the frame cannot be copied.
func (e *Engine) Inject(port int, frame []byte) error {
	if port < 0 || port >= len(e.ports) {
		return fmt.Errorf("%w: %d", ErrNoPort, port)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == engineStopped {
		return dpdk.ErrClosed
	}
	ms := e.vec.Mbufs()[:1]
	if err := e.pool.AllocBulk(ms); err != nil {
		return fmt.Errorf("relay: inject: %w", err)
	}
	m := ms[0]
	if err := m.CopyFrom(frame); err != nil {
		m.Free()
		return fmt.Errorf("relay: inject: %w", err)
	}
	m.SetPort(e.ports[port].ID())
	if e.inject[0][port].EnqueueBurst(ms) != 1 {
		m.Free()
		return ErrInjectFull
	}
	return nil
}

// ReadPunted takes every frame waiting on the punt rings, calls fn with
// the port index it arrived on and a copy of its bytes (fn may keep it),
// frees the mbufs and returns how many frames it read. It is for the
// control core: a copy per frame is cheap at control rates.
func (e *Engine) ReadPunted(fn func(port int, frame []byte)) int {
	e.mu.Lock()
	if e.state == engineStopped {
		e.mu.Unlock()
		return 0
	}
	type punted struct {
		port  int
		frame []byte
	}
	var got []punted
	ms := e.vec.Mbufs()
	for _, r := range e.punt {
		for n := r.DequeueBurst(ms); n > 0; n = r.DequeueBurst(ms) {
			for _, m := range ms[:n] {
				p, ok := e.index[m.Port()]
				if !ok {
					p = -1
				}
				got = append(got, punted{p, bytes.Clone(m.Data())})
			}
			dpdk.FreeBulk(ms[:n])
		}
	}
	e.mu.Unlock()
	// fn runs without the lock: it may Inject.
	for _, p := range got {
		fn(p.port, p.frame)
	}
	return len(got)
}
