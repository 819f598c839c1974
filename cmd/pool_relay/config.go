package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/poolrelay/poolrelay/configs"
)

func init() {
	register("config", command{
		summary: "check, show, apply, confirm or roll back the configuration (config check|show|apply|confirm|rollback)",
		subs:    []string{"check", "show", "apply", "confirm", "rollback"},
		run: func(e *env, args []string) error {
			switch {
			case len(args) == 0:
				printConfigHelp(e)
				return usagef("expected a subcommand: %s", configUsage)
			case args[0] == "check":
				return runConfigCheck(e, args[1:])
			case strings.HasPrefix(args[0], "-"):
				if helpRequested(args) {
					printConfigHelp(e)
					return flag.ErrHelp
				}
				printConfigHelp(e)
				return usagef("expected a subcommand before %q: %s", args[0], configUsage)
			}
			return runConfigCtl(e, args) // config_ctl.go: the running relay's configuration
		},
	})
}

const configUsage = "config check FILE | config show | config apply FILE [--confirm-within D] | config confirm | config rollback"

// configPersistHelp is what happens to the start file: config --help and
// every subcommand that makes a configuration permanent say it.
const configPersistHelp = `

Where a permanent configuration goes. When a configuration becomes permanent
(config confirm, or config apply --confirm-within 0) the relay writes it over
the file it was started with (start --config FILE), atomically (a temporary
file, fsync, rename), keeping that file's mode and owner, so that a restart
runs what was confirmed; the command prints "saved to FILE". A relay started
without --config writes nothing. The file you applied from is never touched;
keep your own copy of the previous configuration if you may want it back
after confirming (config rollback only undoes a pending one). Every step is
recorded in the change journal with the configuration's SHA-256.`

func printConfigHelp(e *env) {
	fmt.Fprintf(e.stderr, `Usage: pool_relay %s

Check a configuration file, or manage the running relay's configuration with
POOL's atomic change and automatic rollback.

  check FILE   check FILE (TOML, decoded strictly, every value validated)
               without a relay; prints "ok" or the problems, line by line
  show         print the running configuration, and the deadline of one
               awaiting confirmation
  apply FILE   check FILE here, send it to the relay, which applies it
               tentatively: unless "config confirm" follows within
               --confirm-within (60s by default), the relay restores the
               previous configuration by itself, so a change that cuts you
               off heals itself. --confirm-within 0 makes it permanent at once.
  confirm      make the pending configuration permanent
  rollback     restore the configuration before the pending one now%s

pool_relay config SUBCOMMAND --help shows each subcommand's flags.
`, configUsage, configPersistHelp)
}

func runConfigCheck(e *env, args []string) error {
	fs := newFlags(e, "config check", `config check FILE

Check FILE as pool_relay start would read it: TOML decoded strictly (an
unknown key is an error), every value validated, problems printed one per
line with the file's name. Prints "ok" when there are none. Needs no relay;
exits 2 when FILE has problems.`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usagef("expected: config check FILE")
	}
	if _, err := configs.Load(fs.Arg(0)); err != nil {
		var ce *configs.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				fmt.Fprintf(e.stderr, "%s: %s\n", ce.Name, p)
			}
			return usagef("%s has %d problem(s)", fs.Arg(0), len(ce.Problems))
		}
		return usagef("%v", err)
	}
	fmt.Fprintln(e.stdout, "ok")
	return nil
}
