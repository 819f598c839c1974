// Command dataplane measures the DPDK binding against dpdk-testpmd, side by
// side in one invocation: the same two net_null vdevs, the same frame size,
// one forwarding (worker) core, the same memory mode. It runs testpmd's io
// and macswap modes, then the binding's Processors (processors in
// process.go: io forwarding and a MAC swap on a Go worker), and prints the
// rates in Mpps with the ratio of each binding run to its testpmd mode.
//
// It reserves 2 MiB hugepages for the run when it can (mounting a private
// hugetlbfs if none is mounted) and gives them back afterwards; otherwise,
// or with -no-huge, both sides run on ordinary pages, which halves
// testpmd's rate on the relay's machines, and the report says so.
//
// A second section (-memif, on by default; memif.go) feeds a net_memif
// pair from the project's generator on the main core and measures what
// comes back from dpdk-testpmd (io, macswap) and from the relay worker on
// the other end, and prints memif: relay_mpps=X testpmd_macswap_mpps=Y
// ratio=Z before the net_null summary lines, which stay last.
//
// Figures, never pass/fail. Run as root:
//
//	go run ./bench/dataplane
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"golang.org/x/sys/unix"

	"github.com/poolrelay/poolrelay/bench/internal/stats"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/internal/logging"
)

// config is the run's parameters, shared by testpmd and the binding.
type config struct {
	testpmd            string
	mainCore, workCore int
	rounds             int
	warmup, seconds    int
	size, burst        int
	mbufs, memMB       int
	noHuge             bool
}

