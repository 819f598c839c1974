package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/poolrelay/poolrelay/internal/lab"
	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/ledger/journal"
)

func run(ctx context.Context, o options, out io.Writer) error {
	if o.scenario == "diskfull" {
		return runDiskFull(ctx, o, out)
	}
	return runKills(ctx, o, out)
}

// journalPath is a relay's journal (the default name in its data directory).
func journalPath(r *lab.Relay) string { return ledger.DefaultConfig().JournalPath(r.Dir) }

// accounts reads the two relays' accounts of each other: r1's of r2 (what
// it issued) and r2's of r1 (what it holds).
func (g *rig) accounts(ctx context.Context) (r1s, r2s lab.Peer, err error) {
	if r1s, err = g.Peer(ctx, g.r1, g.r2.ID); err != nil {
		return r1s, r2s, err
	}
	r2s, err = g.Peer(ctx, g.r2, g.r1.ID)
	return r1s, r2s, err
}

// waitCheques waits until r2 holds more than held from r1 in cheques.
func (g *rig) waitCheques(ctx context.Context, held uint64, d time.Duration) (uint64, error) {
	var now uint64
	err := g.Retry(ctx, d, func() error {
		p, err := g.Peer(ctx, g.r2, g.r1.ID)
		if err != nil {
			return err
		}
		if now = p.ChequesIn; now <= held {
			return fmt.Errorf("r2 holds %d from r1 in cheques, no more than %d", now, held)
		}
		return nil
	})
	return now, err
}

