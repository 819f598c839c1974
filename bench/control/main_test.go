package main

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/bench/internal/stats"
)

// The testdata files are captured output: go test -bench of the four
// packages (-count 2) and bench/dataplane at 128 B and 1500 B (-rounds 1),
// as the driver runs them, on this project's machine.

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

func TestParseGoBench(t *testing.T) {
	hs, err := parseGoBench(readTestdata(t, "gotest_handshake.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// Both sub-benchmarks of BenchmarkAccept are in this capture; the
	// driver's pattern runs only new-peer.
	for _, name := range []string{"BenchmarkChallenge", "BenchmarkAccept/new-peer", "BenchmarkAccept/returning-peer", "BenchmarkX25519"} {
		if s := hs[name]; len(s.nsOp) != 2 || len(s.cpuNsOp) != 2 || len(s.allocs) != 2 {
			t.Errorf("%s: %+v, want 2 samples of each", name, s)
		}
	}
	if len(hs) != 4 {
		t.Errorf("parsed %d benchmarks, want 4: %v", len(hs), hs)
	}
	if ns, cpu := hs["BenchmarkChallenge"].cost(); !cpu || !near(ns, (430.5+426.1)/2) {
		t.Errorf("Challenge cost %v (cpu %v), want the median cpu-ns/op 428.3", ns, cpu)
	}

	mac, err := parseGoBench(readTestdata(t, "gotest_hopmac.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// MB/s sits between ns/op and cpu-ns/op here.
	if ns, cpu := mac["BenchmarkRelayHop/1500"].cost(); !cpu || !near(ns, (660.4+689.9)/2) {
		t.Errorf("RelayHop/1500 cost %v (cpu %v), want 675.15", ns, cpu)
	}
	if s := mac["BenchmarkSign/128"]; !near(stats.Median(s.nsOp), (91.36+89.84)/2) {
		t.Errorf("Sign/128 ns/op %v", s.nsOp)
	}

	ctl, err := parseGoBench(readTestdata(t, "gotest_control.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// No cpu-ns/op: the wall time is the cost.
	if ns, cpu := ctl[enrollBench].cost(); cpu || !near(ns, (393378+403860)/2.0) {
		t.Errorf("Enroll cost %v (cpu %v), want the median ns/op 398619", ns, cpu)
	}
}

// TestMicroPackages checks that every report row's benchmark is one a run
// waits for, so that a missing one stops the driver before the relay runs.
func TestMicroPackages(t *testing.T) {
	wanted := map[string]bool{}
	for _, p := range microPackages {
		for _, w := range p.want {
			wanted[w] = true
		}
	}
	for _, r := range microRows {
		if !wanted[r.bench] {
			t.Errorf("row %q: %s is not checked after its go test run", r.label, r.bench)
		}
	}
	p := microPackages[2]
	if err := p.check(map[string]benchStats{"BenchmarkChallenge": {}}); err == nil || !strings.Contains(err.Error(), "BenchmarkX25519") {
		t.Errorf("check without X25519: %v", err)
	}
}

func TestParseGoBenchErrors(t *testing.T) {
	for _, c := range []struct{ name, out string }{
		{"nothing", "PASS\nok  \tgithub.com/x/y\t0.1s\n"},
		{"bad value", "BenchmarkX-2  \t100\t12,5 ns/op\n"},
		{"no ns/op", "BenchmarkX-2  \t100\t12 B/op\t1 allocs/op\n"},
	} {
		if got, err := parseGoBench([]byte(c.out)); err == nil {
			t.Errorf("%s: parsed %v, want an error", c.name, got)
		}
	}
	if _, err := parseGoBench(nil); !errors.Is(err, errNoBenchmarks) {
		t.Errorf("empty output: %v, want errNoBenchmarks", err)
	}
	// A log line that looks a little like a result is not one.
	got, err := parseGoBench([]byte("BenchmarkX-2 \t10\t5 ns/op\nBenchmarkY says hello world\n"))
	if err != nil || len(got) != 1 {
		t.Errorf("got %v, %v; want BenchmarkX alone", got, err)
	}
}

func TestParseDataplane(t *testing.T) {
	res, err := parseDataplane(readTestdata(t, "dataplane_1500.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// "relay noauth direct" (the worker without the egress class queues)
	// must not be taken for "relay noauth", nor either for "relay".
	want := dataplaneResult{
		auth:   relayRow{mpps: 0.58, min: 0.55, max: 0.77, drops: "none"},
		noAuth: relayRow{mpps: 4.47, min: 4.02, max: 4.60, drops: "none"},
	}
	if res != want {
		t.Errorf("parsed %+v\nwant   %+v", res, want)
	}
	// The 128 B capture has a memif section, whose "relay noauth" row has
	// other columns and whose memif: relay_mpps= is another figure: the
	// net_null rows and summary are the ones read.
	res, err = parseDataplane(readTestdata(t, "dataplane_128.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want = dataplaneResult{
		auth:   relayRow{mpps: 2.85, min: 2.75, max: 2.91, drops: "none"},
		noAuth: relayRow{mpps: 4.56, min: 4.34, max: 9.11, drops: "none"},
	}
	if res != want {
		t.Errorf("128 B: parsed %+v\nwant   %+v", res, want)
	}
}

func TestParseDataplaneErrors(t *testing.T) {
	good := string(readTestdata(t, "dataplane_1500.txt"))
	for _, c := range []struct{ name, old, new string }{
		{"no relay row", "relay                 0.58", "relax                 0.58"},
		{"no summary", "relay_mpps=0.58", "relay_rate=0.58"},
		{"table and summary disagree", "relay_mpps=0.58", "relay_mpps=0.59"},
		{"bad range", "[0.55-0.77]", "(0.55-0.77)"},
		{"bad drop count", "0.02             0        0\nrelay noauth direct:", "0.02             x        0\nrelay noauth direct:"},
	} {
		out := strings.Replace(good, c.old, c.new, 1)
		if out == good {
			t.Fatalf("%s: %q not in the sample", c.name, c.old)
		}
		if res, err := parseDataplane([]byte(out)); err == nil {
			t.Errorf("%s: parsed %+v, want an error", c.name, res)
		}
	}
}

// sample128Mpps is the relay row of dataplane_128.txt.
const sample128Mpps = "2.85"

// sampleReport is the report of the captured outputs.
func sampleReport(t *testing.T) *report {
	t.Helper()
	micro := map[string]benchStats{}
	for _, f := range []string{"gotest_control.txt", "gotest_handshake.txt", "gotest_proto.txt", "gotest_hopmac.txt", "gotest_gmac.txt"} {
		got, err := parseGoBench(readTestdata(t, f))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range got {
			micro[k] = v
		}
	}
	relays := map[int]dataplaneResult{}
	for size, f := range map[int]string{128: "dataplane_128.txt", 1500: "dataplane_1500.txt"} {
		r, err := parseDataplane(readTestdata(t, f))
		if err != nil {
			t.Fatal(err)
		}
		relays[size] = r
	}
	rep, err := newReport(micro, relays)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestReport(t *testing.T) {
	rep := sampleReport(t)
	var out bytes.Buffer
	rep.print(&out, &config{count: 2, benchtime: "1s", rounds: 1, seconds: 3})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// 1e9 / 398619 ns = 2508.7 enrollments/s; 0.58 Mpps x 1500 B x 8 =
	// 6.96 Gbps; the 128 B capture's relay row.
	want := "handshakes_per_s=2509 hopauth_gbps_1500=6.96 hopauth_mpps_128=" + sample128Mpps
	if last := lines[len(lines)-1]; last != want {
		t.Errorf("last line %q, want %q\n%s", last, want, out.String())
	}
	for _, s := range []string{"CHALLENGE, stateless", ">= 500,000/s", ">= 2,000/s", ">= 40 Gbps: NOT met", ">= 10 Mpps: NOT met", "hop MAC verify + re-sign, 1500 B", "1500 B, intel-ipsec-mb (the worker's)"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
	t.Log("\n" + out.String())
}

func TestNewReportIncomplete(t *testing.T) {
	rep := sampleReport(t)
	micro := map[string]benchStats{}
	for k, v := range rep.micro {
		if k != "BenchmarkChallenge" {
			micro[k] = v
		}
	}
	if _, err := newReport(micro, rep.relays); err == nil {
		t.Error("a report without BenchmarkChallenge was made")
	}
	if _, err := newReport(rep.micro, map[int]dataplaneResult{128: rep.relays[128]}); err == nil {
		t.Error("a report without the 1500 B relay run was made")
	}
	// Without AES-NI intel-ipsec-mb's benchmarks skip: the report is made
	// without their rows.
	micro = map[string]benchStats{}
	for k, v := range rep.micro {
		if k != gmacBench128 && k != gmacBench1500 {
			micro[k] = v
		}
	}
	noGMAC, err := newReport(micro, rep.relays)
	if err != nil {
		t.Fatalf("a report without the optional intel-ipsec-mb rows: %v", err)
	}
	var out bytes.Buffer
	noGMAC.print(&out, &config{count: 2, benchtime: "1s", rounds: 1, seconds: 3})
	if strings.Contains(out.String(), "intel-ipsec-mb") {
		t.Errorf("rows of benchmarks that did not run:\n%s", out.String())
	}
}

func TestFormat(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 2508.66: "2,509", 2340000.4: "2,340,000"} {
		if got := count(in); got != want {
			t.Errorf("count(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{428.3: "428.3 ns", 398619: "398.6 us", 1.5e6: "1.50 ms"} {
		if got := duration(in); got != want {
			t.Errorf("duration(%v) = %q, want %q", in, got, want)
		}
	}
	if !isCountBenchtime("100x") || isCountBenchtime("x") || isCountBenchtime("1s") {
		t.Error("isCountBenchtime")
	}
}
