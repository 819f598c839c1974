package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/internal/traffic"
)

// Fill modes: how a frame gets into the mbuf that carries it.
const (
	// modePrefill writes every frame once, into every mbuf of the TX pool,
	// before the run: DPDK leaves an mbuf's data alone when it is freed,
	// so an allocated mbuf already holds a frame, and sending it costs
	// restoring its length and writing the next session's ids, seq and MAC
	// (traffic.Builder.Stamp).
	modePrefill = "prefill"
	// modeBuild builds each frame from scratch into a fresh mbuf
	// (traffic.Builder.Frame): the comparison for prefill.
	modeBuild = "build"
)

// genConfig is one run of the generator.
type genConfig struct {
	// TxDevice sends, RxDevice receives (the same device: one port).
	TxDevice, RxDevice string
	Spec               traffic.Spec
	// Rate is the target in frames per second; 0 sends flat out.
	Rate float64
	// Duration is how long frames are sent; Drain how long the receiver
	// keeps counting afterwards, for frames still in flight.
	Duration, Drain time.Duration
	Burst           int
	Mode            string
	// RxKey, when set, verifies the hop MAC of every frame that comes back
	// (a relay signs its egress hop under its own key).
	RxKey []byte
	// WorkCore is the core the generator's worker runs on.
	WorkCore int
	// Mbufs in the TX pool (and in the RX pool).
	Mbufs int
	// Now is the clock (monotonic; injected so tests can drive pacing).
	Now func() time.Duration
}

// result is what a run measured.
type result struct {
	Elapsed   time.Duration // the sending phase, as the worker saw it
	Tx        uint64        // frames the TX PMD accepted
	TxRefused uint64        // frames it refused (TX ring full); freed
	AllocFail uint64        // bursts skipped because the TX pool was empty
	Rx        uint64        // frames received
	RxOurs    uint64        // of them, generated POOL frames of a known session
	Other     uint64        // received frames that were not
	BadMAC    uint64        // generated frames whose hop MAC did not verify under RxKey
	Queued    []uint64      // frames handed to the TX PMD, per session
	Received  []uint64      // frames received, per session
	TxStats   dpdk.Stats
	RxStats   dpdk.Stats
	TxDriver  string
	RxDriver  string
}

// LostFrames is the difference between what was sent and what came back;
// negative when frames came back twice.
func (r *result) LostFrames() int64 { return int64(r.Tx) - int64(r.RxOurs) }

// runSeq numbers the runs of this process, for unique DPDK object names.
var runSeq atomic.Int32

