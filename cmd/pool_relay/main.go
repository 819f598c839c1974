// Command pool_relay is the POOL relay appliance: the daemon (start) and the
// operator's CLI, which talks to a running daemon over its control socket.
//
// Exit codes: 0 success, 1 a runtime failure, 2 a usage or configuration error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"
)

// version is set at link time by the Makefile (-X main.version=...); a plain
// go build falls back to the module version recorded in the binary.
var version = ""

// Exit codes shared by every command.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks errors that are the caller's to fix; they exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// command is one pool_relay subcommand.
type command struct {
	summary string
	run     func(env *env, args []string) error
	// subs are its own subcommands (config apply, journal verify, ...),
	// each of which answers "pool_relay CMD SUB --help"; TestHelpWalk
	// walks them all.
	subs []string
}

// env is what a command may touch, injected so tests can capture output.
type env struct {
	stdout, stderr io.Writer
}

var commands = map[string]command{}

func register(name string, c command) { commands[name] = c }

func main() {
	os.Exit(run(os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr}))
}

func run(args []string, e *env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "pool_relay: unknown command %q; run pool_relay --help\n", args[0])
		return exitUsage
	}
	// Help that was asked for goes to standard output (pool_relay status
	// --help | less); usage printed for a mistake stays on standard error.
	if helpRequested(args[1:]) {
		e = &env{stdout: e.stdout, stderr: e.stdout}
	}
	err := c.run(e, args[1:])
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "pool_relay %s: %v\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(e.stderr, "pool_relay %s: %v\n", args[0], err)
		return exitFailure
	}
}

// helpRequested reports whether args ask for help: -h, -help or --help
// before any "--".
func helpRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "pool_relay: the POOL relay appliance and its operator CLI")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: pool_relay COMMAND [ARGS]   (pool_relay COMMAND --help for details)")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every command and subcommand takes --help (pool_relay config apply --help).")
	fmt.Fprintln(w, "Exit codes: 0 success, 1 the relay refused or failed, 2 a usage or request error.")
}

// newFlags returns a flag set whose --help prints the command's usage and
// whose parse errors are usage errors.
func newFlags(e *env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: pool_relay %s\n", usage)
		printFlags(e.stderr, fs)
	}
	return fs
}

// printFlags prints fs's flags under a "Flags:" heading, or nothing when it
// has none.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	return nil
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		if v = strings.TrimSpace(v); v != "" && v != "(devel)" {
			return v
		}
	}
	return "devel"
}

func init() {
	register("version", command{
		summary: "print the version",
		run: func(e *env, args []string) error {
			fs := newFlags(e, "version", "version\n\n"+
				"Print the build version of pool_relay (the release tag, or the module version and\n"+
				"commit it was built from) and the Go release it was built with. A relay's running\n"+
				"version is in pool_relay status.")
			if err := parseFlags(fs, args); err != nil {
				return err
			}
			bi, _ := debug.ReadBuildInfo()
			goVersion := "unknown"
			if bi != nil {
				goVersion = bi.GoVersion
			}
			fmt.Fprintf(e.stdout, "pool_relay %s (%s)\n", versionString(), goVersion)
			return nil
		},
	})
}
