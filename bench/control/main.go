// Command control is the control core's benchmark driver (make
// bench-control). In one invocation it measures, per core:
//
//   - enrollments per second: the relay's whole cost of enrolling a peer
//     (control's BenchmarkEnroll: CHALLENGE, RESPONSE checked, Noise
//     completed, ledger Connect journalled, hop keys installed, ACK and
//     TERMS sent; the benchmark enrolls one client again and again, so its
//     binding and static-static DH are cached), beside the handshake alone
//     for a new peer (crypto/handshake's BenchmarkAccept/new-peer, which
//     does that work too) and X25519, the unit both are bounded by;
//   - stateless CHALLENGE answers per second, the INIT-flood path
//     (handshake.Responder.Challenge, BenchmarkChallenge);
//   - heartbeat signatures and verifications per second (pool/proto);
//   - the hop MAC's cost per frame at 128 B and 1500 B: verify and re-sign,
//     as a relay does (crypto/hopmac's BenchmarkRelayHop), and each half;
//     and the same pair through intel-ipsec-mb, 32 frames a cgo call, as
//     the worker computes it on a CPU with AES-NI (dataplane/dpdk's
//     BenchmarkGMAC; left out where it skips, on a CPU without);
//   - the relay's Mpps and Gbps with hop authentication on and off, at 128 B
//     and 1500 B, on one worker core (bench/dataplane's "relay" and "relay
//     noauth" rows; built first, then run once per size).
//
// The micro-benchmarks are the packages' own, run with go test -bench as
// subprocesses and parsed, so the figures here are the ones those packages
// document. Where a benchmark reports the benchmarking thread's CPU time
// (cpu-ns/op, internal/cputime) the rate is computed from it: on a
// machine shared with other jobs, wall time per operation includes the time
// spent waiting for a core, and a per-core rate should not. The table says
// which was used.
//
// It prints a table with the targets of the control-core issue beside the
// figures and ends with the line
//
//	handshakes_per_s=X hopauth_gbps_1500=Y hopauth_mpps_128=Z
//
// where X is enrollments per second, Y the relay's Gbps at 1500 B and Z its
// Mpps at 128 B, both with hop authentication. Figures, never pass/fail.
// The relay part needs root (DPDK) and dpdk-testpmd, as bench/dataplane
// does. Run from the module root:
//
//	go run ./bench/control
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// config is the run's parameters.
type config struct {
	goCmd     string
	count     int
	benchtime string
	rounds    int
	seconds   int
	noHuge    bool
}

func run(args []string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("control", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.goCmd, "go", "go", "the go command")
	fs.IntVar(&c.count, "count", 5, "runs of each micro-benchmark (go test -count); the table shows the median")
	fs.StringVar(&c.benchtime, "benchtime", "1s", "go test -benchtime of each micro-benchmark run")
	fs.IntVar(&c.rounds, "rounds", 2, "bench/dataplane -rounds, per frame size")
	fs.IntVar(&c.seconds, "seconds", 3, "bench/dataplane -seconds: measured seconds of each relay run")
	fs.BoolVar(&c.noHuge, "no-huge", false, "pass -no-huge to bench/dataplane (ordinary pages)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.count < 1 || c.rounds < 1 || c.seconds < 1 {
		return errors.New("bench: -count, -rounds and -seconds must be at least 1")
	}
	if _, err := time.ParseDuration(c.benchtime); err != nil && !isCountBenchtime(c.benchtime) {
		return fmt.Errorf("bench: -benchtime %q: a duration or Nx", c.benchtime)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "poolrelay-bench-control-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dataplane, err := buildDataplane(ctx, &c, dir, stderr)
	if err != nil {
		return err
	}
	micro := map[string]benchStats{}
	for _, p := range microPackages {
		out, err := goBench(ctx, &c, p, stderr)
		if err != nil {
			return err
		}
		got, err := parseGoBench(out)
		if p.optional && errors.Is(err, errNoBenchmarks) {
			fmt.Fprintf(stderr, "bench: %s reported nothing (skipped): its rows are left out\n", p.pkg)
			continue
		}
		if err != nil {
			return fmt.Errorf("bench: %s: %w", p.pkg, err)
		}
		if err := p.check(got); err != nil {
			return err
		}
		for name, s := range got {
			micro[name] = s
		}
	}
	relays := map[int]dataplaneResult{}
	for _, size := range relaySizes {
		out, err := dataplaneBench(ctx, &c, dataplane, size, stderr)
		if err != nil {
			return err
		}
		if relays[size], err = parseDataplane(out); err != nil {
			return fmt.Errorf("bench: bench/dataplane -size %d: %w", size, err)
		}
	}
	rep, err := newReport(micro, relays)
	if err != nil {
		return err
	}
	rep.print(stdout, &c)
	return nil
}

// isCountBenchtime reports whether s is go test's iteration form of
// -benchtime ("100x").
func isCountBenchtime(s string) bool {
	if len(s) < 2 || s[len(s)-1] != 'x' {
		return false
	}
	for _, r := range s[:len(s)-1] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
