package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/rs/zerolog"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/poolrelay/poolrelay/bench/internal/stats"
	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/egress"
	"github.com/poolrelay/poolrelay/dataplane/relay"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/sched"
)

// The relay's runs: the worker of dataplane/relay on the same ports, judged
// against testpmd's macswap (which also rewrites every frame). "relay" comes
// last so that the driver's last line is relay_mpps=X
// testpmd_macswap_mpps=Y ratio=Z.
//
// "relay" and "relay noauth" take the product path, through the egress
// class queues (dataplane/egress, unshaped: every frame goes through
// Enqueue and Drain); "relay noauth direct" hands frames straight to the
// TX buffers, so that the difference is what the egress scheduling costs
// per frame, printed beside the table.
var (
	relayDirect = &relayBench{name: "relay noauth direct"}
	relayNoAuth = &relayBench{name: "relay noauth", egress: true}
	relayAuth   = &relayBench{name: "relay", auth: true, egress: true}
	relayBenchs = []*relayBench{relayDirect, relayNoAuth, relayAuth}
	// relayAuthBig is "relay" again on the 1500 B ports of -auth1500.
	relayAuthBig = &relayBench{name: "relay 1500 B", auth: true, egress: true}
)

func init() {
	for _, rb := range relayBenchs {
		processors = append(processors, rb.processor())
	}
}

// processor is rb as a Processor compared with testpmd's macswap.
func (rb *relayBench) processor() Processor {
	p := Processor{Name: rb.name, Testpmd: "macswap", Frame: rb.frame, Process: rb.process}
	if rb.egress {
		p.Egress = &EgressHooks{Attach: rb.attach, Drain: rb.drain, Detach: rb.detach}
	}
	return p
}

// The benchmark's hop: frames arrive on either port for one route that
// sends them out of port 1 under the key that verifies them, so every frame
// the relay sends is a valid frame for it to receive again.
const (
	benchSlot   = 1
	benchPeerIn = 1
	benchPeerTo = 2
	// Fixed offsets of the untagged IPv4/UDP frames Frame builds.
	benchTTLOff  = wire.EthernetLen + 8
	benchPoolOff = wire.EthernetLen + wire.IPv4MinLen + wire.UDPLen
	// fillSeq marks the frames written into the pool: it is beyond any seq
	// the run hands out, so the harness re-stamps each before its first
	// pass.
	fillSeq = 1 << 59
	// staleSeqs is how far behind the key's sequence a frame's seq may be
	// before the harness re-stamps it: half the replay window.
	staleSeqs = hopmac.WindowSize / 2
)

var benchSession = wire.SessionID{0xbe, 0x4c, 0x11}

// relayBench is one relay Processor: the worker, its tables and counters
// (fresh for each run), and what the harness had to do to keep net_null's
// recycled frames valid.
type relayBench struct {
	name string
	auth bool
	// egress runs the worker through egress class queues, one per port.
	egress bool
	// routes, when set, is the route count of a sweep run: that many
	// routes are installed and the harness writes a different one's
	// session into every frame (hop authentication must then be off: the
	// session is covered by the MAC).
	routes   int
	sessions []wire.SessionID
	next     int
	w        *relay.Worker[*dpdk.Burst]
	t        *relay.Tables
	set      *counters.Set
	m        *wire.Matcher
	res      wire.Result
	drops    []uint64 // by reason, over every finished run
	// restamped counts frames given a fresh seq and MAC by the harness
	// (the pool's initial frames, and frames that sat in the mempool so
	// long that their seq fell out of the replay window); ttlReset frames
	// whose TTL the harness put back after ~250 relays.
	restamped, ttlReset uint64
}

