package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/internal/logging"
)

func TestRelayFrame(t *testing.T) {
	for _, size := range []int{128, 512, 1500} {
		rb := &relayBench{name: "t", auth: true}
		f := rb.frame(size)
		if len(f) != size {
			t.Fatalf("frame(%d) is %d bytes", size, len(f))
		}
		var r wire.Result
		wire.Classify(f, wire.NewMatcher(wire.RelayPort), &r)
		if r.Drop != wire.DropNone || r.Type != wire.TypeData || r.Seq != fillSeq || r.Session != benchSession || r.PoolOff != benchPoolOff {
			t.Fatalf("frame(%d): %+v", size, r)
		}
		if _, ok := rb.t.Routes().Lookup([16]byte(benchSession)); !ok {
			t.Fatal("no route for the benchmark's session")
		}
	}
}

func TestWriteSweep(t *testing.T) {
	dir := t.TempDir()
	cells := []sweepCell{{routes: 1000, size: 128, mpps: 10}, {routes: 1000000, size: 128, mpps: 9}, {routes: 1000, size: 1500, mpps: 3}}
	csv, png := filepath.Join(dir, "s.csv"), filepath.Join(dir, "s.png")
	if err := writeSweep(csv, png, cells); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(csv)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[2], "1000000,128,9.000,9.216,111.1,") {
		t.Fatalf("csv:\n%s", b)
	}
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		t.Fatalf("png: %v", err)
	}
}

// BenchmarkRelaySweep measures the relay worker over route counts and frame
// sizes on net_null and writes bench/results/dataplane_sweep.csv and .png.
// It needs root and DPDK, reserves hugepages, runs once whatever -benchtime
// says and takes about two minutes, so it runs only when asked for
// (POOLRELAY_SWEEP=1; `make bench` leaves it out):
//
//	POOLRELAY_SWEEP=1 go test -run '^$' -bench RelaySweep -benchtime 1x ./bench/dataplane
//
// POOLRELAY_SWEEP_ROUTES and POOLRELAY_SWEEP_SIZES (comma-separated) replace
// the default 1000,100000,1000000 and 128,512,1500; POOLRELAY_SWEEP_ROUNDS
// the default 3 rounds (each runs every cell once, see relaySweep).
func BenchmarkRelaySweep(b *testing.B) {
	if os.Getenv("POOLRELAY_SWEEP") == "" {
		b.Skip("set POOLRELAY_SWEEP=1 to run the sweep")
	}
	if os.Geteuid() != 0 {
		b.Skip("needs root for DPDK")
	}
	routes := envInts(b, "POOLRELAY_SWEEP_ROUTES", []int{1000, 100000, 1000000})
	sizes := envInts(b, "POOLRELAY_SWEEP_SIZES", []int{128, 512, 1500})
	rounds := envInts(b, "POOLRELAY_SWEEP_ROUNDS", []int{3})[0]
	if rounds < 1 || len(routes) == 0 || len(sizes) == 0 {
		b.Fatal("POOLRELAY_SWEEP_ROUNDS must be at least 1, the route counts and sizes not empty")
	}
	c := &config{rounds: 1, warmup: 1, seconds: 3, size: sizes[0], burst: 32, mbufs: 16383, memMB: 512}
	var err error
	if c.mainCore, c.workCore, err = pickCores(""); err != nil {
		b.Fatal(err)
	}
	mem := setupMemory(2*c.memMB, false)
	defer mem.release()
	s, err := openSession(c, mem, logging.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	cells, ratios, err := relaySweep(context.Background(), s, routes, sizes, rounds, os.Stderr)
	if err != nil {
		b.Fatal(err)
	}
	for _, cell := range cells {
		b.Logf("routes=%d size=%d mpps=%.2f cpu_mpps=%.2f drops=%d bytes/route=%.0f", cell.routes, cell.size, cell.mpps, cell.cpuMpps, cell.drops, cell.bytesPerRoute)
	}
	b.Logf("memory: %s", mem.describe())
	for _, r := range ratios {
		b.Logf("size=%d routes %d/%d: ratio=%.2f cpu_ratio=%.2f (median over %d rounds of each round's ratio)", r.size, routes[len(routes)-1], routes[0], r.wall, r.cpu, rounds)
	}
	out := filepath.Join("..", "results")
	if err := writeSweep(filepath.Join(out, "dataplane_sweep.csv"), filepath.Join(out, "dataplane_sweep.png"), cells); err != nil {
		b.Fatal(err)
	}
}

func envInts(tb testing.TB, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		out = append(out, n)
	}
	return out
}
