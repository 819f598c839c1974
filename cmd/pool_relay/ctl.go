package main

// The operator's commands that talk to a running relay over its control
// socket (package ctl/socket). Each parses its flags, makes one call and
// prints the result for people, or as JSON with --json for scripts.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"

	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/ctl/socket"
)

// ctlFlags are the flags every socket command takes.
type ctlFlags struct {
	socket string
	config string
	json   bool
}

// ctlCommand builds the flag set of a socket command: its usage line, a
// paragraph of help, and --socket, --config and --json.
func ctlCommand(e *env, name, usage, help string) (*flag.FlagSet, *ctlFlags) {
	fs := newFlags(e, name, usage)
	cf := &ctlFlags{}
	fs.StringVar(&cf.socket, "socket", "", "control socket of the relay (default: [ctl] socket of --config)")
	fs.StringVar(&cf.config, "config", "", "configuration file naming the socket (default: the embedded default)")
	fs.BoolVar(&cf.json, "json", false, "print the result as JSON")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: pool_relay %s\n\n%s\n", usage, strings.TrimSpace(help))
		printFlags(e.stderr, fs)
	}
	return fs, cf
}

// parseArgs parses flags that may come before, between or after the
// positional arguments (pool_relay trace p0 -n 10), which flag.Parse alone
// does not: it stops at the first positional one.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// After "--" everything is positional; flag removed the "--" itself.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// socketPath resolves --socket, else the configuration's [ctl] socket.
func (cf *ctlFlags) socketPath() (string, error) {
	if cf.socket != "" {
		return cf.socket, nil
	}
	cfg, err := loadConfig(cf.config)
	if err != nil {
		return "", err
	}
	return cfg.Ctl.Socket, nil
}

// client returns a client of the relay's socket.
func (cf *ctlFlags) client() (*socket.Client, error) {
	path, err := cf.socketPath()
	if err != nil {
		return nil, err
	}
	return &socket.Client{Path: path}, nil
}

// callContext is cancelled by Ctrl-C, so an interrupted trace or enroll
// returns at once with a clear error instead of a killed process.
func callContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt)
}

// ctlError turns a call's error into the CLI's: a request the relay found
// malformed or invalid is a usage error (exit 2), anything else exit 1.
func ctlError(err error) error {
	if err == nil {
		return nil
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		if ae.Code.ExitCode() == exitUsage {
			return usagef("%s (%s)", ae.Message, ae.Code)
		}
		return fmt.Errorf("%s (%s)", ae.Message, ae.Code)
	}
	return err
}

// writeJSON prints v indented, for --json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a tabwriter for aligned columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// humanBytes formats a byte count with decimal SI units and three
// significant digits, as the POOL operator doc shows totals ("142 MB").
func humanBytes(n uint64) string {
	return humanUnits(float64(n), "B", "kB", "MB", "GB", "TB", "PB", "EB")
}

// humanRate formats a rate per second: humanRate(1.2e6, "pps") = "1.20 Mpps".
func humanRate(v float64, unit string) string {
	return humanUnits(v, unit, "k"+unit, "M"+unit, "G"+unit, "T"+unit)
}

func humanUnits(v float64, units ...string) string {
	if v < 1000 {
		if v == math.Trunc(v) {
			return fmt.Sprintf("%.0f %s", v, units[0])
		}
		return fmt.Sprintf("%.1f %s", v, units[0])
	}
	i := 0
	for v >= 999.5 && i < len(units)-1 {
		v /= 1000
		i++
	}
	switch {
	case v >= 99.95:
		return fmt.Sprintf("%.0f %s", v, units[i])
	case v >= 9.995:
		return fmt.Sprintf("%.1f %s", v, units[i])
	}
	return fmt.Sprintf("%.2f %s", v, units[i])
}

// classMeaning names a class and its effect as the POOL operator doc's
// table does: "major contributor, priority routing".
func classMeaning(class string) string {
	switch class {
	case "major_contributor":
		return "major contributor, priority routing"
	case "balanced":
		return "balanced, normal routing"
	case "light_consumer":
		return "light consumer, normal routing"
	case "heavy_consumer":
		return "heavy consumer, deprioritised"
	}
	return class
}

// scoreHelp says how the displayed scores are computed; status and score
// print it in their --help.
const scoreHelp = `

How the score is computed. "Total relayed" is the bytes this relay relayed
for its peers (bytes contributed) and "Total consumed" the bytes its peers
relayed for it (bytes consumed), both as this relay measured them: the sums
of the RELAYED FOR and RELAYED BY columns of pool_relay peers over every
account, connected or not (in JSON relayed_bytes = sum of relayed_for_bytes,
consumed_bytes = sum of relayed_by_bytes). They are kept with the accounts
and survive restarts. The generosity score is

    score = (Total relayed + P) / (Total consumed + P)

with P the ledger's score_prior_bytes (default 1 MiB), so that a relay
without traffic shows 1.00 and the first frames cannot swing it to an
extreme. Classes, as in the POOL operator doc: above 2.0 major contributor
(priority routing), 1.0 to 2.0 balanced (normal routing), 0.5 to 1.0 light
consumer (normal routing), below 0.5 heavy consumer (deprioritised, never
blocked). Control frames (handshakes, heartbeats, routes, cheques) are shown
apart as "Control traffic" and count in no total and no score.

"Attested" is what the peers say: the sums of the latest counters each peer
signed in its heartbeats since the daemon started ("your contributed must
match the peer's consumed"), the same formula applied to them, and how many
peers reported. It is evidence beside the relay's own totals, not their
source; a difference beyond the cross-check band is counted as
heartbeat_mismatch (pool_relay stats) and journalled.`

// short abbreviates a hex peer id for tables, as peer.ID.Short does.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