// generate runs the generator on e: opens the ports (hot-plugging devices
// the EAL was not started with), sends for c.Duration, drains, closes the
// ports, and returns the counts. ctx ends the sending phase early.
func generate(ctx context.Context, e *dpdk.EAL, c genConfig, log zerolog.Logger) (res *result, err error) {
	if c.Burst < 1 || c.Burst > dpdk.MaxBurst {
		return nil, fmt.Errorf("pool_gen: burst %d: use 1 to %d", c.Burst, dpdk.MaxBurst)
	}
	if c.Mode != modePrefill && c.Mode != modeBuild {
		return nil, fmt.Errorf("pool_gen: mode %q: use %s or %s", c.Mode, modePrefill, modeBuild)
	}
	if c.RxKey != nil && len(c.RxKey) != hopmac.KeySize {
		return nil, fmt.Errorf("pool_gen: rx key is %d bytes, want %d", len(c.RxKey), hopmac.KeySize)
	}
	if c.Now == nil {
		start := time.Now()
		c.Now = func() time.Duration { return time.Since(start) }
	}
	builder, err := traffic.NewBuilder(c.Spec)
	if err != nil {
		return nil, err
	}
	run := runSeq.Add(1)
	rxPools := e.NewPools(fmt.Sprintf("gen%d_rx", run), c.Mbufs, 256, 0)
	var undo []func()
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()
	open := func(dev string) (*dpdk.Port, error) {
		pc := dataplane.DefaultPortConfig()
		pc.Name, pc.Device, pc.RxQueues, pc.TxQueues = dpdk.PortName(dev), dev, 1, 1
		p, err := e.OpenPort(pc, 1, rxPools)
		if err != nil {
			return nil, err
		}
		undo = append(undo, func() {
			if err := p.Close(); err != nil {
				log.Warn().Err(err).Str("port", pc.Name).Msg("closing port")
			}
		})
		return p, nil
	}
	txPort, err := open(c.TxDevice)
	if err != nil {
		return nil, err
	}
	rxPort := txPort
	if c.RxDevice != "" && c.RxDevice != c.TxDevice {
		if rxPort, err = open(c.RxDevice); err != nil {
			return nil, err
		}
	}
	if err := waitLinks(ctx, txPort, rxPort); err != nil {
		return nil, err
	}
	// The TX pool is the generator's alone: received frames land in the
	// RX pool, so they never overwrite a prefilled frame.
	txPool, err := e.NewMempool(fmt.Sprintf("gen%d_tx", run), c.Mbufs, 256, 0, txPort.Socket())
	if err != nil {
		return nil, err
	}
	if c.Mode == modePrefill {
		if err := prefill(txPool, builder); err != nil {
			return nil, err
		}
	}
	g := &genWorker{c: &c, b: builder, pool: txPool, res: &result{
		Queued:   make([]uint64, c.Spec.Sessions),
		Received: make([]uint64, c.Spec.Sessions),
		TxDriver: txPort.Driver(), RxDriver: rxPort.Driver(),
	}}
	if c.RxKey != nil {
		g.rxKey = hopmac.New(c.RxKey)
	}
	g.matcher = wire.NewMatcher(builder.Spec().DstPort)
	g.sending.Store(true)
	w, err := e.StartWorker(c.WorkCore, func(w *dpdk.Worker) error {
		return g.loop(e, w, txPort.TxQueue(0), rxPort.RxQueue(0))
	})
	if err != nil {
		return nil, err
	}
	log.Info().Str("tx", c.TxDevice).Str("rx", c.RxDevice).Int("core", w.Core()).Msg("generator started")
	select {
	case <-ctx.Done():
	case <-time.After(c.Duration):
	case <-w.Done():
	}
	g.sending.Store(false)
	select {
	case <-time.After(c.Drain):
	case <-w.Done():
	}
	w.Stop()
	if err := w.Wait(); err != nil {
		return nil, err
	}
	r := g.res
	r.TxStats, _ = txPort.Stats()
	r.RxStats, _ = rxPort.Stats()
	return r, nil
}

