// Command daemon is `make bench-daemon`: the relay as a benchmarker runs
// it, `pool_relay start` in a process of its own on a shipped bench
// configuration (configs/bench-vhost.toml: two vhost-user ports, two static
// lab peers with pre-shared hop keys, 1024 hop sessions in one static
// range), driven by the project's generator, pool_gen, from the other end
// of the vhost-user/virtio-user pair with hop authentication on, and read
// back over the control socket. In the same run, the engine reference: the
// relay's data plane alone (relay.Engine with the same configuration, keys
// and routes, no control core, ledger or socket), driven the same way.
//
// For each round and frame size it starts the relay (or the engine), runs
// pool_gen flat out for -duration, reads the counters and stops the relay,
// so that each run starts from zero; rounds alternate the two so that the
// machine's load falls on both alike. It prints, per size, the medians
// over the rounds:
//
//	daemon: size=S relay_mpps=X gen_tx_mpps=Y relayed=N dropped=D
//	engine: size=S relay_mpps=X gen_tx_mpps=Y relayed=N dropped=D
//
// where relay_mpps is the frames the relay relayed (charged to the sending
// static peer) per second of the generator's run, gen_tx_mpps what the
// generator handed to its virtio-user port, relayed and dropped the totals
// over the rounds (dropped: every drop reason of `pool_relay stats`), and
// last
//
//	daemon_relay_mpps_128=X daemon_relay_gbps_1500=Y engine_ratio=R drops=D
//
// with Gbps counted over the 1500-byte Ethernet frames (FCS excluded) and
// engine_ratio the daemon's 128-byte rate over the engine's. Figures, not
// a pass or fail: on a loaded machine they move with the load, the ratio
// less.
//
// Everything it creates lives in one private directory (the configuration
// with its paths moved there, key files, the relay's data, the sockets) and
// under EAL file prefixes of its own; it removes them, and stops its
// processes, when it ends, also on SIGINT or SIGTERM.
//
// Usage (root, after make build):
//
//	go run ./bench/daemon -bin bin [-config configs/bench-vhost.toml] [-sizes 128,1500] [-duration 5s] [-rounds 3]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/poolrelay/poolrelay/bench/internal/stats"
	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/internal/logging"
)

// timeNow is the clock the engine reference starts its seqs from.
var timeNow = time.Now

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command line.
type options struct {
	bins, config string
	sizes        []int
	duration     time.Duration
	rounds       int
	sessions     int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench-daemon", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o     options
		sizes string
		serve string
	)
	fs.StringVar(&o.bins, "bin", "bin", "directory holding pool_relay and pool_gen (make build)")
	fs.StringVar(&o.config, "config", "configs/bench-vhost.toml", "the shipped bench configuration to run")
	fs.StringVar(&sizes, "sizes", "128,1500", "Ethernet frame sizes (FCS excluded), comma-separated")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long pool_gen sends in each run")
	fs.IntVar(&o.rounds, "rounds", 3, "runs of each size, for the daemon and the engine each")
	fs.IntVar(&o.sessions, "sessions", 1024, "hop sessions pool_gen cycles through (the configuration's range must cover them)")
	fs.StringVar(&serve, "serve-engine", "", "internal: run the engine reference on this configuration until SIGTERM")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if serve != "" {
		log := logging.New(logging.Config{Level: "warn", Format: "auto"}, stderr)
		if err := serveEngine(ctx, serve, stdout, readyNote(stdout), log); err != nil {
			fmt.Fprintln(stderr, "bench: engine:", err)
			return 1
		}
		return 0
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 64 || n > 1514 {
			fmt.Fprintf(stderr, "bench: -sizes: %q is not a frame size from 64 to 1514\n", s)
			return 2
		}
		o.sizes = append(o.sizes, n)
	}
	if o.rounds < 1 || o.duration <= 0 {
		fmt.Fprintln(stderr, "bench: -rounds must be at least 1 and -duration positive")
		return 2
	}
	if err := bench(ctx, o, stdout, stderr); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "bench: interrupted; its processes, files and DPDK runtime directories are removed")
			return 1
		}
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// sample is one run: relay_mpps and gen_tx_mpps, and its counts.
type sample struct {
	relayMpps, genMpps float64
	relayed, dropped   uint64
}

