package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// The --log-level and --log-format overrides shape the logger only: the
// configuration handed to the daemon keeps the file's [log], or `config
// apply` of the very file the relay was started with is refused because
// "[log] cannot change while the relay runs".
func TestStartLogOverridesStayOutOfTheRunningConfig(t *testing.T) {
	lab := filepath.Join("..", "..", "configs", "lab.toml") // level debug, format console
	cfg, _, logCfg, err := startConfig(lab, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	if logCfg.Level != "warn" || logCfg.Format != "json" {
		t.Errorf("logger config %+v, want the overrides warn/json", logCfg)
	}
	if cfg.Log.Level != "debug" || cfg.Log.Format != "console" {
		t.Errorf("running config's [log] %+v, want the file's debug/console", cfg.Log)
	}
	cfg, _, logCfg, err = startConfig(lab, "", "")
	if err != nil || logCfg != cfg.Log {
		t.Errorf("without overrides: logger %+v, file %+v, err %v", logCfg, cfg.Log, err)
	}
}

func TestStartRefusesBadLogFlags(t *testing.T) {
	for _, tc := range []struct{ flag, want string }{
		{"--log-format=xml", `--log-format: unknown format "xml": use auto, json or console`},
		{"--log-level=loud", `--log-level: logging: unknown level "loud"`},
	} {
		code, _, errOut := runCLI(t, "start", tc.flag)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("start %s: code %d, stderr %q; want exit 2 and %q", tc.flag, code, errOut, tc.want)
		}
	}
}
