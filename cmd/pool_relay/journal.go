package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/poolrelay/poolrelay/configs"
	"github.com/poolrelay/poolrelay/ledger/journal"
)

func init() {
	register("journal", command{
		summary: "verify, tail or export the change journal (journal verify|tail|export)",
		run:     runJournal,
	})
}

// runJournal works on the journal file directly and read-only, so it is
// safe beside a running relay and works when the relay is down (the case
// where an operator most needs it).
func runJournal(e *env, args []string) error {
	usage := "journal verify|tail|export [--config FILE | --file JOURNAL] [-n N]"
	if len(args) == 0 {
		return usagef("expected: %s", usage)
	}
	sub := args[0]
	fs := newFlags(e, "journal "+sub, usage)
	cfgPath := fs.String("config", "", "configuration file naming the journal (default: the embedded default)")
	file := fs.String("file", "", "journal file; overrides --config")
	n := fs.Int("n", 10, "tail: how many of the last records to print")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments %v; expected: %s", fs.Args(), usage)
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
		fmt.Fprintf(w, "journal %s: %d records, head %s\n", path, sum.Records, hex.EncodeToString(sum.Head[:]))
		if sum.Torn != nil {
			// A running relay's unsynced last batch may look torn; a stopped
			// relay's never should. Either way the operator must be told.
			w.Flush()
			return fmt.Errorf("torn tail: %s", sum.Torn)
		}
		fmt.Fprintln(w, "chain ok")
		return nil
	case "export":
		var werr error
		_, err := journal.Verify(path, func(r *journal.Record) error {
			werr = journal.WriteJSON(w, r)
			return werr
		})
		if err != nil {
			return journalError(err)
		}
		return werr
	case "tail":
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
	return usagef("unknown journal command %q; expected: %s", sub, usage)
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
