package ledger

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/cheque"
)

// side is one relay's data plane truth about its link to the other: what it
// counted, as cumulative counters, and the snapshots its control core has
// not delivered yet.
type side struct {
	n     *node
	other *node
	c     account.Counters
	prev  account.Counters
}

// message is a cheque or an acknowledgement in flight.
type message struct {
	due int // round at which it arrives
	to  *side
	raw []byte // a cheque, or nil for an ack
	ack uint64
}

// TestBilateralAgreement is the property that Swarm's users found broken:
// under random traffic in both directions, frame loss, dropped and
// reordered counter snapshots, and cheques and acknowledgements that are
// lost, duplicated and reordered, what A records about B mirrors what B
// records about A. Exactly: A's net position plus B's equals minus the price
// of the frames lost on the wire (counted by the sender, never seen by the
// receiver), and the cheque totals agree once the channel drains.
func TestBilateralAgreement(t *testing.T) {
	seeds := 8
	if testing.Short() {
		seeds = 2
	}
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { bilateral(t, uint64(seed)) })
	}
}

func bilateral(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	clk := clock.NewFake(t0)
	cfg := testConfig()
	a, b := newNode(t, "a", clk, cfg), newNode(t, "b", clk, cfg)
	connect(t, a, b)
	sa, sb := &side{n: a, other: b}, &side{n: b, other: a}
	sa.c.Epoch, sb.c.Epoch = 1, 1
	prices := cfg.prices()
	var lostCharge uint64
	var inflight []message

	// send counts frames from s to its peer: the sender always counts them,
	// the receiver only if they survive.
	send := func(s, r *side, frames int, loss float64, control bool) {
		for range frames {
			size := uint64(80 + rng.IntN(1420))
			lost := rng.Float64() < loss
			if control {
				s.c.ControlOut.Packets++
				s.c.ControlOut.Bytes += size
				if !lost {
					r.c.ControlIn.Packets++
					r.c.ControlIn.Bytes += size
				} else {
					lostCharge += prices.Charge(account.Traffic{}, account.Traffic{Packets: 1, Bytes: size})
				}
				continue
			}
			s.c.RelayedBy.Packets++
			s.c.RelayedBy.Bytes += size
			if !lost {
				r.c.RelayedFor.Packets++
				r.c.RelayedFor.Bytes += size
			} else {
				lostCharge += prices.Charge(account.Traffic{Packets: 1, Bytes: size}, account.Traffic{})
			}
		}
	}
	// deliver hands the control core's snapshot to the ledger, sometimes
	// dropping it and sometimes delivering the previous one late.
	deliver := func(s *side, final bool) {
		switch r := rng.Float64(); {
		case !final && r < 0.2: // dropped
		case !final && r < 0.3: // current, then the stale previous one
			must(t, s.n.l.Observe(s.other.id, s.c))
			must(t, s.n.l.Observe(s.other.id, s.prev))
		default:
			must(t, s.n.l.Observe(s.other.id, s.c))
		}
		s.prev = s.c
	}
	post := func(round int, m message) {
		for rng.Float64() < 0.15 { // duplicated
			d := m
			d.due = round + 1 + rng.IntN(5)
			inflight = append(inflight, d)
		}
		if rng.Float64() < 0.25 { // lost
			return
		}
		m.due = round + 1 + rng.IntN(5) // delayed, so reordered
		inflight = append(inflight, m)
	}
	step := func(round int, traffic bool) {
		if traffic {
			send(sa, sb, rng.IntN(60), 0.01, false)
			send(sb, sa, rng.IntN(30), 0.01, false)
			send(sa, sb, rng.IntN(3), 0.05, true)
			send(sb, sa, rng.IntN(3), 0.05, true)
			deliver(sa, false)
			deliver(sb, false)
		}
		clk.Advance(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		for _, s := range []*side{sa, sb} {
			if _, err := s.n.l.Tick(); err != nil {
				t.Fatal(err)
			}
			to := sa
			if s == sa {
				to = sb
			}
			for _, o := range s.n.l.Due(nil) {
				post(round, message{to: to, raw: append([]byte(nil), o.Cheque[:]...)})
			}
		}
		cur := inflight
		inflight = nil
		for _, m := range cur {
			if m.due > round {
				inflight = append(inflight, m)
				continue
			}
			receiver, sender := m.to, sa
			if receiver == sa {
				sender = sb
			}
			if m.raw != nil {
				r, err := receiver.n.l.ReceiveCheque(sender.n.id, m.raw)
				switch {
				case err == nil, errors.Is(err, ErrDuplicate),
					errors.Is(err, cheque.ErrReplay), errors.Is(err, cheque.ErrNotIncreasing):
					post(round, message{to: sender, ack: r.Cumulative})
				default:
					t.Fatalf("honest cheque refused: %v", err)
				}
			} else {
				must(t, receiver.n.l.ChequeAcked(sender.n.id, m.ack))
			}
		}
	}

	for round := 0; round < 300; round++ {
		step(round, true)
		if round%20 == 0 {
			claim, _ := b.l.Counters(a.id)
			claim.Epoch = 1
			if m, bad, _ := a.l.CheckClaim(b.id, claim); bad {
				t.Fatalf("round %d: honest counters reported as mismatch: %+v", round, m)
			}
		}
	}
	deliver(sa, true)
	deliver(sb, true)
	// Drain: no traffic, retries until every cheque is acknowledged.
	for round := 300; ; round++ {
		step(round, false)
		if len(inflight) == 0 && a.l.pendingCheques() == 0 && b.l.pendingCheques() == 0 {
			break
		}
		if round > 5000 {
			va, vb := a.view(b.id), b.view(a.id)
			t.Fatalf("cheques never drained: inflight %d pending %d %d\nA %+v\nB %+v", len(inflight), a.l.pendingCheques(), b.l.pendingCheques(), va, vb)
		}
	}
	va, vb := a.view(b.id).Account, b.view(a.id).Account
	if va.SentTotal != vb.ReceivedTotal || vb.SentTotal != va.ReceivedTotal {
		t.Fatalf("cheque totals: A sent %d, B received %d; B sent %d, A received %d",
			va.SentTotal, vb.ReceivedTotal, vb.SentTotal, va.ReceivedTotal)
	}
	if va.SentTotal == 0 || vb.SentTotal == 0 {
		t.Fatalf("no cheques in one direction: %d %d", va.SentTotal, vb.SentTotal)
	}
	expect := func(v account.Account) int64 {
		return int64(prices.Charge(v.Usage.RelayedFor, v.Usage.ControlIn)) - int64(prices.Charge(v.Usage.RelayedBy, v.Usage.ControlOut)) +
			int64(v.SentTotal) - int64(v.ReceivedTotal)
	}
	if va.Net() != expect(va) || vb.Net() != expect(vb) {
		t.Errorf("net from usage: A %d want %d, B %d want %d", va.Net(), expect(va), vb.Net(), expect(vb))
	}
	sum := va.Net() + vb.Net()
	if sum != -int64(lostCharge) {
		t.Fatalf("A's net %d + B's net %d = %d, want -%d (the price of lost frames)", va.Net(), vb.Net(), sum, lostCharge)
	}
	band := cfg.band()
	total := va.Usage.RelayedBy.Bytes + va.Usage.RelayedFor.Bytes
	if allowed := uint64(band.Fraction*float64(total)) + band.SlackBytes; lostCharge > allowed {
		t.Fatalf("disagreement %d beyond the band %d", lostCharge, allowed)
	}
	t.Logf("A sent %d, B sent %d in cheques; nets %d / %d; lost %d", va.SentTotal, vb.SentTotal, va.Net(), vb.Net(), lostCharge)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