// frame sets up a run (new tables, keys, route, worker) and returns the
// frame to fill the pool with: an outer POOL DATA frame of size bytes for
// the benchmark's route, its inner frame opaque padding (at 128 B only 6
// bytes are left for it).
func (rb *relayBench) frame(size int) []byte {
	rb.fold()
	f := rb.build(size)
	rt, err := route.New(max(1024, rb.routes+1))
	must(err)
	rb.t, err = relay.NewTables(rt, 1, 16, 4)
	must(err)
	key := make([]byte, hopmac.KeySize)
	copy(key, "poolrelay benchmark hop key....")
	must(rb.t.SetHopKeys(benchSlot, key, key))
	must(rb.t.SetPeer(benchPeerIn, sched.Normal, false))
	r := route.Route{
		IngressPeer: benchPeerIn, IngressKey: benchSlot, EgressPeer: benchPeerTo, EgressKey: benchSlot,
		EgressPort: 1, DstMAC: wire.MAC(f[0:6]), SrcMAC: wire.MAC(f[6:12]),
		SrcPort: wire.RelayPort, DstPort: wire.RelayPort, Encap: route.EncapUDP,
	}
	must(r.SetAddrs(wire.IPv4(f[wire.EthernetLen:]).SrcAddr(), wire.IPv4(f[wire.EthernetLen:]).DstAddr()))
	must(rt.Put(route.SessionID(benchSession), r))
	rb.installSweep(rt, r)
	rb.set, err = counters.New(1, 16, int(relay.NumReasons), 2)
	must(err)
	rb.m = wire.NewMatcher(wire.PoolPort, wire.RelayPort)
	rb.w, err = relay.NewWorker[*dpdk.Burst](relay.WorkerConfig{
		Tables: rb.t, Counters: rb.set.Core(0), Matcher: rb.m,
		MACs: []wire.MAC{{0x02, 0, 0, 0, 0, 0x10}, {0x02, 0, 0, 0, 0, 0x11}}, KeepAuth: rb.auth,
	})
	must(err)
	return f
}

func (rb *relayBench) build(size int) []byte {
	buf := make([]byte, max(size, 2048))
	n, err := wire.Build(buf, &wire.FrameSpec{
		Dst: wire.MAC{0x02, 0, 0, 0, 0, 0x03}, Src: wire.MAC{0x02, 0, 0, 0, 0, 0x02},
		SrcIP: netip.MustParseAddr("198.51.100.2"), DstIP: netip.MustParseAddr("198.51.100.3"),
		SrcPort: wire.RelayPort, DstPort: wire.RelayPort,
		Pool:    wire.Fields{Type: wire.TypeData, Seq: fillSeq, Session: benchSession},
		Payload: make([]byte, max(size-benchPoolOff-wire.HeaderLen, 0)),
	})
	must(err)
	return buf[:n]
}

// process is the harness around Worker.Burst. net_null hands out the same
// buffers again and again, so what the relay sent comes back in: valid
// (the route's egress key verifies at ingress), except that each pass takes
// one off the TTL, and a frame that sat long in the mempool carries a seq
// the replay window has left behind (as does every frame of the initial
// fill). Those, and only those, the harness mends before the relay sees
// them, as the sending peer would have; the cost lands in the relay's
// figure. The counts are printed beside the rate.
func (rb *relayBench) process(b *dpdk.Burst, in int, rx []*dpdk.Mbuf) {
	sent := rb.t.Sent(benchSlot)
	for _, m := range rx {
		d := m.Data()
		if len(d) < benchPoolOff+wire.HeaderLen {
			continue
		}
		if rb.sessions != nil {
			*(*wire.SessionID)(d[benchPoolOff+20:]) = rb.sessions[rb.next]
			if rb.next++; rb.next == len(rb.sessions) {
				rb.next = 0
			}
		}
		if d[benchTTLOff] <= 1 {
			ip := wire.IPv4(d[wire.EthernetLen:])
			ip.SetTTL(255)
			ip.UpdateChecksum()
			rb.ttlReset++
		}
		if !rb.auth {
			continue
		}
		if seq := binary.BigEndian.Uint64(d[benchPoolOff+4:]); seq >= sent || seq+staleSeqs < sent {
			rb.restamp(d)
		}
	}
	rb.w.Burst(b, in, rx)
}

