package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/dpdktest"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/dpdktest/testmain"
	"github.com/poolrelay/poolrelay/internal/netns"
	"github.com/poolrelay/poolrelay/internal/traffic"
)

// One EAL per test process, on ordinary pages, under a file prefix that
// carries the pid; the tests hot-plug their ports.
var env dpdktest.Env[*dpdk.EAL]

func TestMain(m *testing.M) {
	o := dpdktest.Options{Name: "pool_gen", Prefix: "poolgen_test_", MemoryMB: 256, LogLevel: 4,
		NotRoot: "not root: DPDK needs root"}
	os.Exit(testmain.Run(m, &env, o))
}

var testKey = bytes.Repeat([]byte{0x5a}, 32)

func testConfig(tx, rx string) genConfig {
	o, err := parseArgs([]string{"--port", tx, "--port", rx, "--sessions", "100", "--size", "256",
		"--key", strings.Repeat("5a", 32), "--duration", "300ms", "--drain", "100ms", "--mbufs", "2047"}, os.Stderr)
	if err != nil {
		panic(err)
	}
	o.gen.WorkCore = env.WorkCore
	return o.gen
}

// checkAllBack checks that every frame sent came back, once, counted for
// the session it was sent for.
func checkAllBack(t *testing.T, r *result) {
	t.Helper()
	t.Logf("elapsed %v tx %d refused %d pool-empty %d rx %d ours %d other %d badmac %d",
		r.Elapsed, r.Tx, r.TxRefused, r.AllocFail, r.Rx, r.RxOurs, r.Other, r.BadMAC)
	if r.Tx == 0 {
		t.Fatal("nothing sent")
	}
	if r.RxOurs != r.Tx || r.Other != 0 || r.BadMAC != 0 || r.LostFrames() != 0 {
		t.Fatalf("sent %d, got back %d of ours, %d other, %d bad MACs", r.Tx, r.RxOurs, r.Other, r.BadMAC)
	}
	var queued, received uint64
	for i := range r.Queued {
		queued += r.Queued[i]
		received += r.Received[i]
		if r.Received[i] > r.Queued[i] {
			t.Fatalf("session %d: %d received, %d queued", i, r.Received[i], r.Queued[i])
		}
	}
	// Sessions go round robin: no two differ by more than one frame.
	lo, hi := slices.Min(r.Queued), slices.Max(r.Queued)
	if hi-lo > 1 {
		t.Fatalf("sessions got %d to %d frames: not round robin", lo, hi)
	}
	if received != r.RxOurs || queued != r.Tx+r.TxRefused {
		t.Fatalf("per-session sums: queued %d received %d; totals tx+refused %d rx %d", queued, received, r.Tx+r.TxRefused, r.RxOurs)
	}
}