// bench runs the rounds and prints the report.
func bench(ctx context.Context, o options, stdout, stderr io.Writer) error {
	bins, err := filepath.Abs(o.bins)
	if err != nil {
		return err
	}
	for _, b := range []string{"pool_relay", "pool_gen"} {
		if _, err := os.Stat(filepath.Join(bins, b)); err != nil {
			return fmt.Errorf("bench: %s not found in %s: run make build first (%v)", b, bins, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	l, err := newLab(bins, o.config)
	if err != nil {
		return err
	}
	defer func() {
		if err := l.close(); err != nil {
			fmt.Fprintln(stderr, "bench: cleaning up:", err)
		}
	}()
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(stdout, "bench-daemon: %s, %d x %d s per size and side; load average %s", o.config, o.rounds,
			int(o.duration/time.Second), strings.Join(strings.Fields(string(load))[:3], " ")+"\n")
	}
	daemon := map[int][]sample{}
	engine := map[int][]sample{}
	for round := 1; round <= o.rounds; round++ {
		for _, size := range o.sizes {
			fmt.Fprintf(stderr, "bench: round %d/%d, %d B: daemon\n", round, o.rounds, size)
			s, err := l.daemonRun(ctx, o, size)
			if err != nil {
				return err
			}
			daemon[size] = append(daemon[size], s)
			fmt.Fprintf(stderr, "bench:   relay %.3f Mpps, generator %.3f Mpps\n", s.relayMpps, s.genMpps)
			fmt.Fprintf(stderr, "bench: round %d/%d, %d B: engine\n", round, o.rounds, size)
			if s, err = l.engineRun(ctx, o, size, self); err != nil {
				return err
			}
			engine[size] = append(engine[size], s)
			fmt.Fprintf(stderr, "bench:   relay %.3f Mpps, generator %.3f Mpps\n", s.relayMpps, s.genMpps)
		}
	}
	report(stdout, o.sizes, daemon, engine)
	return nil
}

// daemonRun starts pool_relay, runs pool_gen signed with the static peers'
// keys, reads the relay's counters over the control socket and stops it.
func (l *lab) daemonRun(ctx context.Context, o options, size int) (sample, error) {
	p, err := l.startRelay(ctx)
	if err != nil {
		return sample{}, err
	}
	defer p.stop(15 * time.Second)
	g, err := l.runGen(ctx, genOptions{size: size, sessions: o.sessions, duration: o.duration,
		keyFile: l.keyFile(0), rxKey: l.keyFile(1)})
	if err != nil {
		return sample{}, err
	}
	st, err := l.client().Stats(ctx)
	if err != nil {
		return sample{}, fmt.Errorf("bench: stats over the control socket: %w", err)
	}
	relayed, dropped := relayCounts(st)
	return sample{relayMpps: float64(relayed) / g.secs / 1e6, genMpps: float64(g.tx) / g.secs / 1e6,
		relayed: relayed, dropped: dropped}, nil
}

// relayCounts are the frames the relay relayed for its static peers and
// the frames it dropped, by the stats it serves.
func relayCounts(st api.Stats) (relayed, dropped uint64) {
	for _, p := range st.StaticPeers {
		relayed += p.RelayedForPackets
	}
	for _, d := range st.Drops {
		dropped += d.Packets
	}
	return relayed, dropped
}

// engineRun starts the engine reference, runs pool_gen the same way and
// stops it, reading the counters it prints.
func (l *lab) engineRun(ctx context.Context, o options, size int, self string) (sample, error) {
	p, err := l.start("engine", self, "-serve-engine", l.configPath())
	if err != nil {
		return sample{}, err
	}
	defer p.stop(15 * time.Second)
	if err := waitReady(ctx, p); err != nil {
		return sample{}, err
	}
	g, err := l.runGen(ctx, genOptions{size: size, sessions: o.sessions, duration: o.duration,
		keyFile: l.keyFile(0), rxKey: l.keyFile(1)})
	if err != nil {
		return sample{}, err
	}
	if err := p.stop(15 * time.Second); err != nil {
		return sample{}, fmt.Errorf("bench: engine: %v; its output ends:\n%s", err, p.tail(20))
	}
	var c engineCounts
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	found := false
	for sc.Scan() {
		if json.Unmarshal(sc.Bytes(), &c) == nil && strings.HasPrefix(sc.Text(), "{") {
			found = true
		}
	}
	if !found {
		return sample{}, fmt.Errorf("bench: the engine printed no counters; its output ends:\n%s", p.tail(20))
	}
	return sample{relayMpps: float64(c.Relayed) / g.secs / 1e6, genMpps: float64(g.tx) / g.secs / 1e6,
		relayed: c.Relayed, dropped: c.Dropped}, nil
}

// readyLine is what -serve-engine prints once its routes are in.
const readyLine = "engine ready"

func readyNote(w io.Writer) func() { return func() { fmt.Fprintln(w, readyLine) } }

// waitReady waits for the engine's ready line.
func waitReady(ctx context.Context, p *proc) error {
	deadline := time.After(60 * time.Second)
	for !strings.Contains(p.out.String(), readyLine) {
		select {
		case <-p.done:
			return fmt.Errorf("bench: the engine ended at start (%v); its output ends:\n%s", p.err, p.tail(20))
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return errors.New("bench: the engine was not ready within 60s")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// report prints the per-size lines and the summary.
func report(w io.Writer, sizes []int, daemon, engine map[int][]sample) {
	line := func(side string, size int, ss []sample) sample {
		m := medians(ss)
		fmt.Fprintf(w, "%s: size=%d relay_mpps=%.3f gen_tx_mpps=%.3f relayed=%d dropped=%d\n", side, size, m.relayMpps, m.genMpps, m.relayed, m.dropped)
		return m
	}
	var d128, e128, d1500 sample
	var drops uint64
	for _, size := range sizes {
		d := line("daemon", size, daemon[size])
		e := line("engine", size, engine[size])
		drops += d.dropped
		switch size {
		case 128:
			d128, e128 = d, e
		case 1500:
			d1500 = d
		}
	}
	ratio := 0.0
	if e128.relayMpps > 0 {
		ratio = d128.relayMpps / e128.relayMpps
	}
	fmt.Fprintf(w, "daemon_relay_mpps_128=%.3f daemon_relay_gbps_1500=%.3f engine_ratio=%.2f drops=%d\n",
		d128.relayMpps, d1500.relayMpps*1500*8/1e3, ratio, drops)
}

// medians are the rates' medians and the counts' totals of ss.
func medians(ss []sample) sample {
	var m sample
	r := make([]float64, len(ss))
	g := make([]float64, len(ss))
	for i, s := range ss {
		r[i], g[i] = s.relayMpps, s.genMpps
		m.relayed += s.relayed
		m.dropped += s.dropped
	}
	m.relayMpps, m.genMpps = stats.Median(r), stats.Median(g)
	return m
}
