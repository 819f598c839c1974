package daemon

import (
	"sync"
	"time"

	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
)

// rateSampler turns the ports' cumulative device counters (the ethdev's,
// so the control core's own frames count) into the per-second rates status
// shows: one sample a second, the rate being the difference to the previous
// one. Drops are not per port in the counters (a drop reason is what the
// worker knows), so the drop rate is the relay's total, the same in every
// PortRate; the CLI prints it once, under the port table.
type rateSampler struct {
	set     *counters.Set
	ports   func([]dpdk.Stats) ([]dpdk.Stats, error)
	names   []string
	devices []string

	mu    sync.Mutex
	prev  []dpdk.Stats
	drops uint64
	at    time.Time
	rates []api.PortRate
}

func (s *rateSampler) init(set *counters.Set, ports func([]dpdk.Stats) ([]dpdk.Stats, error), names []string, cfgs []dataplane.PortConfig) {
	s.set, s.ports, s.names = set, ports, names
	s.devices = make([]string, len(names))
	for i := range names {
		if i < len(cfgs) {
			s.devices[i] = cfgs[i].Device
		}
	}
	s.rates = make([]api.PortRate, len(names))
	for i := range s.rates {
		s.rates[i] = api.PortRate{Name: names[i], Device: s.devices[i], Up: true}
	}
	s.prev, s.drops, s.at = s.read(nil)
}

func (s *rateSampler) read(dst []dpdk.Stats) ([]dpdk.Stats, uint64, time.Time) {
	var drops uint64
	for _, n := range s.set.AllDrops(nil) {
		drops += n
	}
	// A port whose counters cannot be read stays zero: its rate shows 0
	// until it reads again, rather than a spike.
	ps, _ := s.ports(dst[:0])
	return ps, drops, time.Now()
}

func (s *rateSampler) run(stop <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var cur []dpdk.Stats
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		var drops uint64
		var now time.Time
		cur, drops, now = s.read(cur)
		s.mu.Lock()
		dt := now.Sub(s.at).Seconds()
		if dt > 0 {
			for i := range s.rates {
				if i >= len(cur) || i >= len(s.prev) {
					break
				}
				c, p := cur[i], s.prev[i]
				r := &s.rates[i]
				r.RxPPS = float64(delta(c.RxPackets, p.RxPackets)) / dt
				r.TxPPS = float64(delta(c.TxPackets, p.TxPackets)) / dt
				r.RxBPS = 8 * float64(delta(c.RxBytes, p.RxBytes)) / dt
				r.TxBPS = 8 * float64(delta(c.TxBytes, p.TxBytes)) / dt
				r.DropPPS = float64(drops-s.drops) / dt
			}
		}
		s.prev = append(s.prev[:0], cur...)
		s.drops, s.at = drops, now
		s.mu.Unlock()
	}
}

// delta is cur-prev, 0 when a counter went back (a port's counters reset,
// or one failed to read).
func delta(cur, prev uint64) uint64 {
	if cur < prev {
		return 0
	}
	return cur - prev
}

func (s *rateSampler) snapshot() []api.PortRate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]api.PortRate(nil), s.rates...)
}
