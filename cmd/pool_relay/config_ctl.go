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
	const usage = "config show | config apply FILE [--confirm-within 60s] | config confirm | config rollback"
	sub := args[0]
	fs, cf := ctlCommand(e, "config "+sub, usage, `
Manage the running relay's configuration with POOL's atomic change and
automatic rollback.

  show      print the running configuration, and the deadline of one
            awaiting confirmation
  apply     check FILE here, send it to the relay, which applies it
            tentatively: unless "config confirm" follows within
            --confirm-within, the relay restores the previous configuration
            by itself (so a change that cuts you off heals itself).
            --confirm-within 0 applies it permanently at once.
  confirm   make the pending configuration permanent
  rollback  restore the configuration before the pending one now

Every step is recorded in the relay's change journal.`)
	within := fs.Duration("confirm-within", 60*time.Second, "apply: roll back unless confirmed within this long (0: permanent)")
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	want := 0
	if sub == "apply" {
		want = 1
	}
	switch sub {
	case "show", "apply", "confirm", "rollback":
	default:
		fs.Usage()
		return usagef("unknown config command %q; expected: config check FILE | %s", sub, usage)
	}
	if len(pos) != want {
		fs.Usage()
		return usagef("expected: %s", usage)
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
	case "confirm":
		fmt.Fprintln(e.stdout, "configuration confirmed")
	case "rollback":
		fmt.Fprintln(e.stdout, "previous configuration restored")
	}
	return nil
}

func printPending(w io.Writer, p *api.PendingConfig, prefix string) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "%spending: applied %s, rolled back at %s unless confirmed (pool_relay config confirm)\n",
		prefix, p.Applied.UTC().Format(time.RFC3339), p.Deadline.UTC().Format(time.RFC3339))
}
