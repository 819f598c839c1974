package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/egress"
	"github.com/poolrelay/poolrelay/sched"
)

// With -port, the cases run through a real DPDK port instead of a bare
// scheduler: frames are mbufs from a mempool, queued by an egress.Port in
// front of a Burst that KeepRefused and CollectInject, shaped to C by the
// Port's shaper, sent by tx_burst on a net_ring loopback port and received
// back from it. The latency is from a frame's arrival to the loop that
// receives it back (within one iteration of its dequeue); the shares and
// drops are the Port's published counters.

// dpEnv is the DPDK side of a -port run.
type dpEnv struct {
	eal  *dpdk.EAL
	pool *dpdk.Mempool
	port *dpdk.Port
	vec  *dpdk.MbufVec // allocation batch, in C memory
}

// openPort starts the EAL with the loopback device on the first CPU this
// process may use, on ordinary pages under a file prefix of its own.
func openPort(device string) (*dpEnv, error) {
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &cpus); err != nil {
		return nil, err
	}
	core := 0
	for !cpus.IsSet(core) && core < len(cpus)*64 {
		core++
	}
	cfg := dataplane.EALConfig{Cores: strconv.Itoa(core), NoHuge: true, MemoryMB: 256, LogLevel: 4,
		FilePrefix: "poolrelay_bench_sched_" + strconv.Itoa(os.Getpid())}
	e, err := dpdk.Init(cfg, []string{device}, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	d := &dpEnv{eal: e}
	pools := e.NewPools("bench", 16383, 256, 0)
	pc := dataplane.DefaultPortConfig()
	pc.Name, pc.Device = dpdk.PortName(device), device
	if d.pool, err = pools.For(-1); err == nil {
		d.port, err = e.OpenPort(pc, 1, pools)
	}
	if err == nil {
		d.vec, err = dpdk.NewMbufVec(64)
	}
	if err != nil {
		e.Close()
		return nil, err
	}
	return d, nil
}

func (d *dpEnv) close() error {
	d.vec.Close()
	return d.eal.Close()
}

// Frame layout of the benchmark's mbufs: arrival time (ns, 8 bytes), then
// the peer's index.
const (
	offArrival = 0
	offPeer    = 8
)

// simulatePort is simulate through d's port; see the comment at the top.
func simulatePort(sc scenario, cfg sched.Config, c uint64, o options, seed int64, d *dpEnv) (result, error) {
	dur, warm := o.dur, o.warm
	const burst = 32
	tx, err := d.eal.NewBurst(dpdk.BurstConfig{Size: burst, Tx: []dpdk.Queue{d.port.TxQueue(0)}, Socket: -1,
		KeepRefused: true, CollectInject: true})
	if err != nil {
		return result{}, err
	}
	defer tx.Close()
	rx, err := d.eal.NewBurst(dpdk.BurstConfig{Size: burst, Socket: -1})
	if err != nil {
		return result{}, err
	}
	defer rx.Close()
	_, txd := d.port.Descriptors()
	rateMbps := int(c * 8 / 1e6)
	eg, err := egress.New(tx, 0, egress.Config{Sched: cfg, EgressRateMbps: rateMbps, TxQueues: 1,
		LinkMbps: 10 * rateMbps, TxDescriptors: txd, TicksPerSecond: 1e9}, 0, zerolog.Nop())
	if err != nil {
		return result{}, err
	}
	peers, lat := newPeers(sc, c, dur, seed)
	stash := d.vec.Mbufs()[:0]
	var base egress.Stats
	based := false
	clk, release, err := newStallClock(o)
	if err != nil {
		return result{}, err
	}
	defer release()
	rxq := d.port.RxQueue(0)
	for {
		now := clk.now()
		if now >= int64(dur) {
			break
		}
		if !based && now >= int64(warm) {
			eg.Publish()
			base, based = eg.Stats(), true
		}
		// At most one burst of arrivals per iteration, in time order
		// across the peers, so that the Burst's drop array (one burst)
		// always has room for what full queues refuse.
		for k := 0; k < burst; k++ {
			i := -1
			for j := range peers {
				if p := &peers[j]; p.active && p.next <= float64(now) && (i < 0 || p.next < peers[i].next) {
					i = j
				}
			}
			if i < 0 {
				break
			}
			if len(stash) == 0 {
				stash = d.vec.Mbufs()
				if err := d.pool.AllocBulk(stash); err != nil {
					return result{}, fmt.Errorf("port run: %w", err)
				}
			}
			m := stash[len(stash)-1]
			stash = stash[:len(stash)-1]
			p := &peers[i]
			// The shaper charges PktLen plus the wire overhead: the IMIX
			// size is the frame on the wire.
			f := m.SetLen(int(imix[p.rng.Intn(len(imix))]) - egress.WireOverhead)
			binary.LittleEndian.PutUint64(f[offArrival:], uint64(p.next))
			f[offPeer] = byte(i)
			eg.Enqueue(m, p.class, now)
			p.advance(sc.bursty)
		}
		eg.Drain(now)
		tx.Flush()
		for _, m := range rx.Cycle(rxq) {
			f := m.Data()
			if arr := int64(binary.LittleEndian.Uint64(f[offArrival:])); arr >= int64(warm) {
				i := f[offPeer]
				lat[i] = append(lat[i], now-arr)
			}
			rx.Drop(m)
		}
	}
	eg.Drain(int64(dur))
	tx.Flush()
	eg.Close()
	for {
		// The loopback ring's last frames.
		ms := rx.Cycle(rxq)
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			rx.Drop(m)
		}
	}
	if len(stash) > 0 {
		dpdk.FreeBulk(stash)
	}
	end := eg.Stats()
	if st := tx.Stats(); st.TxRefused > 0 {
		fmt.Printf("  (the ring refused %d frames, requeued)\n", st.TxRefused)
	}
	return summarise(sc, base.Stats, end.Stats, lat, (dur - warm).Seconds(), clk), nil
}

// errNoPort is returned when -port is given to a build without DPDK.
var errNoPort = errors.New("-port needs DPDK (cgo, Linux, root)")
