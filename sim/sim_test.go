package sim

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/sched"
)

// small is the configuration make test runs: 300 relays for 12 simulated
// minutes, a few seconds of wall time.
func small() Config {
	cfg := DefaultConfig(300)
	cfg.Duration = 12 * time.Minute
	cfg.Warmup = 2 * time.Minute
	cfg.IdleStart, cfg.IdleEnd = 4*time.Minute, 9*time.Minute
	// Larger groups of the strategies whose differences are measured
	// (re-keying against paying, trading against not trading), so that
	// 300 relays tell them apart.
	cfg.Share[FreeriderPays], cfg.Share[Whitewasher] = 0.12, 0.12
	cfg.Share[ColludePair], cfg.Share[PairNoTrade] = 0.04, 0.04
	cfg.Share[ColludeClique], cfg.Share[CliqueNoTrade] = 0.04, 0.04
	return cfg
}

// freeriderBound is the most of the honest relays' goodput a freerider
// may get in the small configuration (the 10,000-relay target is 0.5;
// 300 relays give freeriders somewhat more, see TestIncentives).
const freeriderBound = 0.75

// The incentive properties on the real ledger and scheduler: freeriders
// are served worse than contributors, re-keying gains nothing, trading
// standing (colluding pairs and cliques) gains nothing, honest relays
// (lossy ones included) are never disconnected, idle contributors keep
// their class.
func TestIncentives(t *testing.T) {
	cfg := small()
	if s := os.Getenv("POOL_SIM_SEED"); s != "" {
		cfg.Seed, _ = strconv.ParseUint(s, 10, 64)
	}
	res, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Line())
	for st := Strategy(0); st < NumStrategies; st++ {
		t.Logf("%-16s goodput %.3f (%.3f of honest) disconnects %d mismatches %d", st, res.Goodput[st], res.Ratio[st], res.Disconnects[st], res.Mismatches[st])
	}
	t.Logf("egress sent by class %v, refused %v, deprioritised by the guard %d", res.ClassSent, res.ClassDropped, res.GuardServed)
	if res.Offered[Honest] == 0 || res.Goodput[Honest] == 0 {
		t.Fatalf("honest relays offered %d frames, goodput %v: nothing was measured", res.Offered[Honest], res.Goodput[Honest])
	}
	if res.QueueDrops == 0 {
		t.Fatal("no queue drops: the egresses were not congested")
	}
	// Freeriders are served well below contributors: deprioritised on
	// every hop, not only the first (the deprioritised mark). Without the
	// mark this configuration gives them 0.85 of the honest goodput.
	for _, st := range []Strategy{FreeriderPays, FreeriderNoPay, Whitewasher} {
		if res.Offered[st] == 0 || res.Ratio[st] >= freeriderBound {
			t.Errorf("%v: goodput %.3f of the honest relays', want below %.2f", st, res.Ratio[st], freeriderBound)
		}
	}
	// Re-keying against paying, on the same relays: the run again with the
	// two groups swapped. (Compared across different relays, the gain at
	// 300 relays is noise of +-0.1: seeds 1 to 5 gave -0.18 to +0.06.)
	cfg.Swap = true
	sw, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gain := (res.Ratio[Whitewasher] - sw.Ratio[FreeriderPays] + sw.Ratio[Whitewasher] - res.Ratio[FreeriderPays]) / 2
	t.Logf("whitewash gain on the same relays: %.3f (unpaired %.3f and %.3f)", gain, res.WhitewashGain, sw.WhitewashGain)
	if gain > 0 {
		t.Errorf("whitewash gain %.3f on the same relays, want <= 0", gain)
	}
	// Trading against not trading, on the same relays, likewise: the two
	// runs exchange the colluding groups and their controls. Both paired
	// gains are near zero with a spread of a few hundredths over seeds at
	// this size (seeds 1 to 6 at 300 relays: whitewash -0.04 to +0.001,
	// pair -0.04 to +0.10, clique -0.13 to -0.01; at 600 relays pair and
	// clique -0.10 to +0.02), so another seed (POOL_SIM_SEED) can fail by
	// a little; make sim's 10,000 relays measure them to about 0.01.
	paired := func(trade, ctl Strategy) float64 {
		return (res.Ratio[trade] - sw.Ratio[ctl] + sw.Ratio[trade] - res.Ratio[ctl]) / 2
	}
	pair, clique := paired(ColludePair, PairNoTrade), paired(ColludeClique, CliqueNoTrade)
	t.Logf("collusion gain on the same relays: pair %.3f, clique %.3f (unpaired %.3f and %.3f)", pair, clique, res.CollusionGain, sw.CollusionGain)
	if res.Offered[ColludePair] == 0 || res.Offered[ColludeClique] == 0 || res.Offered[PairNoTrade] == 0 || res.Offered[CliqueNoTrade] == 0 {
		t.Fatal("a colluding group or its control offered nothing")
	}
	if g := max(pair, clique); g > 0 {
		t.Errorf("collusion gain %.3f on the same relays, want <= 0", g)
	}
	if res.HonestDisconnects != 0 {
		t.Errorf("%d honest relays disconnected", res.HonestDisconnects)
	}
	if res.Disconnects[FreeriderNoPay] == 0 {
		t.Error("freeriders that never pay were never disconnected")
	}
	if res.Mismatches[HeartbeatLiar] == 0 {
		t.Error("the heartbeat liar's claims were never found out")
	}
	if res.IdleContributors == 0 {
		t.Fatal("no idle relay was a major contributor when it went idle: the idle property was not exercised")
	}
	if res.IdleContributorDemoted {
		t.Errorf("%d of %d (idle relay, neighbour) pairs demoted while idle", res.IdleDemotions, res.IdlePairs)
	}
	if res.NewcomersReached == 0 {
		t.Error("no newcomer reached priority")
	}
	// The hop figures: a source queues its end nodes' frames as normal,
	// and a freerider's frames are deprioritised at every relay after it
	// (a fresh identity starts a heavy consumer that gives no credit, and
	// the mark keeps them there).
	for _, st := range []Strategy{Honest, FreeriderPays} {
		for c := range res.HopOffered[st][0] {
			if n := res.HopOffered[st][0][c]; sched.Class(c) != sched.Normal && n != 0 {
				t.Errorf("%v: %d frames offered at the source's egress as %v", st, n, sched.Class(c))
			}
		}
	}
	for h := 1; h < HopBuckets; h++ {
		for c, n := range res.HopOffered[FreeriderPays][h] {
			if sched.Class(c) != sched.Deprioritised && n != 0 {
				t.Errorf("freerider_pays: %d frames offered at hop %d as %v", n, h, sched.Class(c))
			}
		}
	}
	if res.HopOffered[FreeriderPays][1][sched.Deprioritised] == 0 || res.HopRefused[FreeriderPays][1][sched.Deprioritised] == 0 {
		t.Errorf("freerider_pays at the first relay: %d frames offered, %d refused: the hop figures were not counted",
			res.HopOffered[FreeriderPays][1][sched.Deprioritised], res.HopRefused[FreeriderPays][1][sched.Deprioritised])
	}
	if res.EgressLoad[2] <= 0 || res.EgressLoad[0] > res.EgressLoad[2] || res.EgressLoad[2] > res.EgressLoad[4] {
		t.Errorf("egress load percentiles %v: not counted or not in order", res.EgressLoad)
	}
}

// Same seed, same run.
func TestDeterministic(t *testing.T) {
	cfg := DefaultConfig(150)
	cfg.Duration, cfg.Warmup, cfg.IdleStart, cfg.IdleEnd = 5*time.Minute, 30*time.Second, time.Minute, 2*time.Minute
	a, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Line() != b.Line() || a.Delivered != b.Delivered {
		t.Fatalf("two runs differ:\n%s\n%s", a.Line(), b.Line())
	}
}
