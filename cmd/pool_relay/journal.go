package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/poolrelay/poolrelay/ctl/api"

	"github.com/poolrelay/poolrelay/configs"
	"github.com/poolrelay/poolrelay/internal/atomicfile"
	"github.com/poolrelay/poolrelay/ledger/journal"
)

func init() {
	register("journal", command{
		summary: "verify, tail or export the change journal (journal verify|tail|export [FILE])",
		subs:    []string{"verify", "tail", "export"},
		run:     runJournal,
	})
}

const journalUsage = "journal verify | journal tail [-n N] | journal export [FILE]   [--config FILE | --file JOURNAL] [--json]"

// journalSubHelp is each journal subcommand's usage line and help.
var journalSubHelp = map[string]struct{ usage, help string }{
	"verify": {"journal verify [--config FILE | --file JOURNAL] [--json]", `
Verify the whole change journal: every record's SHA-256 chain link and
encoding, from the first record to the last durable one. Prints the record
count and the head hash, then "chain ok"; exits 1 when the chain is broken
or its tail is torn (a crash in the middle of a write), saying where. --json
prints {"path", "records", "head", "torn"} instead.`},
	"tail": {"journal tail [-n N] [--config FILE | --file JOURNAL] [--json]", `
Print the last N records of the journal (10 by default), oldest first, one
JSON object per line (the output is JSON with or without --json), after
verifying the chain up to them.`},
	"export": {"journal export [FILE] [--config FILE | --file JOURNAL] [--json]", `
Write every record of the journal, verified, one JSON object per line, to
FILE (created with mode 0600, replaced atomically once complete) or to
standard output when FILE is absent or "-". The output is JSON with or
without --json. Written to FILE, the count of records and the chain's head
are reported on standard error.`},
}

// runJournal works on the journal file directly and read-only, so it is
// safe beside a running relay and works when the relay is down (the case
// where an operator most needs it).
func runJournal(e *env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		printJournalHelp(e)
		if helpRequested(args) {
			return flag.ErrHelp
		}
		return usagef("expected a subcommand: %s", journalUsage)
	}
	sub := args[0]
	h, ok := journalSubHelp[sub]
	if !ok {
		printJournalHelp(e)
		return usagef("unknown journal command %q; expected: %s", sub, journalUsage)
	}
	fs := newFlags(e, "journal "+sub, h.usage+"\n"+h.help+journalSourceHelp)
	cfgPath := fs.String("config", "", "configuration file naming the journal (default: the embedded default)")
	file := fs.String("file", "", "journal file; overrides --config")
	asJSON := fs.Bool("json", false, "print JSON (verify: a summary object; tail and export print JSON lines anyway)")
	n := new(int)
	if sub == "tail" {
		fs.IntVar(n, "n", 10, "how many of the last records to print")
	}
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	out := ""
	switch {
	case len(pos) == 0:
	case len(pos) == 1 && sub == "export":
		out = pos[0]
	default:
		fs.Usage()
		return usagef("unexpected arguments %v; expected: pool_relay %s", pos, h.usage)
	}
	path := *file
	if path == "" {
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		path = cfg.Ledger.JournalPath(cfg.Node.DataDir)
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	switch sub {
	case "verify":
		sum, err := journal.Verify(path, nil)
		if err != nil {
			return journalError(err)
		}
		if *asJSON {
			js := api.JournalSummary{Path: path, Records: sum.Records, Head: hex.EncodeToString(sum.Head[:])}
			if sum.Torn != nil {
				js.Torn = fmt.Sprint(*sum.Torn)
			}
			if err := writeJSON(w, js); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(w, "journal %s: %d records, head %s\n", path, sum.Records, hex.EncodeToString(sum.Head[:]))
		}
		if sum.Torn != nil {
			// A running relay's unsynced last batch may look torn; a stopped
			// relay's never should. Either way the operator must be told.
			w.Flush()
			return fmt.Errorf("torn tail: %s", sum.Torn)
		}
		if !*asJSON {
			fmt.Fprintln(w, "chain ok")
		}
		return nil
	case "export":
		if out != "" && out != "-" {
			sum, err := exportJournal(path, out)
			if err != nil {
				return err
			}
			// On standard error, as cheques export reports: standard output
			// stays the data's alone.
			fmt.Fprintf(e.stderr, "wrote %d records to %s, head %s\n", sum.Records, out, hex.EncodeToString(sum.Head[:]))
			return nil
		}
		var werr error
		_, err := journal.Verify(path, func(r *journal.Record) error {
			werr = journal.WriteJSON(w, r)
			return werr
		})
		if err != nil {
			return journalError(err)
		}
		return werr
	}
	// tail
	if *n < 1 {
		return usagef("-n must be at least 1")
	}
	sum, err := journal.Verify(path, nil)
	if err != nil {
		return journalError(err)
	}
	first := uint64(0)
	if sum.Records > uint64(*n) {
		first = sum.Records - uint64(*n)
	}
	_, err = journal.Verify(path, func(r *journal.Record) error {
		if r.Index > first {
			return journal.WriteJSON(w, r)
		}
		return nil
	})
	return journalError(err)
}

// journalSourceHelp says which journal the subcommands read.
const journalSourceHelp = `

The journal is read directly and read-only: this works beside a running
relay and with the relay stopped. --file names the journal; otherwise it is
the one the configuration of --config names ([ledger] journal_file under
[node] data_dir), the embedded default's without --config.`

func printJournalHelp(e *env) {
	fmt.Fprintf(e.stderr, `Usage: pool_relay %s

Read the relay's change journal: the SHA-256 chained, append-only record of
every session, route, cheque, counter mismatch and configuration change.

  verify        check the whole chain; "chain ok" or where it breaks
  tail [-n N]   the last N records as JSON lines
  export [FILE] every record as JSON lines, to FILE or standard output
%s

pool_relay journal SUBCOMMAND --help shows each subcommand's flags.
`, journalUsage, strings.TrimPrefix(journalSourceHelp, "\n"))
}

// exportJournal writes the verified journal to file as JSON lines: a
// temporary file beside it, renamed over it only once complete, so a
// broken chain never leaves a partial export under the final name.
func exportJournal(path, file string) (journal.Summary, error) {
	var sum journal.Summary
	err := atomicfile.Write(file, atomicfile.Options{}, func(f io.Writer) error {
		w := bufio.NewWriter(f)
		var werr error
		var err error
		sum, err = journal.Verify(path, func(r *journal.Record) error {
			werr = journal.WriteJSON(w, r)
			return werr
		})
		if err == nil {
			err = werr
		}
		if err == nil {
			err = w.Flush()
		}
		return err
	})
	if err != nil {
		return sum, journalError(err)
	}
	return sum, nil
}

func journalError(err error) error {
	if errors.Is(err, journal.ErrBroken) {
		return fmt.Errorf("%w: the journal's durable history is damaged; keep the file for inspection", err)
	}
	return err
}

// loadConfig loads path, or the embedded default when path is empty.
func loadConfig(path string) (*configs.File, error) {
	var (
		f   *configs.File
		err error
	)
	if path == "" {
		f, err = configs.Parse("default.toml (embedded)", configs.Default)
	} else {
		f, err = configs.Load(path)
	}
	if err != nil {
		return nil, usagef("%v", err)
	}
	return f, nil
}
