package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/poolrelay/poolrelay/internal/lab"
	"github.com/poolrelay/poolrelay/internal/tmpfs"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/journal"
)

// tmpfsSize is r2's data directory: the identity, the store and a journal
// of a few minutes' cheques fit in it many times over.
const tmpfsSize = 8 << 20

// journalState reads r2's status --json journal section.
func (g *rig) journalState(ctx context.Context, r *lab.Relay) (state, reason string, err error) {
	js, err := g.CLI(ctx, "status", "--json", "--socket", r.Socket)
	if err != nil {
		return "", "", err
	}
	var st struct {
		Journal struct {
			State string `json:"state"`
			Error string `json:"error"`
		} `json:"journal"`
	}
	if err := jsonUnmarshal(js, &st); err != nil {
		return "", "", err
	}
	return st.Journal.State, st.Journal.Error, nil
}

// waitJournal waits until r's journal shows state.
func (g *rig) waitJournal(ctx context.Context, r *lab.Relay, state string, d time.Duration) error {
	return g.Retry(ctx, d, func() error {
		s, why, err := g.journalState(ctx, r)
		if err != nil {
			return err
		}
		if s != state {
			return fmt.Errorf("%s's journal is %q (%s), not %q", r.Name, s, why, state)
		}
		return nil
	})
}

// runDiskFull is the full-disk scenario (see the command's doc).
func runDiskFull(ctx context.Context, o options, out io.Writer) (err error) {
	mnt, err := os.MkdirTemp("", "pool_crashtest-tmpfs-")
	if err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", tmpfsSize)); err != nil {
		os.Remove(mnt)
		return fmt.Errorf("mounting a tmpfs for r2's data: %w", err)
	}
	defer func() {
		if uerr := unix.Unmount(mnt, unix.MNT_DETACH); uerr != nil && err == nil {
			err = fmt.Errorf("unmounting %s: %w", mnt, uerr)
		}
		os.Remove(mnt)
	}()
	fmt.Fprintf(out, "==> r2's data directory on a %d MiB tmpfs at %s\n", tmpfsSize>>20, mnt)
	g, err := newRig(ctx, o, out, mnt)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := g.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("cleanup: %w", cerr)
		}
	}()

	fmt.Fprintln(out, "==> filling r2's disk during cheque traffic")
	filler, err := tmpfs.Fill(mnt, "filler", 0)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := g.waitJournal(ctx, g.r2, "degraded", 30*time.Second); err != nil {
		return err
	}
	degraded := time.Since(t0)
	st, _ := g.CLI(ctx, "status", "--socket", g.r2.Socket)
	for _, line := range strings.Split(st, "\n") {
		if strings.HasPrefix(line, "Journal") {
			fmt.Fprintf(out, "    r2 status: %s\n", line)
		}
	}
	// Cheques refused with a reason, counted at both ends; none
	// acknowledged meanwhile.
	if err := g.Retry(ctx, 30*time.Second, func() error {
		c2, err := g.control(ctx, g.r2)
		if err != nil {
			return err
		}
		c1, err := g.control(ctx, g.r1)
		if err != nil {
			return err
		}
		if c2["journal_degraded"] != 1 || c2["cheques_deferred_journal"] == 0 || c1["cheques_refused_by_peer"] == 0 {
			return fmt.Errorf("r2 journal_degraded=%d cheques_deferred_journal=%d, r1 cheques_refused_by_peer=%d",
				c2["journal_degraded"], c2["cheques_deferred_journal"], c1["cheques_refused_by_peer"])
		}
		fmt.Fprintf(out, "    r2 stats: journal_degraded=1 cheques_deferred_journal=%d; r1 stats: cheques_refused_by_peer=%d\n",
			c2["cheques_deferred_journal"], c1["cheques_refused_by_peer"])
		return nil
	}); err != nil {
		return err
	}
	h0, err := g.Peer(ctx, g.r2, g.r1.ID)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	h1, err := g.Peer(ctx, g.r2, g.r1.ID)
	if err != nil {
		return err
	}
	if h1.ChequesIn != h0.ChequesIn {
		return fmt.Errorf("r2 took cheques with its journal degraded: %d then %d", h0.ChequesIn, h1.ChequesIn)
	}

	fmt.Fprintln(out, "==> freeing the space")
	if err := os.Remove(filler); err != nil {
		return err
	}
	t1 := time.Now()
	if err := g.waitJournal(ctx, g.r2, "ok", 30*time.Second); err != nil {
		return err
	}
	resumed := time.Since(t1)
	held, err := g.waitCheques(ctx, h1.ChequesIn, 30*time.Second)
	if err != nil {
		return fmt.Errorf("cheques do not flow after space returned: %w", err)
	}
	fmt.Fprintf(out, "    r2 writes again after %.2fs; it holds %d from r1 in cheques (was %d)\n", resumed.Seconds(), held, h1.ChequesIn)
	if n := strings.Count(g.r2.Proc.Output(), "journal: cannot write"); n != 1 {
		return fmt.Errorf("r2 logged the failure %d times, want once", n)
	}

	fmt.Fprintln(out, "==> filling the disk again and stopping r2 while its journal cannot write")
	filler, err = tmpfs.Fill(mnt, "filler", 0)
	if err != nil {
		return err
	}
	if err := g.waitJournal(ctx, g.r2, "degraded", 30*time.Second); err != nil {
		return err
	}
	g.stopTraffic()
	if err := g.r2.Proc.Stop(20 * time.Second); err != nil {
		return fmt.Errorf("r2 did not stop cleanly: %w\n%s", err, g.r2.Proc.Tail())
	}
	var gaps int
	sum, err := journal.Verify(journalPath(g.r2), func(r *journal.Record) error {
		if r.Type != event.Error {
			return nil
		}
		if b, err := event.Unmarshal(r.Type, r.Body); err == nil {
			if t, ok := b.(*event.Text); ok && strings.Contains(t.Note, "journal: gap:") {
				gaps++
				fmt.Fprintf(out, "    gap record %d: %s\n", r.Index, t.Note)
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("r2's journal: %w", err)
	case sum.Torn != nil:
		return fmt.Errorf("r2's clean stop on a full disk left a torn tail: %v", sum.Torn)
	case gaps == 0:
		return errors.New("r2's journal records no gap")
	}
	os.Remove(filler)
	fmt.Fprintf(out, "    r2's journal verifies after the stop: %d records, no torn tail\n", sum.Records)
	fmt.Fprintf(out, "diskfull_ok=true degraded_s=%.2f resumed_s=%.2f\n", degraded.Seconds(), resumed.Seconds())
	return nil
}
