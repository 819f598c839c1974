package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/configs"
	"github.com/poolrelay/poolrelay/daemon"
	"github.com/poolrelay/poolrelay/internal/logging"
)

func init() {
	register("start", command{
		summary: "run the relay daemon in the foreground (start [--config FILE])",
		run:     runStart,
	})
}

// runStart runs the daemon until SIGTERM, SIGINT or `pool_relay stop`. It
// stays in the foreground: systemd (deploy/pool-relay.service) or the demo
// supervise it, and a daemon that forks itself only hides its exit status.
func runStart(e *env, args []string) error {
	fs := newFlags(e, "start", "start [--config FILE] [--log-level LEVEL] [--log-format json|console|auto]\n\n"+
		"Runs the relay in the foreground: the DPDK data plane on the configured ports, the\n"+
		"control core (handshakes, routes, heartbeats, cheques), the control socket and the\n"+
		"metrics exporter. SIGTERM or SIGINT (or pool_relay stop) stops it in order: peers\n"+
		"are sent CLOSE, workers stop before ports, the ledger closes last.\n"+
		"Without --config it runs the embedded default (net_null vdevs, no NIC needed).")
	path := fs.String("config", "", "configuration file (default: the embedded default)")
	level := fs.String("log-level", "", "trace, debug, info, warn or error (overrides [log] level)")
	format := fs.String("log-format", "", "json, console or auto (overrides [log] format)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	text := configs.Default
	var cfg *configs.File
	var err error
	if *path == "" {
		cfg, err = configs.Parse("default.toml (embedded)", text)
	} else {
		if text, err = os.ReadFile(*path); err != nil {
			return usagef("%v", err)
		}
		cfg, err = configs.Parse(*path, text)
	}
	if err != nil {
		return usagef("%v", err)
	}
	if *level != "" {
		if err := logging.ParseLevel(*level); err != nil {
			return usagef("--log-level: %v", err)
		}
		cfg.Log.Level = *level
	}
	if *format != "" {
		cfg.Log.Format = *format
	}
	// The root logger passes everything and the global level filters, so
	// `config apply` can change the level of every subsystem's logger at once.
	lvl, err := zerolog.ParseLevel(cfg.Log.Level)
	if err != nil || cfg.Log.Level == "" {
		lvl = zerolog.InfoLevel
	}
	zerolog.SetGlobalLevel(lvl)
	base := cfg.Log
	base.Level = "trace"
	log := logging.New(base, e.stderr)

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	err = daemon.Run(ctx, daemon.Options{
		Config: cfg, ConfigText: string(text), ConfigPath: *path, Log: log, Version: versionString(),
	})
	if errors.Is(err, daemon.ErrStopped) {
		return nil
	}
	return err
}
