package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/poolrelay/poolrelay/bench/internal/stats"
	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/relay"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/internal/traffic"
	"github.com/poolrelay/poolrelay/sched"
)

// The memif section (-memif): the project's generator (package
// internal/traffic's frames, sent by a worker on the main core) feeds a
// net_memif pair, and whatever forwards on the other end sends the frames
// back; the generator counts what comes back, and that rate is the figure.
// Two kinds of other end, each on the worker core, in the same rounds:
//
//   - dpdk-testpmd (io, macswap; --port-topology=loop, one forwarding core)
//     in its own process, the memif's client;
//   - the relay worker (dataplane/relay through its egress class queues, as
//     the net_null "relay" rows) in this process, on a memif client port of
//     this EAL, with hop authentication on and off.
//
// Unlike net_null, memif copies every frame into and out of shared rings,
// and the generator pays for both directions on its one core, so its own
// rate is printed beside each figure.

// memifRow is one row of the memif table, in table order: a testpmd mode
// or a relay run.
type memifRow struct {
	name    string
	testpmd string      // the testpmd mode, or "" for a relay run
	relay   *relayBench // the relay run's state, or nil
}

var (
	memifRelayNoAuth = &relayBench{name: "memif relay noauth"}
	memifRelayAuth   = &relayBench{name: "memif relay", auth: true}
	memifRows        = []memifRow{
		{name: "dpdk-testpmd io", testpmd: "io"},
		{name: "dpdk-testpmd macswap", testpmd: "macswap"},
		{name: "relay noauth", relay: memifRelayNoAuth},
		{name: "relay (hop auth)", relay: memifRelayAuth},
	}
)

// The memif hop's addresses: the generator sends from genMAC/genIP to the
// relay's port, relayMAC/relayIP, and the route the harness installs sends
// each frame back the same way.
var (
	memifGenMAC   = wire.MAC{0x02, 0, 0, 0, 0, 0x20}
	memifRelayMAC = wire.MAC{0x02, 0, 0, 0, 0, 0x21}
	memifGenIP    = netip.MustParseAddr("198.51.100.20")
	memifRelayIP  = netip.MustParseAddr("198.51.100.21")
)

// memifSample is one measured second of one run.
type memifSample struct {
	tx, refused, rx float64 // Mpps: accepted by the memif, refused (ring full), come back
}

// memifResults are the samples of every memif run, by row name, and what
// the generator could not do.
type memifResults struct {
	samples   map[string][]memifSample
	allocFail map[string]uint64 // bursts skipped: the TX pool was empty
}

// memifBench is the memif section's ports, on the benchmark's EAL: two
// server ports the generator sends from (one towards testpmd, one towards
// the relay's client port), each with a socket file of its own in a
// private directory, since abstract sockets are machine-wide.
type memifBench struct {
	s         *session
	dir       string
	toTestpmd *dpdk.Port // server; testpmd's vdev is the client
	toRelay   *dpdk.Port // server
	relay     *dpdk.Port // client, the relay worker's port
	txPool    *dpdk.Mempool
	spec      traffic.Spec
}

// memifKey is the benchmark hop's key: the generator MACs under it and the
// relay verifies and re-signs under it.
var memifKey = []byte("poolrelay memif benchmark key..!")

