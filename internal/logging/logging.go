// Package logging builds the zerolog loggers that every subsystem receives by
// injection: JSON by default, human-readable console output when writing to a
// terminal, one child logger per subsystem tagged with its name.
package logging

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/internal/confcheck"
)

// Config is the [log] section of the configuration file.
type Config struct {
	// Level is one of trace, debug, info, warn, error.
	Level string `toml:"level"`
	// Format is json, console, or auto (console on a terminal, JSON otherwise).
	Format string `toml:"format"`
}

// DefaultConfig returns the defaults documented in configs/default.toml.
func DefaultConfig() Config { return Config{Level: "info", Format: "auto"} }

// Validate reports unknown levels and formats.
func (c Config) Validate(errs confcheck.Errors) {
	if _, err := zerolog.ParseLevel(c.Level); err != nil || c.Level == "" {
		errs.Addf("level", "unknown level %q: use trace, debug, info, warn or error", c.Level)
	}
	switch c.Format {
	case "auto", "json", "console":
	default:
		errs.Addf("format", "unknown format %q: use auto, json or console", c.Format)
	}
}

// New returns the root logger writing to w. Subsystems get children through
// For. An invalid level falls back to info; Validate catches it earlier.
func New(c Config, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil || c.Level == "" {
		level = zerolog.InfoLevel
	}
	if useConsole(c.Format, w) {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// For returns the child logger of a subsystem: every line it writes carries
// "sub":name, so one relay's mixed output can be filtered per subsystem.
func For(parent zerolog.Logger, name string) zerolog.Logger {
	return parent.With().Str("sub", name).Logger()
}

// Nop returns a logger that discards everything; use it where a caller has
// no logger to inject, never a nil one.
func Nop() zerolog.Logger { return zerolog.Nop() }

func useConsole(format string, w io.Writer) bool {
	switch format {
	case "console":
		return true
	case "json":
		return false
	}
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// ParseLevel checks a level given on the command line.
func ParseLevel(s string) error {
	if _, err := zerolog.ParseLevel(s); err != nil || s == "" {
		return fmt.Errorf("logging: unknown level %q", s)
	}
	return nil
}