func (rb *relayBench) restamp(d []byte) {
	wire.Classify(d, rb.m, &rb.res)
	r := &rb.res
	if r.Drop != wire.DropNone {
		return
	}
	var p wire.UDPPatch
	p.Begin(d, r, int(r.PoolOff)+4, wire.HeaderLen-4)
	if rb.t.Stamp(benchSlot, d[r.PoolOff:int(r.PayloadOff)+int(r.PayloadLen)]) == nil {
		rb.restamped++
	}
	p.End(d)
}

// installSweep installs rb.routes routes like r under random sessions and
// keeps the sessions, in random order, for process to cycle through: every
// frame then looks up a route that is, at 100 K routes and more, far from
// the cache.
func (rb *relayBench) installSweep(rt *route.Table, r route.Route) {
	rb.sessions, rb.next = nil, 0
	if rb.routes == 0 {
		return
	}
	rb.sessions = make([]wire.SessionID, rb.routes)
	var b route.Batch
	for i := range rb.sessions {
		_, _ = rand.Read(rb.sessions[i][:])
		b.Put(route.SessionID(rb.sessions[i]), r)
	}
	must(rt.Apply(&b))
}

// attach gives the worker one unshaped egress Port per port on b, with
// the [sched] defaults, as relay.Engine does.
func (rb *relayBench) attach(e *dpdk.EAL, b *dpdk.Burst, ports []*dpdk.Port) error {
	eg := make([]*egress.Port[*dpdk.Burst], len(ports))
	for p, port := range ports {
		_, txd := port.Descriptors()
		var err error
		eg[p], err = egress.New(b, p, egress.Config{Sched: sched.DefaultConfig(), TxQueues: 1,
			TxDescriptors: txd, TicksPerSecond: e.TSCHz()}, int64(b.TSC()), zerolog.Nop())
		if err != nil {
			return err
		}
	}
	return rb.w.AttachEgress(eg)
}

func (rb *relayBench) drain(b *dpdk.Burst)  { rb.w.Drain(b) }
func (rb *relayBench) detach(b *dpdk.Burst) { rb.w.CloseEgress(b) }

// fold adds the finished run's drops to the totals.
func (rb *relayBench) fold() {
	if rb.set == nil {
		return
	}
	all := rb.set.AllDrops(nil)
	if rb.drops == nil {
		rb.drops = make([]uint64, len(all))
	}
	for i, n := range all {
		rb.drops[i] += n
	}
	rb.set = nil
}

// reportRelay prints each relay run's drop counters by reason and what the
// harness mended, over all rounds.
func reportRelay(w io.Writer, r results) {
	for _, rb := range append(relayBenchs, relayAuthBig) {
		if rb.set == nil && rb.drops == nil {
			continue // not run
		}
		rb.fold()
		var parts []string
		for r, n := range rb.drops {
			if n != 0 {
				parts = append(parts, fmt.Sprintf("%s=%d", strings.ReplaceAll(relay.Reason(r).String(), " ", "_"), n))
			}
		}
		if len(parts) == 0 {
			parts = append(parts, "none")
		}
		fmt.Fprintf(w, "%s: drops %s; harness re-stamped %d frames, reset %d TTLs\n", rb.name, strings.Join(parts, " "), rb.restamped, rb.ttlReset)
	}
	// The egress path's cost: per frame, the relay through the class
	// queues against the relay straight to the TX buffers, both without
	// hop authentication, same rounds.
	if d, q := stats.Median(r.binding[relayDirect.name]), stats.Median(r.binding[relayNoAuth.name]); d > 0 && q > 0 {
		fmt.Fprintf(w, "egress scheduling: %.1f ns/frame (relay noauth %.1f ns/frame through the class queues, %.1f direct)\n",
			1e3/q-1e3/d, 1e3/q, 1e3/d)
	}
	// The same runs in the worker thread's CPU time per frame, which
	// leaves out the time other processes held the core: on a loaded
	// machine the figure to compare two builds by.
	var parts []string
	for _, rb := range relayBenchs {
		if ns := r.cpuNs[rb.name]; len(ns) != 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f [%.1f-%.1f]", rb.name, stats.Median(ns), slices.Min(ns), slices.Max(ns)))
		}
	}
	if len(parts) != 0 {
		fmt.Fprintf(w, "worker CPU ns/frame (thread run time / frames sent, median [min-max]): %s\n", strings.Join(parts, ", "))
	}
}

