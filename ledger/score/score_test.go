package score

import (
	"math"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/peer"
)

var (
	t0  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg = Config{HalfVolume: 64 << 20, Hysteresis: 0.1, PriorBytes: 1 << 20, NewcomerScore: 0.25}
)

func TestClassBoundaries(t *testing.T) {
	for _, tc := range []struct {
		s    float64
		want Class
	}{{0, HeavyConsumer}, {0.49, HeavyConsumer}, {0.5, LightConsumer}, {0.99, LightConsumer},
		{1.0, Balanced}, {2.0, Balanced}, {2.0001, MajorContributor}, {math.Inf(1), MajorContributor}} {
		if got := Of(tc.s); got != tc.want {
			t.Errorf("Of(%v) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestNewcomerStartsLow(t *testing.T) {
	tr := cfg.NewTracker(t0)
	if tr.Class != HeavyConsumer {
		t.Fatalf("newcomer class %v", tr.Class)
	}
	if s := cfg.Score(&tr, t0); s != 0.25 {
		t.Fatalf("newcomer score %v", s)
	}
	// No traffic in either direction: defined, no division by zero.
	cfg.Decide(&tr, t0.Add(time.Hour))
	if s := cfg.Score(&tr, t0.Add(time.Hour)); math.IsNaN(s) || tr.Class != HeavyConsumer {
		t.Fatalf("silent peer: %v %v", s, tr.Class)
	}
}

func TestHalfVolume(t *testing.T) {
	tr := cfg.NewTracker(t0)
	cfg.Add(&tr, t0, 1000, 4000)
	// 64 MiB of traffic later (all of it relayed by us), the first bytes
	// weigh half.
	cfg.Add(&tr, t0.Add(time.Second), 0, 64<<20)
	// (The first kilobytes age a little over their own volume too.)
	if want := 1000 * 0.5; math.Abs(tr.By-want) > 0.05 {
		t.Fatalf("after one half-volume: by %v, want %v", tr.By, want)
	}
	// A clock stepped back changes nothing either.
	by := tr.By
	cfg.Add(&tr, t0, 0, 0)
	if tr.By != by {
		t.Fatalf("stepped back: %v", tr.By)
	}
}

// How finely the counters are reported does not matter.
func TestAddChunking(t *testing.T) {
	one := cfg.NewTracker(t0)
	cfg.Add(&one, t0, 3<<20, 1<<20)
	cfg.Add(&one, t0, 100_000_000, 20_000_000)
	many := cfg.NewTracker(t0)
	cfg.Add(&many, t0, 3<<20, 1<<20)
	for i := 0; i < 1000; i++ {
		cfg.Add(&many, t0, 100_000, 20_000)
	}
	if d := math.Abs(cfg.Score(&one, t0) - cfg.Score(&many, t0)); d > 1e-6 {
		t.Fatalf("one report %v, a thousand %v", cfg.Score(&one, t0), cfg.Score(&many, t0))
	}
}

// The case seen in the field: a proven contributor that goes quiet keeps
// its class, and so does a heavy consumer: idleness neither demotes nor
// forgives.
func TestIdleChangesNothing(t *testing.T) {
	contrib := cfg.NewTracker(t0)
	cfg.Add(&contrib, t0, 5_510_000, 1_270)
	consumer := cfg.NewTracker(t0)
	cfg.Add(&consumer, t0, 0, 3_340_000)
	for _, tr := range []*Tracker{&contrib, &consumer} {
		cfg.Decide(tr, t0)
		cfg.Decide(tr, t0.Add(10*time.Second))
	}
	if contrib.Class != MajorContributor || consumer.Class != HeavyConsumer {
		t.Fatalf("classes %v %v", contrib.Class, consumer.Class)
	}
	s0, s1 := cfg.Score(&contrib, t0), cfg.Score(&consumer, t0)
	for _, idle := range []time.Duration{time.Minute, 2 * time.Minute, time.Hour, 30 * 24 * time.Hour} {
		now := t0.Add(idle)
		// The control core reports zero deltas while nothing flows.
		cfg.Add(&contrib, now, 0, 0)
		cfg.Add(&consumer, now, 0, 0)
		cfg.Decide(&contrib, now)
		cfg.Decide(&consumer, now)
		if contrib.Class != MajorContributor || cfg.Score(&contrib, now) != s0 {
			t.Fatalf("contributor after %v idle: %v %v", idle, contrib.Class, cfg.Score(&contrib, now))
		}
		if consumer.Class != HeavyConsumer || cfg.Score(&consumer, now) != s1 {
			t.Fatalf("consumer after %v idle: %v %v", idle, consumer.Class, cfg.Score(&consumer, now))
		}
	}
}

// A peer relaying three times what it consumes rises to major contributor,
// and the score follows its recent traffic: when it turns into a pure
// consumer it falls again within a few half-volumes of consumption.
func TestScoreFollowsRecentTraffic(t *testing.T) {
	tr := cfg.NewTracker(t0)
	now := t0
	for i := 0; i < 12; i++ {
		now = now.Add(10 * time.Second)
		cfg.Add(&tr, now, 10<<20, 10<<20/3)
		cfg.Decide(&tr, now)
	}
	if tr.Class != MajorContributor {
		t.Fatalf("contributor: class %v score %v", tr.Class, cfg.Score(&tr, now))
	}
	for i := 0; i < 30; i++ {
		now = now.Add(10 * time.Second)
		cfg.Add(&tr, now, 0, 10<<20)
		cfg.Decide(&tr, now)
	}
	if tr.Class != HeavyConsumer {
		t.Fatalf("consumer: class %v score %v", tr.Class, cfg.Score(&tr, now))
	}
}

// A score oscillating just around a boundary does not make the class flap.
func TestHysteresis(t *testing.T) {
	tr := Tracker{Class: Balanced, At: t0.UnixNano()}
	changes := 0
	for i := 0; i < 100; i++ {
		// Scores alternate 0.97 and 1.03 around the 1.0 boundary.
		s := 0.97
		if i%2 == 1 {
			s = 1.03
		}
		tr.By, tr.For = s*(1<<30)-cfg.PriorBytes*cfg.NewcomerScore, (1<<30)-cfg.PriorBytes
		prev, _ := cfg.Decide(&tr, t0)
		if prev != tr.Class {
			changes++
		}
	}
	if changes != 0 {
		t.Fatalf("%d class changes around a boundary", changes)
	}
	tr.By = 0.85*(1<<30) - cfg.PriorBytes*cfg.NewcomerScore
	if cfg.Decide(&tr, t0); tr.Class != LightConsumer {
		t.Fatalf("clear drop: %v", tr.Class)
	}
	// With no hysteresis the same scores flap, which is what the margin is for.
	flappy := cfg
	flappy.Hysteresis = 0
	for i, want := range []Class{LightConsumer, Balanced, LightConsumer} {
		s := []float64{0.97, 1.03, 0.97}[i]
		tr.By = s*(1<<30) - cfg.PriorBytes*cfg.NewcomerScore
		if flappy.Decide(&tr, t0); tr.Class != want {
			t.Fatalf("no hysteresis, score %v: %v", s, tr.Class)
		}
	}
}

func counters(forB, byB uint64) account.Counters {
	return account.Counters{RelayedFor: account.Traffic{Packets: forB / 1000, Bytes: forB},
		RelayedBy: account.Traffic{Packets: byB / 1000, Bytes: byB}}
}

func TestCrossCheck(t *testing.T) {
	b := Band{Fraction: 0.02, SlackBytes: 1000, SlackPackets: 10}
	ours := counters(1_000_000, 500_000)
	// The peer's view mirrors ours: its RelayedBy is our RelayedFor.
	honest := counters(495_000, 1_010_000)
	if m, bad := CrossCheck(ours, honest, b); bad {
		t.Fatalf("honest drift reported: %+v", m)
	}
	inflated := counters(500_000, 1_200_000)
	m, bad := CrossCheck(ours, inflated, b)
	if !bad || m.What != "relayed_for.bytes" || m.Ours != 1_000_000 || m.Theirs != 1_200_000 {
		t.Fatalf("inflated claim: %+v %v", m, bad)
	}
}

func TestWitnessBaselines(t *testing.T) {
	b := Band{Fraction: 0.01, SlackBytes: 100, SlackPackets: 1}
	var w Witness
	// Our lifetime totals include history from before the peer's restart;
	// the first claim only sets the baseline.
	ours := counters(10_000_000, 0)
	theirs := account.Counters{Epoch: 7}
	if _, bad := w.Check(ours, theirs, b); bad {
		t.Fatal("first claim reported")
	}
	ours = counters(10_100_000, 0)
	theirs = counters(0, 100_000)
	theirs.Epoch = 7
	if m, bad := w.Check(ours, theirs, b); bad {
		t.Fatalf("matching increments reported: %+v", m)
	}
	theirs = counters(0, 300_000)
	theirs.Epoch = 7
	if _, bad := w.Check(ours, theirs, b); !bad {
		t.Fatal("claim of 200 kB we never saw not reported")
	}
	// The peer restarts: new epoch, new baseline.
	theirs = counters(0, 5)
	theirs.Epoch = 8
	if _, bad := w.Check(ours, theirs, b); bad {
		t.Fatal("restart reported as mismatch")
	}
}

func TestOwnScore(t *testing.T) {
	var o Own
	if o.Score(1<<20) != 1 {
		t.Fatal("no reports")
	}
	// Peer A says we relayed 3 MB for it and it relayed 1 MB for us.
	o.Report(peer.ID{1}, counters(1<<20, 3<<20))
	o.Report(peer.ID{2}, counters(1<<20, 1<<20))
	o.Report(peer.ID{1}, counters(1<<20, 5<<20)) // cumulative: replaces
	c, u := o.Totals()
	if c != 6<<20 || u != 2<<20 || o.Peers() != 2 {
		t.Fatalf("totals %d %d", c, u)
	}
	if s := o.Score(1 << 20); math.Abs(s-7.0/3) > 1e-9 {
		t.Fatalf("score %v", s)
	}
}

// A peer gives credit only once it has relayed PriorBytes for us, by the
// averages: a newcomer and a peer that only consumes give none, whatever
// we relay for them; idleness changes nothing either way; heavy
// consumption afterwards ages the credit away.
func TestCredits(t *testing.T) {
	tr := cfg.NewTracker(t0)
	if cfg.Credits(&tr) {
		t.Fatal("a newcomer gives credit")
	}
	cfg.Add(&tr, t0, 0, 50<<20)
	if cfg.Credits(&tr) {
		t.Fatal("a peer that only consumed gives credit")
	}
	cfg.Add(&tr, t0.Add(time.Second), 1<<19, 0)
	if cfg.Credits(&tr) {
		t.Fatalf("credit after half of PriorBytes relayed (by %v)", tr.By)
	}
	cfg.Add(&tr, t0.Add(2*time.Second), 1<<20, 0)
	if !cfg.Credits(&tr) {
		t.Fatalf("no credit after 1.5 MiB relayed (by %v)", tr.By)
	}
	tr2 := tr
	cfg.Add(&tr2, t0.Add(24*time.Hour), 0, 0)
	if !cfg.Credits(&tr2) || tr2.By != tr.By {
		t.Fatal("idleness took the credit away")
	}
	// Eight half-volumes of our relaying for it age 1.5 MiB below 1 MiB.
	cfg.Add(&tr, t0.Add(3*time.Second), 0, 8*64<<20)
	if cfg.Credits(&tr) {
		t.Fatalf("credit kept after consuming eight half-volumes (by %v)", tr.By)
	}
}