// devices are the two vdevs both sides forward between.
func (c *config) devices() []string {
	return []string{fmt.Sprintf("net_null0,size=%d", c.size), fmt.Sprintf("net_null1,size=%d", c.size)}
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	c := &config{}
	fs := flag.NewFlagSet("dataplane", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cores := fs.String("cores", "", "main core and worker core, e.g. 0,1 (default: the first two CPUs this process may use)")
	fs.StringVar(&c.testpmd, "testpmd", "dpdk-testpmd", "the dpdk-testpmd binary")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; each runs every testpmd mode and every binding processor once, interleaved")
	fs.IntVar(&c.warmup, "warmup", 1, "seconds of each run left out of the figures")
	fs.IntVar(&c.seconds, "seconds", 3, "measured seconds of each run (one sample per second)")
	fs.IntVar(&c.size, "size", 128, "frame size of the net_null vdevs, bytes")
	fs.IntVar(&c.burst, "burst", 32, "frames per RX/TX burst")
	fs.IntVar(&c.mbufs, "mbufs", 16383, "mbufs in the pool (testpmd gets the same number)")
	fs.IntVar(&c.memMB, "mem", 512, "MB of memory for each DPDK process (-m)")
	fs.BoolVar(&c.noHuge, "no-huge", false, "run both sides with --no-huge instead of reserving hugepages")
	level := fs.String("log", "warn", "log level of the binding's messages")
	memif := fs.Bool("memif", true, "also run the memif section: the project's generator feeding dpdk-testpmd and the relay over net_memif")
	auth1500 := fs.Bool("auth1500", true, "also run the relay with hop auth and testpmd macswap at 1500 B on another net_null pair, each round (for relay_auth_1500_gbps=; at -size 1500 the table's rows are used)")
	only := fs.String("only", "", "run only the binding rows whose name matches this regular expression (and their testpmd modes), e.g. '^relay'")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return fmt.Errorf("bench: -only: %w", err)
		}
		processors = slices.DeleteFunc(processors, func(p Processor) bool { return !re.MatchString(p.Name) })
		if len(processors) == 0 {
			return fmt.Errorf("bench: -only %q matches no run", *only)
		}
	}
	if c.rounds < 1 || c.warmup < 0 || c.seconds < 1 || c.size < 60 || c.burst < 1 || c.burst > 512 {
		return errors.New("bench: -rounds and -seconds must be at least 1, -size at least 60, -burst 1 to 512")
	}
	if os.Geteuid() != 0 {
		return errors.New("bench: run as root: DPDK needs it for hugepages and its runtime directory")
	}
	if _, err := exec.LookPath(c.testpmd); err != nil {
		return fmt.Errorf("bench: %s not found (Debian package dpdk): %w", c.testpmd, err)
	}
	var err error
	if c.mainCore, c.workCore, err = pickCores(*cores); err != nil {
		return err
	}
	if err := logging.ParseLevel(*level); err != nil {
		return err
	}
	log := logging.New(logging.Config{Level: *level, Format: "console"}, stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Two DPDK processes hold memory at once: the binding's EAL stays up
	// while testpmd runs.
	mem := setupMemory(2*c.memMB, c.noHuge)
	defer func() {
		if err := mem.release(); err != nil {
			fmt.Fprintln(stderr, "bench: releasing hugepages:", err)
		}
	}()
	fmt.Fprintln(stderr, "bench: memory:", mem.describe())

	s, err := openSession(c, mem, logging.For(log, "dpdk"))
	if err != nil {
		return err
	}
	defer s.close()
	// Each round runs a processor right after its testpmd mode, so both
	// see the same background load on a shared machine; the per-round
	// ratios show how much that load moved.
	res := results{testpmd: map[string][]float64{}, binding: map[string][]float64{}, ratios: map[string][]float64{}, cpuNs: map[string][]float64{}, stats: map[string]dpdk.BurstStats{}}
	var modes []string
	for _, p := range processors {
		if !slices.Contains(modes, p.Testpmd) {
			modes = append(modes, p.Testpmd)
		}
	}
	// The 1500 B hop-auth pass, on ports of its own unless the table is
	// at 1500 B already.
	var big *session
	if *auth1500 && c.size != bigSize && slices.ContainsFunc(processors, func(p Processor) bool { return p.Name == relayAuth.name }) {
		if big, err = s.sized("auth1500", bigSize, 8); err != nil {
			return err
		}
		defer big.close()
	}
	for round := 1; round <= c.rounds; round++ {
		for _, mode := range modes {
			fmt.Fprintf(stderr, "bench: round %d/%d: testpmd %s\n", round, c.rounds, mode)
			tp, err := testpmdRun(ctx, c, mem, mode)
			if err != nil {
				return err
			}
			res.testpmd[mode] = append(res.testpmd[mode], tp...)
			if err := runProcessors(ctx, s, mode, tp, &res, stderr); err != nil {
				return err
			}
		}
		if big != nil {
			fmt.Fprintf(stderr, "bench: round %d/%d: testpmd macswap, %d B\n", round, c.rounds, bigSize)
			tp, err := testpmdRun(ctx, big.c, mem, "macswap")
			if err != nil {
				return err
			}
			res.big.testpmd = append(res.big.testpmd, tp...)
			fmt.Fprintf(stderr, "bench: %s\n", relayAuthBig.name)
			b, err := big.run(ctx, relayAuthBig.processor())
			if err != nil {
				return fmt.Errorf("bench: %s: %w", relayAuthBig.name, err)
			}
			res.big.relay = append(res.big.relay, b.rates...)
		}
	}
	if c.size == bigSize {
		res.big.testpmd, res.big.relay = res.testpmd["macswap"], res.binding[relayAuth.name]
	}
	var mres *memifResults
	if *memif {
		r, err := runMemif(ctx, s, mem, stderr)
		if err != nil {
			return err
		}
		mres = &r
	}
	report(stdout, c, mem, res, mres)
	return nil
}

// runProcessors runs, after testpmd in mode, every processor compared
// with that mode, recording its samples and its ratio to tp, testpmd's.
func runProcessors(ctx context.Context, s *session, mode string, tp []float64, res *results, stderr io.Writer) error {
	for _, p := range processors {
		if p.Testpmd != mode {
			continue
		}
		fmt.Fprintf(stderr, "bench: %s\n", p.Name)
		b, err := s.run(ctx, p)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", p.Name, err)
		}
		res.binding[p.Name] = append(res.binding[p.Name], b.rates...)
		res.cpuNs[p.Name] = append(res.cpuNs[p.Name], b.cpuNs...)
		res.ratios[p.Name] = append(res.ratios[p.Name], stats.Median(b.rates)/stats.Median(tp))
		st := res.stats[p.Name]
		st.Dropped += b.stats.Dropped
		st.TxUnsent += b.stats.TxUnsent
		st.Punted += b.stats.Punted
		res.stats[p.Name] = st
	}
	return nil
}

// results are the samples of every run, in Mpps.
type results struct {
	testpmd map[string][]float64 // by forwarding mode
	binding map[string][]float64 // by processor name
	ratios  map[string][]float64 // binding/testpmd per round, by processor
	cpuNs   map[string][]float64 // the worker's CPU ns/frame per sample, by processor
	stats   map[string]dpdk.BurstStats
	// big is the 1500 B hop-auth pass: testpmd macswap and the relay
	// with hop auth through egress, in Mpps.
	big struct{ testpmd, relay []float64 }
}