func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("bench: relay setup: %v", err))
	}
}

// sized returns a session on s's EAL with two more net_null ports of
// size-byte frames (net_null<first> and the next) and a pool of their own;
// its close closes the ports.
func (s *session) sized(name string, size, first int) (*session, error) {
	c := *s.c
	c.size = size
	pools := s.e.NewPools(name, c.mbufs, 256, 0)
	sub := &session{c: &c, e: s.e, log: s.log}
	for p := range sub.ports {
		pc := dataplane.DefaultPortConfig()
		dev := fmt.Sprintf("net_null%d,size=%d", first+p, size)
		pc.Name, pc.Device, pc.RxQueues, pc.TxQueues = dpdk.PortName(dev), dev, 1, 1
		port, err := s.e.OpenPort(pc, 1, pools)
		if err != nil {
			sub.close()
			return nil, err
		}
		sub.undo = append(sub.undo, func() { port.Close() })
		sub.ports[p] = port
	}
	var err error
	if sub.pool, err = pools.For(sub.ports[0].Socket()); err != nil {
		sub.close()
		return nil, err
	}
	return sub, nil
}

// sweepCell is one measured point of the sweep.
type sweepCell struct {
	routes, size int
	// mpps is the wall-clock rate; cpuMpps the rate per second of the
	// worker thread's CPU time (1000 / bindingResult.cpuNs), 0 if unknown.
	mpps, cpuMpps float64
	drops         uint64
	bytesPerRoute float64
}

// sweepRatio is one frame size's last / first route count ratio (1M / 1K
// by default): the median over rounds of each round's ratio, by wall clock
// and by worker CPU time.
type sweepRatio struct {
	size      int
	wall, cpu float64
}

