package daemon

import (
	"sync"
	"time"

	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/dataplane/counters"
)

// routeSampler turns the per-route counters into the rates and last-seen
// times routes, top and the metrics show: once a second it reads the slots
// the control core has handed out (below high()), and for each slot keeps
// the previous totals, the rates over the interval and when its count last
// moved. Memory: 32 bytes per slot handed out, 32 MB for a million route
// directions; the read costs each core's published counters of those
// slots, a few milliseconds a second at a million.
type routeSampler struct {
	rc   *counters.Routes
	high func() int

	mu   sync.Mutex
	at   time.Time
	prev []counters.Route
	row  []routeRate
}

// routeRate is a slot's rates over the last interval and the Unix ns when
// its packet count was last seen to move.
type routeRate struct {
	pps, bps float32
	last     int64
}

func (s *routeSampler) init(rc *counters.Routes, high func() int) {
	s.rc, s.high, s.at = rc, high, time.Now()
}

// sample reads the counters once, at now.
func (s *routeSampler) sample(cur []counters.Route, now time.Time) []counters.Route {
	cur = s.rc.AllRoutes(cur, s.high())
	s.mu.Lock()
	defer s.mu.Unlock()
	dt := now.Sub(s.at).Seconds()
	for len(s.row) < len(cur) {
		s.row = append(s.row, routeRate{})
		s.prev = append(s.prev, counters.Route{})
	}
	for i, c := range cur {
		p, r := s.prev[i], &s.row[i]
		if c.Packets != p.Packets {
			r.last = now.UnixNano()
		}
		if dt > 0 {
			r.pps = float32(float64(c.Packets-p.Packets) / dt)
			r.bps = float32(8 * float64(c.Bytes-p.Bytes) / dt)
		}
	}
	copy(s.prev, cur)
	s.at = now
	return cur
}

func (s *routeSampler) run(stop <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var cur []counters.Route
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		cur = s.sample(cur, time.Now())
	}
}

// traffic is one direction's traffic: counted (since the route's install)
// from the control core, rates and last seen from the samples of slot. A
// last seen before installed belongs to an earlier route of the slot.
func (s *routeSampler) traffic(slot uint32, counted counters.Route, installed time.Time) api.RouteTraffic {
	t := api.RouteTraffic{Packets: counted.Packets, Bytes: counted.Bytes}
	if slot == 0 {
		return t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if int64(slot) >= int64(len(s.row)) {
		return t
	}
	r := s.row[slot]
	t.PPS, t.BPS = float64(r.pps), float64(r.bps)
	if r.last != 0 && counted.Packets != 0 && r.last >= installed.UnixNano() {
		t.LastSeen = time.Unix(0, r.last).UTC()
	}
	return t
}