// bigSize is the frame size of relay_auth_1500_gbps.
const bigSize = 1500

// gbps is the rate in Gbit/s of mpps frames of size bytes per second.
func gbps(mpps float64, size int) float64 { return mpps * float64(size) * 8 / 1e3 }

// pickCores parses -cores or takes the first two CPUs of the affinity mask.
func pickCores(s string) (int, int, error) {
	if s != "" {
		a, b, ok := strings.Cut(s, ",")
		m, err1 := strconv.Atoi(a)
		w, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || m == w || m < 0 || w < 0 {
			return 0, 0, fmt.Errorf("bench: -cores %q: give two different CPUs, e.g. 0,1", s)
		}
		return m, w, nil
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, 0, err
	}
	var cpus []int
	for c := 0; c < len(set)*64 && len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) < 2 {
		return 0, 0, errors.New("bench: needs two CPUs, a main core and a worker core")
	}
	return cpus[0], cpus[1], nil
}

// report prints the table, the memif section's when it ran (m), and the
// summary lines.
func report(w io.Writer, c *config, mem *memory, r results, m *memifResults) {
	fmt.Fprintf(w, "data-plane benchmark: 2x net_null (size=%d), burst %d, worker core %d, main core %d\n",
		c.size, c.burst, c.workCore, c.mainCore)
	fmt.Fprintf(w, "memory: %s\n", mem.describe())
	fmt.Fprintf(w, "Mpps = frames sent per second on both ports: median of %d rounds x %d one-second samples (after %d s of warm-up) [min-max]\n\n",
		c.rounds, c.seconds, c.warmup)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tMpps\t[min-max]\tratio\tratio per round\tdropped\ttx refused")
	shown := map[string]bool{}
	for _, p := range processors {
		if s := r.testpmd[p.Testpmd]; !shown[p.Testpmd] {
			shown[p.Testpmd] = true
			fmt.Fprintf(tw, "dpdk-testpmd %s\t%.2f\t[%.2f-%.2f]\t\t\t\t\n", p.Testpmd, stats.Median(s), slices.Min(s), slices.Max(s))
		}
	}
	var summary []string
	for _, p := range processors {
		s, ref := r.binding[p.Name], stats.Median(r.testpmd[p.Testpmd])
		var rounds []string
		for _, x := range r.ratios[p.Name] {
			rounds = append(rounds, fmt.Sprintf("%.2f", x))
		}
		st := r.stats[p.Name]
		fmt.Fprintf(tw, "%s\t%.2f\t[%.2f-%.2f]\t%.2fx testpmd %s\t%s\t%d\t%d\n", p.Name, stats.Median(s), slices.Min(s), slices.Max(s),
			stats.Median(s)/ref, p.Testpmd, strings.Join(rounds, " "), st.Dropped, st.TxUnsent)
		summary = append(summary, fmt.Sprintf("%s_mpps=%.2f testpmd_%s_mpps=%.2f ratio=%.2f",
			strings.ReplaceAll(p.Name, " ", "_"), stats.Median(s), p.Testpmd, ref, stats.Median(s)/ref))
	}
	tw.Flush()
	reportRelay(w, r)
	if rl, tp := r.big.relay, r.big.testpmd; len(rl) > 0 && len(tp) > 0 {
		g, tg := gbps(stats.Median(rl), bigSize), gbps(stats.Median(tp), bigSize)
		fmt.Fprintf(w, "relay with hop auth at %d B (through egress): %.2f Mpps = %.2f Gbps [%.2f-%.2f]; testpmd macswap at %d B: %.2f Gbps; %.2fx\n",
			bigSize, stats.Median(rl), g, gbps(slices.Min(rl), bigSize), gbps(slices.Max(rl), bigSize), bigSize, tg, g/tg)
		// Before the rows' lines, so that relay_mpps= stays last.
		summary = append([]string{fmt.Sprintf("relay_auth_1500_gbps=%.2f testpmd_macswap_1500_gbps=%.2f ratio=%.2f", g, tg, g/tg)}, summary...)
	}
	if m != nil {
		reportMemif(w, c, *m)
	}
	fmt.Fprintln(w)
	for _, s := range summary {
		fmt.Fprintln(w, s)
	}
}