// relaySweep measures the relay (hop authentication off, a different
// route's session in every frame) over route counts and frame sizes on
// net_null ports hot-plugged into s's EAL, one pair per size, and returns
// the cells in order. It runs every cell once per round, rounds one after
// another, so that the cells compared (1K and 1M routes) are measured
// minutes apart at most and each in every spell of a shared machine's
// load; a cell's Mpps is the median of its samples over all rounds (its
// cpuMpps the median of its rounds').
func relaySweep(ctx context.Context, s *session, routes, sizes []int, rounds int, log io.Writer) (cells []sweepCell, ratios []sweepRatio, err error) {
	subs := make([]*session, len(sizes))
	for i, size := range sizes {
		if subs[i], err = s.sized(fmt.Sprintf("sweep%d", size), size, 10+2*i); err != nil {
			return nil, nil, err
		}
		defer subs[i].close()
	}
	k := func(i, j int) int { return i*len(routes) + j }
	benches := make([]*relayBench, len(sizes)*len(routes))
	rates := make([][]float64, len(benches))
	wall := make([][]float64, len(benches)) // each round's median
	cpu := make([][]float64, len(benches))  // each round's
	for round := 1; round <= rounds; round++ {
		for i, size := range sizes {
			for j, n := range routes {
				rb := benches[k(i, j)]
				if rb == nil {
					rb = &relayBench{name: fmt.Sprintf("sweep %d routes %d B", n, size), routes: n}
					benches[k(i, j)] = rb
				}
				fmt.Fprintf(log, "bench: sweep round %d/%d: %d routes %d B\n", round, rounds, n, size)
				res, err := subs[i].run(ctx, Processor{Name: rb.name, Frame: rb.frame, Process: rb.process})
				if err != nil {
					return nil, nil, err
				}
				rates[k(i, j)] = append(rates[k(i, j)], res.rates...)
				wall[k(i, j)] = append(wall[k(i, j)], stats.Median(res.rates))
				var cpuMpps float64 // frames per µs of the worker's CPU time
				if len(res.cpuNs) > 0 {
					cpuMpps = 1e3 / stats.Median(res.cpuNs)
				}
				cpu[k(i, j)] = append(cpu[k(i, j)], cpuMpps)
			}
		}
	}
	ratio := func(first, last []float64) float64 {
		var rs []float64
		for r := range first {
			if first[r] > 0 {
				rs = append(rs, last[r]/first[r])
			}
		}
		if len(rs) == 0 {
			return 0
		}
		return stats.Median(rs)
	}
	for i, size := range sizes {
		for j, n := range routes {
			rb := benches[k(i, j)]
			cell := sweepCell{routes: n, size: size, mpps: stats.Median(rates[k(i, j)]), cpuMpps: stats.Median(cpu[k(i, j)]),
				bytesPerRoute: rb.t.Routes().Stats().BytesPerRoute()}
			rb.fold()
			for _, d := range rb.drops {
				cell.drops += d
			}
			cells = append(cells, cell)
		}
		first, last := k(i, 0), k(i, len(routes)-1)
		ratios = append(ratios, sweepRatio{size: size, wall: ratio(wall[first], wall[last]), cpu: ratio(cpu[first], cpu[last])})
	}
	return cells, ratios, nil
}

// writeSweep writes the cells as CSV and draws Mpps against routes, one
// line per frame size, as a PNG (or SVG, by the extension): Mpps per
// second of worker CPU time where the cells have it (the figure a shared
// machine does not blur), else by wall clock.
func writeSweep(csvPath, plotPath string, cells []sweepCell) error {
	var b strings.Builder
	b.WriteString("routes,size_bytes,mpps,gbps,ns_per_frame,drops,bytes_per_route,cpu_mpps\n")
	useCPU := len(cells) > 0
	for _, c := range cells {
		fmt.Fprintf(&b, "%d,%d,%.3f,%.3f,%.1f,%d,%.1f,%.3f\n", c.routes, c.size, c.mpps, c.mpps*float64(c.size)*8/1e3, 1e3/c.mpps, c.drops, c.bytesPerRoute, c.cpuMpps)
		useCPU = useCPU && c.cpuMpps > 0
	}
	if err := os.WriteFile(csvPath, []byte(b.String()), 0o644); err != nil {
		return err
	}
	p := plot.New()
	p.Title.Text = "relay worker, one core, hop auth off, a different route per frame"
	p.X.Label.Text = "routes"
	p.Y.Label.Text = "Mpps (wall clock)"
	if useCPU {
		p.Y.Label.Text = "Mpps per second of the worker's CPU time"
	}
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	bySize := map[int]plotter.XYs{}
	var sizes []int
	for _, c := range cells {
		if _, ok := bySize[c.size]; !ok {
			sizes = append(sizes, c.size)
		}
		y := c.mpps
		if useCPU {
			y = c.cpuMpps
		}
		bySize[c.size] = append(bySize[c.size], plotter.XY{X: float64(c.routes), Y: y})
	}
	for i, size := range sizes {
		l, pts, err := plotter.NewLinePoints(bySize[size])
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		pts.Color = plotutil.Color(i)
		p.Add(l, pts)
		p.Legend.Add(fmt.Sprintf("%d B", size), l, pts)
	}
	p.Y.Min = 0
	return p.Save(8*vg.Inch, 5*vg.Inch, plotPath)
}
