package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/ctl/socket"
	"github.com/poolrelay/poolrelay/internal/atomicfile"
	"github.com/poolrelay/poolrelay/ledger/cheque"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/journal"
)

func init() {
	register("cheques", command{
		summary: "list settlement cheques, or export them (cheques [export FILE])",
		run:     runCheques,
	})
}

func runCheques(e *env, args []string) error {
	const usage = "cheques [export FILE] [--json] [--socket PATH] [--offline] [--journal FILE]"
	fs, cf := ctlCommand(e, "cheques", usage, `
List the settlement cheques: per peer, the last cheque accepted from it
(received: the peer owes us its cumulative amount) and the last issued to it
(issued: we owe it). Cheques are cumulative, so these settle every account.

"cheques export FILE" writes them as a settlement file, one JSON object per
line with the raw signed cheque, which the counterparty or an auditor checks
without trusting the rest of the line. FILE "-" is standard output.

With no relay running (or with --offline) the cheques are read from the
journal, read-only and without locking: every cheque is durable in the journal
before it is acknowledged or sent, so the journal holds all of them. The
ledger store cannot be opened read-only beside a running relay (bbolt takes
an exclusive lock), which is why it is not used.`)
	offline := fs.Bool("offline", false, "read the journal even if the relay is running")
	journalFile := fs.String("journal", "", "journal file for offline reading (default: the one --config names)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	export := ""
	switch {
	case len(pos) == 0:
	case len(pos) == 2 && pos[0] == "export":
		export = pos[1]
	default:
		fs.Usage()
		return usagef("expected: %s", usage)
	}

	var entries []cheque.Entry
	if !*offline && *journalFile == "" {
		entries, err = chequesOnline(cf)
		if errors.Is(err, socket.ErrNoDaemon) {
			fmt.Fprintf(e.stderr, "pool_relay cheques: %v; reading the journal instead\n", err)
			*offline = true
		} else if err != nil {
			return ctlError(err)
		}
	}
	if *offline || *journalFile != "" {
		path := *journalFile
		if path == "" {
			cfg, err := loadConfig(cf.config)
			if err != nil {
				return err
			}
			path = cfg.Ledger.JournalPath(cfg.Node.DataDir)
		}
		var torn *journal.Torn
		if entries, torn, err = chequesFromJournal(path); err != nil {
			return journalError(err)
		}
		if torn != nil {
			// Its cheques were never durable, so never acknowledged or sent:
			// the list is complete, but the operator must hear of the damage.
			fmt.Fprintf(e.stderr, "pool_relay cheques: journal %s has a torn tail (%s); run pool_relay journal verify\n", path, torn)
		}
	}

	if export != "" {
		return exportCheques(e, export, entries)
	}
	if cf.json {
		out := make([]api.Cheque, len(entries))
		for i, en := range entries {
			out[i] = api.ChequeFromEntry(en)
		}
		return writeJSON(e.stdout, out)
	}
	printCheques(e.stdout, entries)
	return nil
}

// chequesOnline asks the relay and checks every cheque it returns: the
// export is a settlement instrument, so nothing unverified goes into it.
func chequesOnline(cf *ctlFlags) ([]cheque.Entry, error) {
	c, err := cf.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := callContext()
	defer cancel()
	list, err := c.Cheques(ctx)
	if err != nil {
		return nil, err
	}
	entries := make([]cheque.Entry, 0, len(list))
	for _, a := range list {
		en, err := a.Entry()
		if err != nil {
			return nil, err
		}
		entries = append(entries, en)
	}
	return entries, nil
}

// chequesFromJournal reads the settlement entries from the journal: the
// latest (highest cumulative) cheque received from and issued to each peer,
// sorted as ledger.Ledger.Cheques sorts them (by peer, received first).
func chequesFromJournal(path string) ([]cheque.Entry, *journal.Torn, error) {
	type key struct {
		dir  cheque.Direction
		peer [32]byte
	}
	latest := map[key]cheque.Entry{}
	sum, err := journal.Verify(path, func(r *journal.Record) error {
		if r.Type != event.ChequeIssued && r.Type != event.ChequeReceived {
			return nil
		}
		b, err := r.Event()
		if err != nil {
			return fmt.Errorf("journal record %d: %w", r.Index, err)
		}
		ce := b.(*event.ChequeEntry)
		en := cheque.Entry{Direction: cheque.Received, Peer: ce.Signed.Issuer, Signed: ce.Signed}
		if r.Type == event.ChequeIssued {
			en.Direction, en.Peer = cheque.Issued, ce.Signed.Beneficiary
		}
		k := key{en.Direction, en.Peer}
		if old, ok := latest[k]; !ok || en.Signed.Cumulative > old.Signed.Cumulative {
			latest[k] = en
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]cheque.Entry, 0, len(latest))
	for _, en := range latest {
		out = append(out, en)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := bytes.Compare(out[i].Peer[:], out[j].Peer[:]); c != 0 {
			return c < 0
		}
		return out[i].Direction == cheque.Received && out[j].Direction != cheque.Received
	})
	return out, sum.Torn, nil
}

func printCheques(w io.Writer, entries []cheque.Entry) {
	if len(entries) == 0 {
		fmt.Fprintln(w, "no cheques")
		return
	}
	t := newTable(w)
	fmt.Fprintln(t, "DIRECTION\tPEER\tCUMULATIVE\tSEQUENCE\tDATE")
	for _, en := range entries {
		fmt.Fprintf(t, "%s\t%s\t%d\t%d\t%s\n", en.Direction, en.Peer.Short(), en.Signed.Cumulative, en.Signed.Sequence,
			en.Signed.Time().UTC().Format(time.RFC3339))
	}
	t.Flush()
}

// exportCheques writes the settlement file atomically and durably
// (internal/atomicfile), so a reader never sees half a file.
func exportCheques(e *env, path string, entries []cheque.Entry) error {
	if path == "-" {
		return cheque.WriteJSONL(e.stdout, entries)
	}
	err := atomicfile.Write(path, atomicfile.Options{Perm: 0o644}, func(w io.Writer) error {
		return cheque.WriteJSONL(w, entries)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %d cheques to %s\n", len(entries), path)
	return nil
}
