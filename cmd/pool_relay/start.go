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
	level := fs.String("log-level", "", "trace, debug, info, warn or error (overrides [log] level until config apply changes that level)")
	format := fs.String("log-format", "", "json, console or auto (overrides [log] format)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg, text, logCfg, err := startConfig(*path, *level, *format)
	if err != nil {
		return err
	}
	// The root logger passes everything and the global level filters, so
	// `config apply` can change the level of every subsystem's logger at once.
	lvl, err := zerolog.ParseLevel(logCfg.Level)
	if err != nil || logCfg.Level == "" {
		lvl = zerolog.InfoLevel
	}
	zerolog.SetGlobalLevel(lvl)
	base := logCfg
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

// startConfig reads the configuration start runs (the file at path, or the
// embedded default) and the [log] section its logger is built from: the
// file's with the command line's overrides (startLog).
func startConfig(path, level, format string) (cfg *configs.File, text []byte, logCfg logging.Config, err error) {
	text = configs.Default
	if path == "" {
		cfg, err = configs.Parse("default.toml (embedded)", text)
	} else {
		if text, err = os.ReadFile(path); err != nil {
			return nil, nil, logCfg, usagef("%v", err)
		}
		cfg, err = configs.Parse(path, text)
	}
	if err != nil {
		return nil, nil, logCfg, usagef("%v", err)
	}
	logCfg, err = startLog(cfg.Log, level, format)
	if err != nil {
		return nil, nil, logCfg, err
	}
	return cfg, text, logCfg, nil
}

// startLog is the [log] section start runs with: the file's, with the
// --log-level and --log-format overrides. The overrides stay out of the
// configuration the daemon records as running: `config apply` compares the
// new file with that one, and would otherwise refuse the unchanged file
// because its [log] format "changed" from the flag's to the file's.
func startLog(file logging.Config, level, format string) (logging.Config, error) {
	c := file
	if level != "" {
		if err := logging.ParseLevel(level); err != nil {
			return c, usagef("--log-level: %v", err)
		}
		c.Level = level
	}
	switch format {
	case "":
	case "auto", "json", "console":
		c.Format = format
	default:
		return c, usagef("--log-format: unknown format %q: use auto, json or console", format)
	}
	return c, nil
}
