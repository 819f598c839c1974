package policy

import (
	"math"
	"testing"
	"time"
)

var cfg = Config{Payment: 1000, Disconnect: 1250, InitialCredit: 125, GrowthPercent: 100, Grace: 30 * time.Second}

func TestLimitsGrowWithSettlement(t *testing.T) {
	for _, tc := range []struct {
		settled uint64
		want    Limits
	}{
		{0, Limits{Payment: 100, Disconnect: 125}},
		{375, Limits{Payment: 400, Disconnect: 500}},
		{1125, Limits{Payment: 1000, Disconnect: 1250}},
		{1 << 40, Limits{Payment: 1000, Disconnect: 1250}},
		{math.MaxUint64, Limits{Payment: 1000, Disconnect: 1250}},
	} {
		if got := cfg.Limits(tc.settled); got != tc.want {
			t.Errorf("settled %d: %+v, want %+v", tc.settled, got, tc.want)
		}
	}
	half := cfg
	half.GrowthPercent = 50
	if got := half.Limits(250); got.Disconnect != 250 {
		t.Errorf("50%% growth: %+v", got)
	}
	// Limits are monotonic in what was settled: a peer never loses credit
	// by paying.
	prev := Limits{}
	for s := uint64(0); s < 2000; s += 7 {
		l := cfg.Limits(s)
		if l.Disconnect < prev.Disconnect || l.Payment < prev.Payment || l.Payment >= l.Disconnect {
			t.Fatalf("settled %d: %+v after %+v", s, l, prev)
		}
		prev = l
	}
}

func TestChokeGraceResume(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lim := cfg.Limits(0)
	var st State
	if a := cfg.Decide(&st, 125, lim, now); a != None {
		t.Fatalf("at the limit: %v", a)
	}
	if a := cfg.Decide(&st, 126, lim, now); a != Choke || !st.Choked {
		t.Fatalf("past the limit: %v", a)
	}
	// Hysteresis: back under the disconnect limit is not enough.
	if a := cfg.Decide(&st, 110, lim, now.Add(time.Second)); a != None || !st.Choked {
		t.Fatalf("between thresholds: %v", a)
	}
	if a := cfg.Decide(&st, 200, lim, now.Add(30*time.Second-1)); a != None {
		t.Fatalf("before grace: %v", a)
	}
	if a := cfg.Decide(&st, 200, lim, now.Add(30*time.Second)); a != Disconnect {
		t.Fatalf("after grace: %v", a)
	}
	if a := cfg.Decide(&st, 200, lim, now.Add(31*time.Second)); a != Disconnect {
		t.Fatalf("still after grace: %v", a)
	}
	// A cheque brings the peer back under its payment threshold.
	if a := cfg.Decide(&st, 100, lim, now.Add(32*time.Second)); a != Resume || st.Choked {
		t.Fatalf("after payment: %v", a)
	}
	if Choke.String() != "choke" || DropReasonDebt != "debt" {
		t.Fatal("names")
	}
}