// waitLinks waits up to five seconds for the ports' links: a memif client
// and server connect through their control socket after the ports start.
func waitLinks(ctx context.Context, ports ...*dpdk.Port) error {
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range ports {
		for {
			l, err := p.Link()
			if err != nil || l.Up {
				break // a PMD without link status is taken as up
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("pool_gen: port %s: link down after 5 s", p.Name())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// prefill writes a frame into every mbuf of pool, session after session,
// and frees them again (see modePrefill). It runs before any worker, so no
// core cache holds any of the pool's mbufs.
func prefill(pool *dpdk.Mempool, b *traffic.Builder) error {
	all, done, err := pool.TakeAll()
	if err != nil {
		return err
	}
	defer done()
	size, sessions := b.Spec().Size, b.Spec().Sessions
	for i, m := range all {
		buf := m.SetLen(size)
		if buf == nil {
			return fmt.Errorf("pool_gen: %d-byte frames do not fit the pool's mbufs", size)
		}
		if _, err := b.Frame(buf, i%sessions); err != nil {
			return err
		}
	}
	if len(all) < pool.Size() {
		return fmt.Errorf("pool_gen: prefilled only %d of %d mbufs", len(all), pool.Size())
	}
	return nil
}

// genWorker is the state of the generator's worker goroutine. Everything
// but sending is written by the worker alone and read after it returned.
type genWorker struct {
	c       *genConfig
	b       *traffic.Builder
	pool    *dpdk.Mempool
	rxKey   *hopmac.Key
	matcher *wire.Matcher
	res     *result
	sending atomic.Bool
	next    int // the session of the next frame
	r       wire.Result
}

// errNoFrames: the worker could not queue a single frame for a whole second.
var errNoFrames = errors.New("pool_gen: the TX pool stayed empty for a second: frames are not coming back to it")

// loop sends and receives until stopped. Each iteration allocates a burst
// from the TX pool in one cgo call (AllocBulk), readies the frames in Go,
// and hands them to Cycle, whose one cgo call sends them and receives the
// next RX burst.
func (g *genWorker) loop(e *dpdk.EAL, w *dpdk.Worker, txq, rxq dpdk.Queue) error {
	vec, err := dpdk.NewMbufVec(g.c.Burst)
	if err != nil {
		return err
	}
	defer vec.Close()
	b, err := e.NewBurst(dpdk.BurstConfig{Size: g.c.Burst, Tx: []dpdk.Queue{txq}, Socket: -1})
	if err != nil {
		return err
	}
	size := g.c.Spec.Size
	frames := vec.Mbufs()
	res := g.res
	var attempted uint64
	start := g.c.Now()
	lastSent := start
	for !w.Stopping() {
		if g.sending.Load() {
			now := g.c.Now()
			n := due(g.c.Rate, now-start, attempted, g.c.Burst)
			if n > 0 {
				if g.pool.AllocBulk(frames[:n]) != nil {
					res.AllocFail++
					if now-lastSent > time.Second {
						b.Close()
						return errNoFrames
					}
				} else {
					lastSent = now
					g.ready(frames[:n], size)
					b.SendBurst(0, frames[:n])
					attempted += uint64(n)
				}
			}
			res.Elapsed = now - start
		}
		for _, m := range b.Cycle(rxq) {
			g.count(m.Data())
			b.Drop(m)
		}
	}
	b.Close()
	st := b.Stats()
	res.Tx, res.TxRefused, res.Rx = st.Tx, st.TxUnsent, st.Rx
	return nil
}

// due returns how many frames to send now: a burst when flat out (rate
// 0); otherwise what rate allows for elapsed minus what was sent, at most
// a burst. A worker that fell behind (descheduled on a shared core)
// catches up a burst per iteration, never more, so the rate never
// overshoots by more than one burst.
func due(rate float64, elapsed time.Duration, attempted uint64, burst int) int {
	if rate <= 0 {
		return burst
	}
	n := int64(rate*elapsed.Seconds()) - int64(attempted)
	return int(min(max(n, 0), int64(burst)))
}

// ready makes each allocated mbuf hold a frame with a fresh seq and MAC.
func (g *genWorker) ready(ms []*dpdk.Mbuf, size int) {
	for _, m := range ms {
		buf := m.SetLen(size)
		// Sessions go round robin whatever mbuf comes up: the mempool's
		// per-core cache hands out the same few recently freed mbufs
		// again and again, so a prefilled mbuf's own session would
		// leave most sessions idle. Neither call can fail for the
		// Builder's own frames and sessions.
		var err error
		if g.c.Mode == modePrefill {
			err = g.b.Stamp(buf, g.next)
		} else {
			_, err = g.b.Frame(buf, g.next)
		}
		if err == nil {
			g.res.Queued[g.next]++
		}
		if g.next++; g.next == len(g.res.Queued) {
			g.next = 0
		}
	}
}

// count classifies a received frame and counts it for its session: the
// outer hop session if it is still a generated one, else the inner
// end-to-end session (a relay may put its own route id in the outer
// header, but never touches the inner frame).
func (g *genWorker) count(f []byte) {
	res := g.res
	wire.Classify(f, g.matcher, &g.r)
	if g.r.Drop != wire.DropNone || !g.r.Kind.IsPool() {
		res.Other++
		return
	}
	i, ok := traffic.SessionIndex(g.r.Session)
	if !ok {
		// The inner header's session id is at 20..36.
		if in := g.r.Payload(f); len(in) >= 36 {
			i, ok = traffic.SessionIndex(wire.SessionID(in[20:36]))
		}
	}
	if !ok || i >= len(res.Received) {
		res.Other++
		return
	}
	if g.rxKey != nil && !g.rxKey.Verify(f[g.r.PoolOff:int(g.r.PayloadOff)+int(g.r.PayloadLen)]) {
		res.BadMAC++
		return
	}
	res.RxOurs++
	res.Received[i]++
}