// openMemif opens the memif ports on s's EAL (hot-plugged) and prefills the
// generator's TX pool.
func openMemif(s *session) (m *memifBench, err error) {
	dir, err := os.MkdirTemp("", "poolrelay-memif")
	if err != nil {
		return nil, err
	}
	m = &memifBench{s: s, dir: dir}
	defer func() {
		if err != nil {
			m.close()
		}
	}()
	c := s.c
	m.spec = traffic.Spec{Size: c.size, Sessions: 1, Dst: memifRelayMAC, Src: memifGenMAC,
		SrcIP: memifGenIP, DstIP: memifRelayIP, Key: memifKey}
	pools := s.e.NewPools("memif", c.mbufs, 256, 0)
	open := func(dev string) (*dpdk.Port, error) {
		pc := dataplane.DefaultPortConfig()
		pc.Name, pc.Device, pc.RxQueues, pc.TxQueues = dpdk.PortName(dev), dev, 1, 1
		return s.e.OpenPort(pc, 1, pools)
	}
	if m.toTestpmd, err = open(m.device(20, "server", "testpmd.sock")); err != nil {
		return nil, err
	}
	if m.toRelay, err = open(m.device(21, "server", "relay.sock")); err != nil {
		return nil, err
	}
	if m.relay, err = open(m.device(22, "client", "relay.sock")); err != nil {
		return nil, err
	}
	if err := waitLink(context.Background(), m.toRelay, 5*time.Second); err != nil {
		return nil, err
	}
	// The generator's frames come from a pool of their own, so received
	// frames (in the ports' pool) never land in one: every mbuf of it
	// holds a frame of the Builder's layout, and sending one costs a
	// Stamp (the prefill mode of cmd/pool_gen).
	if m.txPool, err = s.e.NewMempool("memif_gen", c.mbufs, 256, 0, m.toRelay.Socket()); err != nil {
		return nil, err
	}
	b, err := traffic.NewBuilder(m.spec)
	if err != nil {
		return nil, err
	}
	all, done, err := m.txPool.TakeAll()
	if err != nil {
		return nil, err
	}
	defer done()
	for _, mb := range all {
		buf := mb.SetLen(c.size)
		if buf == nil {
			return nil, fmt.Errorf("bench: memif: %d-byte frames do not fit the pool's mbufs", c.size)
		}
		if _, err := b.Frame(buf, 0); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// device is the vdev string of memif port n, role server or client, on
// socket file sock in m's directory.
func (m *memifBench) device(n int, role, sock string) string {
	return fmt.Sprintf("net_memif%d,role=%s,id=0,socket-abstract=no,socket=%s", n, role, filepath.Join(m.dir, sock))
}

// close closes the ports and removes the socket directory. The TX pool
// goes with the EAL.
func (m *memifBench) close() {
	for _, p := range []*dpdk.Port{m.relay, m.toRelay, m.toTestpmd} {
		if p != nil {
			if err := p.Close(); err != nil {
				m.s.log.Warn().Err(err).Str("port", p.Name()).Msg("closing memif port")
			}
		}
	}
	os.RemoveAll(m.dir)
}

// waitLink waits up to limit for p's link: a memif client and server
// connect through their socket after both started.
func waitLink(ctx context.Context, p *dpdk.Port, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		l, err := p.Link()
		if err != nil || l.Up {
			return nil // a PMD without link status is taken as up
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("bench: memif port %s: link down after %v", p.Name(), limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runMemif runs every memif row once per round, interleaved as the net_null
// rows are.
func runMemif(ctx context.Context, s *session, mem *memory, stderr io.Writer) (memifResults, error) {
	res := memifResults{samples: map[string][]memifSample{}, allocFail: map[string]uint64{}}
	m, err := openMemif(s)
	if err != nil {
		return res, fmt.Errorf("bench: memif: %w", err)
	}
	defer m.close()
	for round := 1; round <= s.c.rounds; round++ {
		for _, row := range memifRows {
			fmt.Fprintf(stderr, "bench: memif round %d/%d: %s\n", round, s.c.rounds, row.name)
			var g genResult
			if row.relay != nil {
				g, err = m.runRelay(ctx, row.relay)
			} else {
				g, err = m.runTestpmd(ctx, mem, row.testpmd)
			}
			if err != nil {
				return res, fmt.Errorf("bench: memif %s: %w", row.name, err)
			}
			res.samples[row.name] = append(res.samples[row.name], g.samples...)
			res.allocFail[row.name] += g.allocFail
		}
	}
	return res, nil
}

// runTestpmd runs testpmd in mode on the client end of the testpmd memif
// and the generator on the server end.
func (m *memifBench) runTestpmd(ctx context.Context, mem *memory, mode string) (genResult, error) {
	c := m.s.c
	dev := fmt.Sprintf("net_memif0,role=client,id=0,socket-abstract=no,socket=%s", filepath.Join(m.dir, "testpmd.sock"))
	tp, err := startTestpmd(c, mem, mode, []string{dev}, []string{"--port-topology=loop"})
	if err != nil {
		return genResult{}, err
	}
	var runErr error
	select {
	case <-tp.out.started:
	case <-tp.out.done:
		runErr = errors.New("testpmd ended before forwarding started")
	case <-ctx.Done():
		runErr = errors.New("interrupted")
	}
	var g genResult
	if runErr == nil {
		if runErr = waitLink(ctx, m.toTestpmd, 10*time.Second); runErr == nil {
			g, runErr = m.generate(ctx, m.toTestpmd, false)
		}
	}
	werr := tp.finish()
	if runErr != nil {
		return g, fmt.Errorf("%w (testpmd: %v); its output ends:\n%s", runErr, werr, tail(tp.log.String(), 30))
	}
	return g, nil
}

// runRelay sets up rb's tables and worker for the memif hop, runs the
// worker on the relay's memif port on the worker core and the generator on
// the other end, and stops the worker.
func (m *memifBench) runRelay(ctx context.Context, rb *relayBench) (genResult, error) {
	c, e := m.s.c, m.s.e
	rb.fold()
	if err := rb.setupMemif(m.spec); err != nil {
		return genResult{}, err
	}
	port := m.relay
	w, err := e.StartWorker(c.workCore, func(w *dpdk.Worker) error {
		b, err := e.NewBurst(dpdk.BurstConfig{Size: c.burst, Tx: []dpdk.Queue{port.TxQueue(0)}, Socket: -1,
			KeepRefused: true, CollectInject: true})
		if err != nil {
			return err
		}
		defer b.Close()
		if err := rb.attach(e, b, []*dpdk.Port{port}); err != nil {
			return err
		}
		rxq := port.RxQueue(0)
		for !w.Stopping() {
			rb.w.Drain(b)
			rb.w.Burst(b, 0, b.Cycle(rxq))
		}
		rb.w.CloseEgress(b)
		return nil
	})
	if err != nil {
		return genResult{}, err
	}
	g, gerr := m.generate(ctx, m.toRelay, rb.auth)
	// Let the worker empty its RX ring before it stops: frames left there
	// would reach the next relay run, whose hop authentication would drop
	// the unsigned ones of a run without it. What it sends back now lands
	// in the next run's warm-up second.
	time.Sleep(100 * time.Millisecond)
	w.Stop()
	if err := w.Wait(); err != nil {
		return g, err
	}
	return g, gerr
}

// setupMemif gives rb fresh tables, counters and a worker for the memif
// hop: one route, for the generator's session 0, back out of the port it
// came in on (port index 0) to the generator, under the key the generator
// MACs with.
func (rb *relayBench) setupMemif(spec traffic.Spec) error {
	rt, err := route.New(1024)
	if err != nil {
		return err
	}
	if rb.t, err = relay.NewTables(rt, 1, 16, 4); err != nil {
		return err
	}
	if err := rb.t.SetHopKeys(benchSlot, memifKey, memifKey); err != nil {
		return err
	}
	if err := rb.t.SetPeer(benchPeerIn, sched.Normal, false); err != nil {
		return err
	}
	r := route.Route{
		IngressPeer: benchPeerIn, IngressKey: benchSlot, EgressPeer: benchPeerTo, EgressKey: benchSlot,
		EgressPort: 0, DstMAC: spec.Src, SrcMAC: spec.Dst,
		SrcPort: wire.RelayPort, DstPort: wire.RelayPort, Encap: route.EncapUDP,
	}
	if err := r.SetAddrs(spec.DstIP, spec.SrcIP); err != nil {
		return err
	}
	if err := rt.Put(route.SessionID(traffic.HopSession(0)), r); err != nil {
		return err
	}
	if rb.set, err = counters.New(1, 16, int(relay.NumReasons), 1); err != nil {
		return err
	}
	rb.m = wire.NewMatcher(wire.PoolPort, wire.RelayPort)
	rb.w, err = relay.NewWorker[*dpdk.Burst](relay.WorkerConfig{
		Tables: rb.t, Counters: rb.set.Core(0), Matcher: rb.m,
		MACs: []wire.MAC{spec.Dst}, KeepAuth: rb.auth,
	})
	return err
}

// genResult is one generator run.
type genResult struct {
	samples   []memifSample
	allocFail uint64
}

// generate runs the generator on the main core, sending on port and
// counting what comes back on it, for the warm-up and measured seconds.
// With sign, every frame carries a fresh hop MAC under memifKey (the relay
// with hop authentication verifies it); without, only a fresh seq.
func (m *memifBench) generate(ctx context.Context, port *dpdk.Port, sign bool) (genResult, error) {
	c, e := m.s.c, m.s.e
	spec := m.spec
	if !sign {
		spec.Key = nil
	}
	builder, err := traffic.NewBuilder(spec)
	if err != nil {
		return genResult{}, err
	}
	hz := e.TSCHz()
	res := genResult{samples: make([]memifSample, 0, c.seconds)}
	w, err := e.StartWorker(c.mainCore, func(w *dpdk.Worker) error {
		vec, err := dpdk.NewMbufVec(c.burst)
		if err != nil {
			return err
		}
		defer vec.Close()
		b, err := e.NewBurst(dpdk.BurstConfig{Size: c.burst, Tx: []dpdk.Queue{port.TxQueue(0)}, Socket: -1})
		if err != nil {
			return err
		}
		defer b.Close()
		res.allocFail = genLoop(w, b, m.txPool, builder, vec.Mbufs(), port.RxQueue(0), hz, c.warmup, &res.samples)
		return nil
	})
	if err != nil {
		return res, err
	}
	select {
	case <-w.Done():
	case <-ctx.Done():
		w.Stop()
	}
	if err := w.Wait(); err != nil {
		return res, err
	}
	if ctx.Err() != nil {
		return res, errors.New("bench: interrupted")
	}
	if len(res.samples) == 0 {
		return res, errors.New("bench: the generator measured nothing")
	}
	return res, nil
}

// genLoop is the generator's worker loop: allocate a burst from pool (whose
// frames all have builder's layout), stamp each with the session's next seq
// (and MAC), hand them to b, whose Cycle sends them and receives what came
// back; free what came back. Once a second (by the TSC, read by Cycle) it
// takes a sample of b's counters, and after warmup of them it appends
// until samples is full. It returns the number of bursts it could not
// allocate. Nothing in the loop allocates or makes a cgo call but
// AllocBulk and Cycle.
func genLoop(w *dpdk.Worker, b *dpdk.Burst, pool *dpdk.Mempool, builder *traffic.Builder, frames []*dpdk.Mbuf,
	rxq dpdk.Queue, hz uint64, warmup int, samples *[]memifSample) (allocFail uint64) {
	size := builder.Spec().Size
	var last dpdk.BurstStats
	// A first Cycle reads the TSC; what it received (left over from an
	// earlier run) is freed like the rest.
	for _, mb := range b.Cycle(rxq) {
		b.Drop(mb)
	}
	lastTSC := b.TSC()
	next := lastTSC + hz
	for i := 0; len(*samples) < cap(*samples) && !w.Stopping(); {
		if pool.AllocBulk(frames) == nil {
			for _, mb := range frames {
				// Neither can fail: the pool holds only the Builder's
				// layout, and session 0 is its own.
				_ = builder.Stamp(mb.SetLen(size), 0)
			}
			b.SendBurst(0, frames)
		} else {
			allocFail++
		}
		for _, mb := range b.Cycle(rxq) {
			b.Drop(mb)
		}
		if now := b.TSC(); now >= next {
			st := b.Stats()
			secs := float64(now-lastTSC) / float64(hz)
			if i >= warmup {
				*samples = append(*samples, memifSample{
					tx:      float64(st.Tx-last.Tx) / secs / 1e6,
					refused: float64(st.TxUnsent-last.TxUnsent) / secs / 1e6,
					rx:      float64(st.Rx-last.Rx) / secs / 1e6,
				})
			}
			i++
			last, lastTSC, next = st, now, now+hz
		}
	}
	return allocFail
}

// generatorBound reports whether the generator, not the other end, set a
// run's rate: nearly everything it sent came back and the memif refused
// next to nothing (a full ring is the other end falling behind).
func generatorBound(s memifSample) bool {
	return s.rx >= 0.95*s.tx && s.refused < 0.05*s.tx
}

// medianSample is the per-field median of samples.
func medianSample(ss []memifSample) memifSample {
	pick := func(f func(memifSample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		return stats.Median(v)
	}
	return memifSample{
		tx:      pick(func(s memifSample) float64 { return s.tx }),
		refused: pick(func(s memifSample) float64 { return s.refused }),
		rx:      pick(func(s memifSample) float64 { return s.rx }),
	}
}

// reportMemif prints the memif table, the relay runs' drops and the line
// memif: relay_mpps=X testpmd_macswap_mpps=Y ratio=Z.
func reportMemif(w io.Writer, c *config, r memifResults) {
	fmt.Fprintf(w, "\nmemif: generator (internal/traffic frames, %d B, one session) on core %d -> net_memif -> other end on core %d -> back\n",
		c.size, c.mainCore, c.workCore)
	fmt.Fprintln(w, "Mpps: gen tx = accepted by the memif, refused = ring full, rx = come back (the figure); medians of per-second samples")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "other end\tgen tx\trefused\trx Mpps\t[min-max]\tratio\tlimit\tbursts not allocated")
	tp := medianSample(r.samples["dpdk-testpmd macswap"]).rx
	for _, row := range memifRows {
		ss := r.samples[row.name]
		if len(ss) == 0 {
			continue
		}
		m := medianSample(ss)
		rx := make([]float64, len(ss))
		for i, s := range ss {
			rx[i] = s.rx
		}
		limit := fmt.Sprintf("other end (%.0f%% came back)", 100*m.rx/max(m.tx+m.refused, 1e-9))
		if generatorBound(m) {
			limit = "generator"
		}
		ratio := ""
		if row.relay != nil && tp > 0 {
			ratio = fmt.Sprintf("%.2fx testpmd macswap", m.rx/tp)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t[%.2f-%.2f]\t%s\t%s\t%d\n", row.name, m.tx, m.refused, m.rx,
			slices.Min(rx), slices.Max(rx), ratio, limit, r.allocFail[row.name])
	}
	tw.Flush()
	for _, rb := range []*relayBench{memifRelayNoAuth, memifRelayAuth} {
		rb.fold()
		var parts []string
		for reason, n := range rb.drops {
			if n != 0 {
				parts = append(parts, fmt.Sprintf("%s=%d", strings.ReplaceAll(relay.Reason(reason).String(), " ", "_"), n))
			}
		}
		if len(parts) == 0 {
			parts = append(parts, "none")
		}
		fmt.Fprintf(w, "%s: drops %s\n", rb.name, strings.Join(parts, " "))
	}
	rl := medianSample(r.samples["relay (hop auth)"]).rx
	ratio := 0.0
	if tp > 0 {
		ratio = rl / tp
	}
	if ss := r.samples["dpdk-testpmd macswap"]; len(ss) > 0 && generatorBound(medianSample(ss)) {
		fmt.Fprintln(w, "memif: testpmd macswap took all the generator sent: its figure is a floor, the ratio a ceiling")
	}
	fmt.Fprintf(w, "memif: relay_mpps=%.2f testpmd_macswap_mpps=%.2f ratio=%.2f\n", rl, tp, ratio)
}