// TestRingLoopback runs the generator against itself over a net_ring port,
// whose TX queue feeds its RX queue: every frame comes back unchanged, so
// its hop MAC verifies under the key it was signed with.
func TestRingLoopback(t *testing.T) {
	e := env.Need(t)
	// A device name per run: net_ring's rings outlive an unplugged port,
	// and probing the name again logs a failed reservation.
	for i, mode := range []string{modePrefill, modeBuild} {
		t.Run(mode, func(t *testing.T) {
			dev := "net_ring" + strconv.Itoa(10+i)
			c := testConfig(dev, dev)
			c.Mode, c.RxKey = mode, testKey
			r, err := generate(t.Context(), e, c, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			checkAllBack(t, r)
		})
	}
}

// TestWrongRxKey: frames signed under one key fail verification under
// another, and are counted as such, not as received.
func TestWrongRxKey(t *testing.T) {
	e := env.Need(t)
	c := testConfig("net_ring8", "net_ring8")
	c.RxKey = bytes.Repeat([]byte{1}, 32)
	r, err := generate(t.Context(), e, c, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if r.Tx == 0 || r.BadMAC != r.Tx || r.RxOurs != 0 {
		t.Fatalf("tx %d, bad MACs %d, accepted %d", r.Tx, r.BadMAC, r.RxOurs)
	}
}

// TestRate runs the generator at a rate, on the clock it injects, and
// checks that it never got ahead of the rate by more than a burst. It can
// fall behind on a loaded machine (the worker shares its core), so the
// live check is one-sided; TestDue checks the pacing itself.
func TestRate(t *testing.T) {
	e := env.Need(t)
	c := testConfig("net_ring9", "net_ring9")
	c.Rate = 50000
	start := time.Now()
	c.Now = func() time.Duration { return time.Since(start) }
	r, err := generate(t.Context(), e, c, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	checkAllBack(t, r)
	want := c.Rate * r.Elapsed.Seconds()
	got := float64(r.Tx + r.TxRefused)
	t.Logf("queued %v frames in %v at %v fps: %.1f%% of the rate", got, r.Elapsed, c.Rate, 100*got/want)
	if got > want+float64(c.Burst) {
		t.Fatalf("queued %v frames in %v at %v fps: more than %v plus a burst", got, r.Elapsed, c.Rate, want)
	}
}

func TestDue(t *testing.T) {
	for _, c := range []struct {
		rate      float64
		elapsed   time.Duration
		attempted uint64
		want      int
	}{
		{0, time.Second, 1e9, 32},                // flat out
		{1e6, 0, 0, 0},                           // nothing due yet
		{1e6, 10 * time.Microsecond, 0, 10},      // 10 frames due
		{1e6, 10 * time.Microsecond, 10, 0},      // all sent
		{1e6, time.Millisecond, 0, 32},           // behind: one burst at a time
		{1e6, time.Millisecond, 2000, 0},         // ahead: wait
		{1000, 1500 * time.Millisecond, 1499, 1}, // slow rates
		{14.88e6, time.Second, 14880000 - 5, 5},  // line rate at 64 B on 10G
	} {
		if got := due(c.rate, c.elapsed, c.attempted, 32); got != c.want {
			t.Errorf("due(%v, %v, %d) = %d, want %d", c.rate, c.elapsed, c.attempted, got, c.want)
		}
	}
}

// TestMemifPair runs the generator against itself over a memif pair in one
// process: the server port sends, the client port receives. The socket is
// a file under the test's temporary directory, not an abstract socket:
// abstract names are machine-wide, and parallel test processes would meet.
func TestMemifPair(t *testing.T) {
	e := env.Need(t)
	sock := filepath.Join(t.TempDir(), "memif.sock")
	c := testConfig("net_memif0,role=server,id=0,socket-abstract=no,socket="+sock,
		"net_memif1,role=client,id=0,socket-abstract=no,socket="+sock)
	c.Rate = 200000 // memif in one process, sharing two busy cores: no contest of rates
	r, err := generate(t.Context(), e, c, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	checkAllBack(t, r)
	if r.TxDriver != "net_memif" || r.RxDriver != "net_memif" {
		t.Fatalf("drivers %s, %s", r.TxDriver, r.RxDriver)
	}
}

func TestReport(t *testing.T) {
	c := genConfig{TxDevice: "a", RxDevice: "b", Spec: traffic.Spec{Size: 128, Sessions: 3}, Mode: modePrefill, Burst: 32}
	r := &result{Elapsed: 2 * time.Second, Tx: 2000, RxOurs: 1900, Queued: []uint64{700, 700, 600}, Received: []uint64{700, 600, 600}}
	var out bytes.Buffer
	report(&out, &c, r, 2)
	first, _, _ := strings.Cut(out.String(), "\n")
	if first != "tx_pps=1000 rx_pps=950 lost=100" {
		t.Fatalf("summary line %q", first)
	}
	if !strings.Contains(out.String(), traffic.HopSession(1).String()) {
		t.Fatalf("the worst session is not listed first:\n%s", out.String())
	}
}

func TestParseArgs(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "relay.toml")
	os.WriteFile(conf, []byte("[eal]\ncores = \"2-3\"\nno_huge = false\nmemory_mb = 0\n[dataplane]\nburst = 64\n"), 0o644)
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[eal]\ncores = \"2-3\"\nhuge = 1\n"), 0o644)
	o, err := parseArgs([]string{"--config", conf, "--memory-mb", "64", "--port", "net_null0"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.eal.Cores != "2-3" || o.eal.NoHuge || o.eal.MemoryMB != 64 || o.gen.RxDevice != "net_null0" {
		t.Fatalf("eal %+v gen %+v", o.eal, o.gen)
	}
	for _, args := range [][]string{
		{},
		{"--port", "a", "--port", "b", "--port", "c"},
		{"--port", "a", "--key", "00"},
		{"--port", "a", "--size", "64"},
		{"--port", "a", "--src-ip", "::1"},
		{"--port", "a", "--dst-mac", "nope"},
		{"--port", "a", "--rate", "-1"},
		{"--port", "a", "--config", bad},
		{"--port", "a", "stray"},
	} {
		if _, err := parseArgs(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseArgs(%q) succeeded", args)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	e := env.Need(t)
	c := testConfig("net_ring6", "net_ring6")
	c.Mode = "magic"
	if _, err := generate(context.Background(), e, c, zerolog.Nop()); err == nil {
		t.Fatal("unknown mode accepted")
	}
}

// TestAFPacketVeth runs the generator across a veth pair: it sends on a
// net_af_packet port on one end and receives on one on the other, with the
// kernel in between.
func TestAFPacketVeth(t *testing.T) {
	e := env.Need(t)
	topo, err := netns.ForTest(t, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	a, b, err := topo.Veth(netns.End{Name: "g0"}, netns.End{Name: "g1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{a, b} {
		// IPv6 would send solicitations and reports into the count.
		if err := netns.Root.WriteSysctl("net/ipv6/conf/"+dev+"/disable_ipv6", "1"); err != nil {
			t.Fatal(err)
		}
		if err := netns.Root.Configure(dev, netns.Link{}); err != nil {
			t.Fatal(err)
		}
	}
	// 4096 frames of RX ring (the PMD's default is 512) ride out a worker
	// descheduled for 200 ms at this rate on a loaded machine.
	c := testConfig("net_af_packet20,iface="+a+",framecnt=4096", "net_af_packet21,iface="+b+",framecnt=4096")
	c.Rate = 20000
	r, err := generate(t.Context(), e, c, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	checkAllBack(t, r)
	if r.TxDriver != "net_af_packet" {
		t.Fatalf("driver %s", r.TxDriver)
	}
}

// TestSweepStale leaves the runtime directory of a dead pool_gen behind and
// checks that the next run's sweep removes it and nothing else.
func TestSweepStale(t *testing.T) {
	env.Need(t)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join("/var/run/dpdk", defaultPrefix(cmd.Process.Pid))
	live := filepath.Join("/var/run/dpdk", defaultPrefix(os.Getpid()))
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	defer os.RemoveAll(live)
	sweepStale(zerolog.Nop())
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		os.RemoveAll(dead)
		t.Fatal("a dead pool_gen's runtime directory survived the sweep")
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatal("the sweep removed a live process's runtime directory")
	}
}
