package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
)

// bindingResult is one Processor's run on the binding.
type bindingResult struct {
	rates []float64 // Mpps per measured second
	// cpuNs is, per measured second, the worker thread's CPU time over
	// the frames sent (ns/frame): unlike the rate it leaves out the time
	// other processes held the core, so A/B runs of two builds compare on
	// a loaded machine.
	cpuNs []float64
	stats dpdk.BurstStats
}

// session is the binding's side of the benchmark: the EAL, started in the
// run's memory mode, and the two net_null ports. It stays up between its
// runs (the EAL starts once per process); testpmd runs alongside it, in a
// process of its own, while no worker is running.
type session struct {
	c     *config
	e     *dpdk.EAL
	ports [2]*dpdk.Port
	pool  *dpdk.Mempool
	log   zerolog.Logger
	undo  []func()
}

// openSession starts the EAL and opens the ports.
func openSession(c *config, mem *memory, log zerolog.Logger) (s *session, err error) {
	eal := dataplane.EALConfig{
		Cores:      fmt.Sprintf("%d,%d", c.mainCore, c.workCore),
		NoHuge:     mem.noHuge,
		InMemory:   !mem.noHuge,
		MemoryMB:   c.memMB,
		FilePrefix: fmt.Sprintf("poolrelay_bench_go%d", os.Getpid()),
		LogLevel:   4,
	}
	if !mem.noHuge {
		// As for testpmd (memory.ealArgs): pages on demand.
		eal.MemoryMB = 0
		eal.ExtraArgs = []string{"--huge-dir", mem.hugeDir}
	}
	e, err := dpdk.Init(eal, c.devices(), log)
	if err != nil {
		return nil, err
	}
	s = &session{c: c, e: e, log: log}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.undo = append(s.undo, func() {
		if err := e.Close(); err != nil {
			log.Error().Err(err).Msg("closing the EAL")
		}
	})
	s.undo = append(s.undo, dpdk.TuneRuntime(len(e.Cores())))
	if err := dpdk.PinThreads([]int{c.mainCore}); err != nil {
		return nil, err
	}
	pools := e.NewPools("bench", c.mbufs, 256, 0)
	for i, dev := range c.devices() {
		pc := dataplane.DefaultPortConfig()
		pc.Name, pc.Device, pc.RxQueues, pc.TxQueues = dpdk.PortName(dev), dev, 1, 1
		if s.ports[i], err = e.OpenPort(pc, 1, pools); err != nil {
			return nil, err
		}
	}
	if s.pool, err = pools.For(s.ports[0].Socket()); err != nil {
		return nil, err
	}
	return s, nil
}

// close undoes openSession, newest first.
func (s *session) close() {
	for i := len(s.undo) - 1; i >= 0; i-- {
		s.undo[i]()
	}
	s.undo = nil
}

// run runs p on a worker pinned to the worker core for the warm-up and
// measured seconds, sampling both ports' TX counters once a second from
// the main core.
func (s *session) run(ctx context.Context, p Processor) (bindingResult, error) {
	var res bindingResult
	c, e, ports := s.c, s.e, s.ports
	if p.Frame != nil {
		if err := fillPool(s.pool, p.Frame(c.size)); err != nil {
			return res, err
		}
	}
	statsCh := make(chan dpdk.BurstStats, 1)
	tidCh := make(chan int, 1)
	w, err := e.StartWorker(c.workCore, func(w *dpdk.Worker) error {
		tidCh <- unix.Gettid() // first: the sampling below waits for it
		eg := p.Egress
		b, err := e.NewBurst(dpdk.BurstConfig{
			Size:        c.burst,
			Tx:          []dpdk.Queue{ports[0].TxQueue(0), ports[1].TxQueue(0)},
			Socket:      -1,
			KeepRefused: eg != nil, CollectInject: eg != nil,
		})
		if err != nil {
			return err
		}
		rxq := [2]dpdk.Queue{ports[0].RxQueue(0), ports[1].RxQueue(0)}
		process := p.Process
		if eg == nil {
			for !w.Stopping() {
				process(b, 0, b.Cycle(rxq[0]))
				process(b, 1, b.Cycle(rxq[1]))
			}
		} else {
			if err := eg.Attach(e, b, ports[:]); err != nil {
				b.Close()
				return err
			}
			// As relay.Engine's loop: every Cycle sends every TX
			// buffer, so each gets what its class queues release first.
			for !w.Stopping() {
				eg.Drain(b)
				process(b, 0, b.Cycle(rxq[0]))
				eg.Drain(b)
				process(b, 1, b.Cycle(rxq[1]))
			}
			eg.Detach(b)
		}
		b.Close()
		statsCh <- b.Stats()
		return nil
	})
	if err != nil {
		return res, err
	}
	s.log.Debug().Str("run", p.Name).Int("core", w.Core()).Int("lcore", w.Lcore()).Msg("worker started")
	sent := func() uint64 {
		var n uint64
		for _, port := range ports {
			st, _ := port.Stats()
			n += st.TxPackets
		}
		return n
	}
	runtimeOf := threadRuntime(<-tidCh)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastT, lastCPU := sent(), time.Now(), runtimeOf()
	for i := 0; i < c.warmup+c.seconds; i++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil {
			break
		}
		now, nowT, nowCPU := sent(), time.Now(), runtimeOf()
		if i >= c.warmup {
			res.rates = append(res.rates, float64(now-last)/nowT.Sub(lastT).Seconds()/1e6)
			if now > last && nowCPU > lastCPU {
				res.cpuNs = append(res.cpuNs, float64(nowCPU-lastCPU)/float64(now-last))
			}
		}
		last, lastT, lastCPU = now, nowT, nowCPU
	}
	w.Stop()
	if err := w.Wait(); err != nil {
		return res, err
	}
	res.stats = <-statsCh
	if ctx.Err() != nil {
		return res, errors.New("bench: interrupted")
	}
	return res, nil
}

// fillPool writes frame into every mbuf of pool that can be allocated now
// (all of them when no core caches hold any) and frees them again.
func fillPool(pool *dpdk.Mempool, frame []byte) error {
	all, done, err := pool.TakeAll()
	if err != nil {
		return err
	}
	defer done()
	for _, m := range all {
		if err := m.CopyFrom(frame); err != nil {
			return fmt.Errorf("bench: filling the pool: %w", err)
		}
	}
	if len(all) < pool.Size() {
		return fmt.Errorf("bench: could fill only %d of %d mbufs: the rest are out of the pool", len(all), pool.Size())
	}
	return nil
}

// threadRuntime returns a reader of thread tid's CPU time so far, in ns
// (the first field of /proc/self/task/<tid>/schedstat, the scheduler's
// run time, ns resolution), 0 where it cannot be read.
func threadRuntime(tid int) func() uint64 {
	path := fmt.Sprintf("/proc/self/task/%d/schedstat", tid)
	return func() uint64 {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		f, _, _ := strings.Cut(string(b), " ")
		ns, _ := strconv.ParseUint(f, 10, 64)
		return ns
	}
}
