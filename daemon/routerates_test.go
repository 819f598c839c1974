package daemon

import (
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/dataplane/counters"
)

// TestRouteSampler: rates over the sampling interval and last seen from
// known counts; a slot's last seen before the route's install is an
// earlier route's and not shown.
func TestRouteSampler(t *testing.T) {
	rc, err := counters.NewRoutes(2, 8)
	if err != nil {
		t.Fatal(err)
	}
	high := 4
	var s routeSampler
	t0 := time.Unix(1_800_000_000, 0)
	s.init(rc, func() int { return high })
	s.at = t0
	rc.Core(0).Add(1, 100, 10_000)
	rc.Core(1).Add(1, 50, 5_000)
	rc.Core(0).Add(3, 1, 100)
	rc.Core(0).Publish()
	rc.Core(1).Publish()
	cur := s.sample(nil, t0.Add(2*time.Second))
	tr := s.traffic(1, counters.Route{Packets: 150, Bytes: 15_000}, t0)
	if tr.PPS != 75 || tr.BPS != 60_000 || !tr.LastSeen.Equal(t0.Add(2*time.Second)) || tr.Packets != 150 {
		t.Errorf("slot 1 after the first sample: %+v", tr)
	}
	// Nothing moves for a second: rates fall to zero, last seen stays.
	high = 6
	cur = s.sample(cur, t0.Add(3*time.Second))
	tr = s.traffic(1, counters.Route{Packets: 150, Bytes: 15_000}, t0)
	if tr.PPS != 0 || tr.BPS != 0 || !tr.LastSeen.Equal(t0.Add(2*time.Second)) {
		t.Errorf("slot 1 idle: %+v", tr)
	}
	// Slot 3 last moved before this route took it.
	if tr := s.traffic(3, counters.Route{}, t0.Add(time.Minute)); !tr.LastSeen.IsZero() {
		t.Errorf("slot 3 for a newer route: %+v", tr)
	}
	// Slot 0 and slots beyond the samples have no rates.
	if tr := s.traffic(0, counters.Route{Packets: 1}, t0); tr.PPS != 0 || !tr.LastSeen.IsZero() {
		t.Errorf("slot 0: %+v", tr)
	}
	if tr := s.traffic(7, counters.Route{}, t0); tr.PPS != 0 {
		t.Errorf("slot 7: %+v", tr)
	}
	if len(cur) != 6 {
		t.Errorf("sampled %d slots, want the 6 handed out", len(cur))
	}
}
