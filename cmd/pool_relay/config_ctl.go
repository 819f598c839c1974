package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/poolrelay/poolrelay/configs"
	"github.com/poolrelay/poolrelay/ctl/api"
)

// runConfigCtl serves config show|apply|confirm|rollback on the running
// relay; config check (config.go) works on a file alone.
func runConfigCtl(e *env, args []string) error {
	sub := args[0]
	h, ok := configSubHelp[sub]
	if !ok {
		printConfigHelp(e)
		return usagef("unknown config command %q; expected: %s", sub, configUsage)
	}
	fs, cf := ctlCommand(e, "config "+sub, h.usage, h.help)
	within := new(time.Duration)
	if sub == "apply" {
		fs.DurationVar(within, "confirm-within", 60*time.Second, "roll back unless confirmed within this long (0: permanent at once, saved over the start file)")
	}
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	want := 0
	if sub == "apply" {
		want = 1
	}
	if len(pos) != want {
		fs.Usage()
		return usagef("expected: pool_relay %s", h.usage)
	}
	if *within < 0 {
		return usagef("--confirm-within must not be negative")
	}
	var a api.ConfigApplyArgs
	if sub == "apply" {
		// Check here first: the operator gets line-numbered problems without
		// a round trip, and the relay never sees a file that cannot work.
		text, err := os.ReadFile(pos[0])
		if err != nil {
			return usagef("%v", err)
		}
		if _, err := configs.Parse(pos[0], text); err != nil {
			var ce *configs.Error
			if errors.As(err, &ce) {
				for _, p := range ce.Problems {
					fmt.Fprintf(e.stderr, "%s: %s\n", ce.Name, p)
				}
				return usagef("%s has %d problem(s); nothing applied", pos[0], len(ce.Problems))
			}
			return usagef("%v", err)
		}
		a = api.ConfigApplyArgs{Config: string(text), ConfirmWithin: api.Duration(*within)}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, cancel := callContext()
	defer cancel()
	var st api.ConfigState
	switch sub {
	case "show":
		st, err = c.ConfigShow(ctx)
	case "apply":
		st, err = c.ConfigApply(ctx, a)
	case "confirm":
		st, err = c.ConfigConfirm(ctx)
	case "rollback":
		st, err = c.ConfigRollback(ctx)
	}
	if err != nil {
		return ctlError(err)
	}
	if cf.json {
		return writeJSON(e.stdout, st)
	}
	switch sub {
	case "show":
		printPending(e.stdout, st.Pending, "# ")
		io.WriteString(e.stdout, st.Config)
	case "apply":
		sum := sha256.Sum256([]byte(a.Config))
		fmt.Fprintf(e.stdout, "applied %s (sha256 %s)\n", pos[0], hex.EncodeToString(sum[:6]))
		if st.Pending == nil {
			fmt.Fprintln(e.stdout, "permanent")
		}
		printPending(e.stdout, st.Pending, "")
		printSaved(e.stdout, st.SavedTo)
	case "confirm":
		fmt.Fprintln(e.stdout, "configuration confirmed")
		printSaved(e.stdout, st.SavedTo)
	case "rollback":
		fmt.Fprintln(e.stdout, "previous configuration restored")
	}
	return nil
}

// configSubHelp is each config subcommand's usage line and help.
var configSubHelp = map[string]struct{ usage, help string }{
	"show": {"config show [--json] [--socket PATH]", `
Print the running relay's configuration, TOML, as it was applied; while a
configuration awaits confirmation, a first comment line gives the deadline
at which the relay rolls it back.`},
	"apply": {"config apply FILE [--confirm-within D] [--json] [--socket PATH]", `
Check FILE here (as config check does), then send its text to the relay,
which applies it: tentatively when --confirm-within is above 0 (the default
60s), rolling it back by itself unless "pool_relay config confirm" follows
in time; permanently at once with --confirm-within 0. A change to a setting
fixed at start ([eal], ports, ...) is refused whole and changes nothing.
The relay reads the text from the request, not FILE: it may not see your
files.` + configPersistHelp},
	"confirm": {"config confirm [--json] [--socket PATH]", `
Make the pending configuration permanent (pool_relay config apply FILE
--confirm-within D made it pending).` + configPersistHelp},
	"rollback": {"config rollback [--json] [--socket PATH]", `
Restore the configuration that ran before the pending one, now, instead of
waiting for the confirmation deadline. Only a pending configuration can be
rolled back.`},
}

// printSaved says where a permanent configuration was written.
func printSaved(w io.Writer, path string) {
	if path != "" {
		fmt.Fprintf(w, "saved to %s (the file start --config named; its mode and owner kept)\n", path)
	}
}

func printPending(w io.Writer, p *api.PendingConfig, prefix string) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "%spending: applied %s, rolled back at %s unless confirmed (pool_relay config confirm)\n",
		prefix, p.Applied.UTC().Format(time.RFC3339), p.Deadline.UTC().Format(time.RFC3339))
}