// runKills is the kill scenario (see the command's doc).
func runKills(ctx context.Context, o options, out io.Writer) (err error) {
	seed := o.seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	fmt.Fprintf(out, "==> %d kills, seed %d\n", o.kills, seed)
	g, err := newRig(ctx, o, out, "")
	if err != nil {
		return err
	}
	defer func() {
		if cerr := g.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("cleanup: %w", cerr)
		}
	}()
	var (
		recon   []time.Duration
		lost    int
		chainOK = true
		torn    int
		mirrors []mirrorCheck
	)
	for i := 1; i <= o.kills; i++ {
		// A random moment: traffic flowing, cheques in flight or not.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200*time.Millisecond + time.Duration(rng.Int64N(int64(2300*time.Millisecond)))):
		}
		k, s := g.r1, g.r2
		if rng.IntN(2) == 1 {
			k, s = g.r2, g.r1
		}
		iss0, held0, err := g.accounts(ctx)
		if err != nil {
			return err
		}
		cs, err := g.control(ctx, s)
		if err != nil {
			return err
		}
		enrolled0 := cs["peers_enrolled"]

		t0 := time.Now()
		k.Proc.Kill()
		// The killed journal as the kill left it: a torn tail (a batch
		// not yet synced) is allowed and repaired at start; a broken
		// chain is not.
		sum, verr := journal.Verify(journalPath(k), nil)
		if verr != nil {
			chainOK = false
			fmt.Fprintf(out, "kill %d: %s's journal does not verify: %v\n", i, k.Name, verr)
		}
		if sum.Torn != nil {
			torn++
		}
		if err := g.startRelay(ctx, k); err != nil {
			return fmt.Errorf("kill %d: %w", i, err)
		}
		// Back on a new session at both ends, with no enroll command.
		var pk, ps lab.Peer
		if err := g.Retry(ctx, 90*time.Second, func() error {
			var err error
			if pk, err = g.Peer(ctx, k, s.ID); err != nil {
				return err
			} else if !pk.Connected {
				return fmt.Errorf("%s does not see %s connected (reconnecting=%v)", k.Name, s.Name, pk.Reconnecting)
			}
			c, err := g.control(ctx, s)
			if err != nil {
				return err
			} else if c["peers_enrolled"] <= enrolled0 {
				return fmt.Errorf("%s has no new session with %s yet", s.Name, k.Name)
			}
			if ps, err = g.Peer(ctx, s, k.ID); err != nil {
				return err
			} else if !ps.Connected {
				return fmt.Errorf("%s does not see %s connected", s.Name, k.Name)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("kill %d: %s and %s not reconnected: %w\n%s", i, k.Name, s.Name, err, k.Proc.Tail())
		}
		d := time.Since(t0)
		recon = append(recon, d)

		iss1, held1, err := g.accounts(ctx)
		if err != nil {
			return err
		}
		// What r2 held (it acknowledged it only once durable) is still
		// held, and r1 still records having issued it; neither total
		// went down.
		var bad []string
		if iss1.ChequesOut < iss0.ChequesOut {
			bad = append(bad, fmt.Sprintf("r1's issued total fell from %d to %d", iss0.ChequesOut, iss1.ChequesOut))
		}
		if held1.ChequesIn < held0.ChequesIn {
			bad = append(bad, fmt.Sprintf("r2's held total fell from %d to %d", held0.ChequesIn, held1.ChequesIn))
		}
		if iss1.ChequesOut < held0.ChequesIn {
			bad = append(bad, fmt.Sprintf("r1 records %d issued, r2 had acknowledged %d", iss1.ChequesOut, held0.ChequesIn))
		}
		if len(bad) > 0 {
			lost++
			fmt.Fprintf(out, "kill %d: LOST: %s\n", i, strings.Join(bad, "; "))
		}
		if _, err := journal.Verify(journalPath(s), nil); err != nil {
			chainOK = false
			fmt.Fprintf(out, "kill %d: %s's journal does not verify: %v\n", i, s.Name, err)
		}
		// The balances mirror again once the restarted relay reconciled
		// the charges its kill lost (on the first heartbeat it accepts
		// from its peer) and nothing is in flight: traffic stopped,
		// pending cheques delivered.
		m, err := g.mirror(ctx, k)
		if err != nil {
			return fmt.Errorf("kill %d: %w", i, err)
		}
		mirrors = append(mirrors, m)
		if !m.ok {
			fmt.Fprintf(out, "kill %d: balances do not mirror: r1 has %d, r2 has %d, off by %d, one frame's price is %d\n",
				i, m.b1, m.b2, m.drift, m.price)
		}
		// The end nodes' sessions went with the killed relay's: start
		// them again, and see cheques flow again.
		if err := g.startTraffic(ctx); err != nil {
			return fmt.Errorf("kill %d: %w", i, err)
		}
		held2, err := g.waitCheques(ctx, held1.ChequesIn, 60*time.Second)
		if err != nil {
			return fmt.Errorf("kill %d: cheques do not flow again: %w", i, err)
		}
		fmt.Fprintf(out, "kill %d: %s killed, reconnected in %.2fs; r1 issued %d, r2 held %d then %d; %s adopted %d units lost in the kill (adoptions %d, refused %d), then balances off by %d\n",
			i, k.Name, d.Seconds(), iss1.ChequesOut, held1.ChequesIn, held2, k.Name, m.adopted, m.reconciled, m.refused, m.drift)
	}

	// Quiet: no traffic, a few heartbeats and cheque retries.
	g.stopTraffic()
	time.Sleep(4 * time.Second)
	p1, p2, err := g.accounts(ctx)
	if err != nil {
		return err
	}
	price := framePrice(ctx, g)
	drift := p1.Balance + p2.Balance
	if drift < 0 {
		drift = -drift
	}
	fmt.Fprintf(out, "balances: r1 has %d with r2, r2 has %d with r1: they differ by %d, one frame's price is %d (mirror_ok=%v)\n",
		p1.Balance, p2.Balance, drift, price, drift <= price)
	mirrorOK := drift <= price
	if len(mirrors) > 0 {
		var worst, bad, recon, refused int64
		var adopted uint64
		drifts := make([]int64, 0, len(mirrors))
		for _, m := range mirrors {
			adopted += m.adopted
			drifts = append(drifts, m.drift)
			worst = max(worst, m.drift)
			recon += int64(m.reconciled)
			refused += int64(m.refused)
			if !m.ok {
				bad++
				mirrorOK = false
			}
		}
		slices.Sort(drifts)
		fmt.Fprintf(out, "balances after each kill (traffic stopped, after the restarted relay reconciled): differ by median %d, max %d; over one frame's price after %d of %d kills; reconciliations %d adopted, %d refused; %d units adopted in all\n",
			drifts[len(drifts)/2], worst, bad, len(mirrors), recon, refused, adopted)
	}
	fmt.Fprintf(out, "cheques: r1 issued %d to r2, r2 holds %d from r1 (equal=%v)\n", p1.ChequesOut, p2.ChequesIn, p1.ChequesOut == p2.ChequesIn)
	if p1.ChequesOut < p2.ChequesIn {
		lost++
	}
	for _, r := range []*lab.Relay{g.r1, g.r2} {
		if err := r.Proc.Stop(20 * time.Second); err != nil {
			return fmt.Errorf("%s did not stop cleanly: %w\n%s", r.Name, err, r.Proc.Tail())
		}
		sum, err := journal.Verify(journalPath(r), nil)
		switch {
		case err != nil:
			chainOK = false
			fmt.Fprintf(out, "%s: journal: %v\n", r.Name, err)
		case sum.Torn != nil:
			chainOK = false
			fmt.Fprintf(out, "%s: a clean stop left a torn tail: %v\n", r.Name, sum.Torn)
		default:
			fmt.Fprintf(out, "%s: journal verifies: %d records\n", r.Name, sum.Records)
		}
	}
	slices.Sort(recon)
	p50, p99, pmax := percentile(recon, 0.50), percentile(recon, 0.99), percentile(recon, 1)
	fmt.Fprintf(out, "reconnect after a kill (kill to both ends up on a new session, DPDK start included): p50 %.2fs p99 %.2fs max %.2fs; torn tails found after kills: %d\n",
		p50.Seconds(), p99.Seconds(), pmax.Seconds(), torn)
	fmt.Fprintf(out, "daemon_kills=%d lost=%d chain_ok=%v reconnect_p99_s=%.2f\n", len(recon), lost, chainOK, p99.Seconds())
	if lost != 0 || !chainOK {
		return errors.New("acknowledged cheques lost or a journal does not verify")
	}
	if !mirrorOK {
		return errors.New("the relays' balances do not mirror within one frame's price")
	}
	return nil
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// framePrice is what r2 charges r1 for one relayed frame of the run: the
// default prices (the lab's configs keep them) over the average frame r2
// relayed for r1.
func framePrice(ctx context.Context, g *rig) int64 {
	p, err := g.Peer(ctx, g.r2, g.r1.ID)
	if err != nil || p.RelayedForPackets == 0 {
		return 0
	}
	c := ledger.DefaultConfig()
	return int64(c.PricePerPacket + c.PricePerByte*(p.RelayedForBytes+p.RelayedForPackets-1)/p.RelayedForPackets)
}

// mirrorCheck is one comparison of the two relays' balances of each other.
type mirrorCheck struct {
	b1, b2       int64
	drift, price int64
	ok           bool
	// reconciled and refused are the restarted relay's reconciliations,
	// adopted the charges they adopted (both directions, price units).
	reconciled, refused, adopted uint64
}

// mirror waits until the restarted relay k has accepted a heartbeat from
// its peer (its first claim reconciles the account: see ledger.CheckClaim),
// stops the end nodes, and waits up to 15 s for the balances to mirror
// within one frame's price (cheques in flight arrive, frames in flight are
// counted); it returns the last comparison.
func (g *rig) mirror(ctx context.Context, k *lab.Relay) (mirrorCheck, error) {
	var m mirrorCheck
	if err := g.Retry(ctx, 30*time.Second, func() error {
		c, err := g.control(ctx, k)
		if err != nil {
			return err
		}
		if c["heartbeats_accepted"] == 0 {
			return fmt.Errorf("%s has accepted no heartbeat since its restart", k.Name)
		}
		m.reconciled, m.refused = c["reconciles"], c["reconciles_refused"]
		m.adopted = c["reconciled_units_peer"] + c["reconciled_units_us"]
		return nil
	}); err != nil {
		return m, err
	}
	g.stopTraffic()
	m.price = framePrice(ctx, g)
	deadline := time.Now().Add(15 * time.Second)
	for {
		p1, p2, err := g.accounts(ctx)
		if err != nil {
			return m, err
		}
		m.b1, m.b2 = p1.Balance, p2.Balance
		m.drift = p1.Balance + p2.Balance
		if m.drift < 0 {
			m.drift = -m.drift
		}
		m.ok = m.price > 0 && m.drift <= m.price
		if m.ok || time.Now().After(deadline) {
			// The next heartbeats may have reconciled more (see
			// ledger.CheckClaim): report them all.
			if c, err := g.control(ctx, k); err == nil {
				m.reconciled, m.refused = c["reconciles"], c["reconciles_refused"]
				m.adopted = c["reconciled_units_peer"] + c["reconciled_units_us"]
			}
			return m, nil
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
