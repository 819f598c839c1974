package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/poolrelay/poolrelay/configs"
)

func init() {
	register("config", command{
		summary: "check, show, apply, confirm or roll back the configuration (config check|show|apply|confirm|rollback)",
		run: func(e *env, args []string) error {
			if len(args) > 0 && args[0] != "check" && !strings.HasPrefix(args[0], "-") {
				return runConfigCtl(e, args) // config_ctl.go: the running relay's configuration
			}
			return runConfig(e, args)
		},
	})
}

func runConfig(e *env, args []string) error {
	fs := newFlags(e, "config", "config check FILE")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 || fs.Arg(0) != "check" {
		fs.Usage()
		return usagef("expected: config check FILE")
	}
	if _, err := configs.Load(fs.Arg(1)); err != nil {
		var ce *configs.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				fmt.Fprintf(e.stderr, "%s: %s\n", ce.Name, p)
			}
			return usagef("%s has %d problem(s)", fs.Arg(1), len(ce.Problems))
		}
		return usagef("%v", err)
	}
	fmt.Fprintln(e.stdout, "ok")
	return nil
}
