package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	"github.com/poolrelay/poolrelay/bench/internal/stats"
)

// microPackage is one go test -bench run: a package, the pattern of the
// benchmarks wanted from it, and the names the run must report.
type microPackage struct {
	pkg, pattern string
	want         []string
	// optional runs may report nothing: intel-ipsec-mb's benchmarks skip
	// on a CPU without AES-NI, where the relay keeps to Go.
	optional bool
}

// microPackages are the micro-benchmarks the report reads. A pattern's
// part after a slash matches sub-benchmark names (go help testflag), and
// such a pattern runs no benchmark that has none: BenchmarkAccept (only its
// new-peer case) has a run of its own.
var microPackages = []microPackage{
	{pkg: "./control", pattern: "^BenchmarkEnroll$", want: []string{enrollBench}},
	{pkg: "./crypto/handshake", pattern: "^BenchmarkAccept$/^new-peer$", want: []string{"BenchmarkAccept/new-peer"}},
	{pkg: "./crypto/handshake", pattern: "^Benchmark(Challenge|X25519)$", want: []string{"BenchmarkChallenge", "BenchmarkX25519"}},
	{pkg: "./pool/proto", pattern: "^BenchmarkHeartbeat(Sign|Verify)$", want: []string{"BenchmarkHeartbeatSign", "BenchmarkHeartbeatVerify"}},
	{pkg: "./crypto/hopmac", pattern: "^Benchmark(RelayHop|Sign|Verify)$", want: []string{
		"BenchmarkRelayHop/128", "BenchmarkRelayHop/1500", "BenchmarkSign/128", "BenchmarkSign/1500",
		"BenchmarkVerify/128", "BenchmarkVerify/1500"}},
	{pkg: "./dataplane/dpdk", pattern: "^BenchmarkGMAC$/^batch$", want: []string{gmacBench128, gmacBench1500}, optional: true},
}

// check returns an error naming the first wanted benchmark missing from got.
func (p microPackage) check(got map[string]benchStats) error {
	for _, name := range p.want {
		if _, ok := got[name]; !ok {
			return fmt.Errorf("bench: go test -bench '%s' %s reported no %s", p.pattern, p.pkg, name)
		}
	}
	return nil
}

// goBench runs p's benchmarks and returns go test's standard output. Its
// standard error, and the output once read, go to log.
func goBench(ctx context.Context, c *config, p microPackage, log io.Writer) ([]byte, error) {
	args := []string{"test", "-run", "^$", "-bench", p.pattern, "-benchmem",
		"-count", strconv.Itoa(c.count), "-benchtime", c.benchtime, p.pkg}
	fmt.Fprintf(log, "bench: %s %s\n", c.goCmd, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, c.goCmd, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, log
	err := cmd.Run()
	log.Write(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("bench: go test %s: %w", p.pkg, err)
	}
	return out.Bytes(), nil
}

// benchStats are the samples of one benchmark over go test's -count runs.
type benchStats struct {
	// nsOp is wall-clock ns/op; cpuNsOp the benchmarking thread's CPU time
	// per op (cpu-ns/op), empty when the benchmark does not report it.
	nsOp, cpuNsOp []float64
	allocs        []float64
}

// cost returns the median cost of one operation in ns and whether it is
// CPU time (true) or wall time.
func (s benchStats) cost() (float64, bool) {
	if len(s.cpuNsOp) > 0 {
		return stats.Median(s.cpuNsOp), true
	}
	return stats.Median(s.nsOp), false
}

// errNoBenchmarks means go test's output held no benchmark result line.
var errNoBenchmarks = errors.New("no benchmark results in the output")

// parseGoBench reads go test -bench output: each result line is the
// benchmark's name with a -GOMAXPROCS suffix, the iteration count, then
// value-unit pairs ("393378 ns/op", "430.5 cpu-ns/op", "0 allocs/op",
// "1401.02 MB/s"). It returns the samples by name, without the suffix, and
// ignores every other line (goos, pkg, PASS, ok, logs).
func parseGoBench(out []byte) (map[string]benchStats, error) {
	got := map[string]benchStats{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseUint(f[1], 10, 64); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		s := got[name]
		seen := false
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: value %q: %w", name, f[i], err)
			}
			switch f[i+1] {
			case "ns/op":
				s.nsOp, seen = append(s.nsOp, v), true
			case "cpu-ns/op":
				s.cpuNsOp = append(s.cpuNsOp, v)
			case "allocs/op":
				s.allocs = append(s.allocs, v)
			}
		}
		if !seen {
			return nil, fmt.Errorf("%s: no ns/op in %q", name, sc.Text())
		}
		got[name] = s
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(got) == 0 {
		return nil, errNoBenchmarks
	}
	return got, nil
}
