// Command pool_sim runs the incentive simulation of package sim: N relays
// in one process on the real ledger and egress scheduler, over a
// scale-free topology, with honest and cheating strategies, on simulated
// time. It writes bench/results/sim.csv, sim_classes.csv and sim.png and
// ends with the line
//
//	sim: relays=N freerider_goodput_ratio=X whitewash_gain=Y collusion_gain=Z honest_disconnects=W idle_contributor_demoted=B newcomer_priority_s=T
//
// whose quantities the sim package documents (go doc ./sim).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/poolrelay/poolrelay/sim"
)

func main() {
	n := flag.Int("relays", 10000, "number of relays")
	seed := flag.Uint64("seed", 1, "random seed (same seed, same run)")
	dur := flag.Duration("duration", 0, "simulated time (default: the package's 20m)")
	out := flag.String("out", "bench/results", "directory for sim.csv, sim_classes.csv and sim.png")
	prefix := flag.String("name", "sim", "file name prefix in -out")
	quiet := flag.Bool("quiet", false, "no progress lines")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile to this file")
	floor := flag.Int("floor", -1, "sched floor_percent for the deprioritised class (default: the relay's)")
	overload := flag.Float64("overload", 0, "demand over capacity at each relay's egress (default: the package's 1.5)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: pool_sim [flags]\n\nRuns the incentive simulation (go doc ./sim) and ends with its summary line.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	cfg := sim.DefaultConfig(*n)
	cfg.Seed = *seed
	if *dur != 0 {
		cfg.Duration = *dur
	}
	if *floor >= 0 {
		cfg.Sched.FloorPercent = *floor
	}
	if *overload != 0 {
		cfg.Overload = *overload
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	// Each relay's ledger holds its store open (its journal is in memory).
	raiseFileLimit(uint64(*n + 256))
	// The stores go to a directory of ours, removed at the end and on
	// SIGINT or SIGTERM, so an interrupted run leaves nothing in /dev/shm.
	tmp := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		tmp = "/dev/shm"
	}
	dir, err := os.MkdirTemp(tmp, "pool_sim-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pool_sim:", err)
		os.Exit(1)
	}
	cfg.Dir = dir
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		os.RemoveAll(dir)
		fmt.Fprintf(os.Stderr, "pool_sim: %v: stopped, %s removed\n", s, dir)
		os.Exit(130)
	}()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "pool_sim:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	// The heap is mostly long-lived (ledgers, queues, frames): collecting
	// it less often saves a fifth of the CPU for a few hundred MB more.
	debug.SetGCPercent(400)
	start := time.Now()
	res, err := sim.Run(cfg)
	os.RemoveAll(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	base := filepath.Join(*out, *prefix)
	if err := res.WriteCSV(base); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := res.Plot(base+".png", cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%-16s %10s %10s %8s %8s %11s %10s\n", "strategy", "offered", "delivered", "goodput", "vs_hon", "disconnects", "mismatches")
	for st := sim.Strategy(0); st < sim.NumStrategies; st++ {
		fmt.Printf("%-16s %10d %10d %8.3f %8.3f %11d %10d\n", st, res.Offered[st], res.Delivered[st], res.Goodput[st], res.Ratio[st], res.Disconnects[st], res.Mismatches[st])
	}
	fmt.Printf("idle: pairs=%d contributors_at_idle_start=%d demoted=%d idle_busy_pairs=%d  newcomers: %d of %d reached priority\n",
		res.IdlePairs, res.IdleContributors, res.IdleDemotions, res.IdleBusy, res.NewcomersReached, res.Newcomers)
	fmt.Printf("collusion: gain over the same placement without trading %.3f, over freerider_pays %.3f\n", res.CollusionGain, res.CollusionVsFreerider)
	fmt.Printf("egress: sent by class (control, priority, normal, deprioritised) %v, refused %v\n", res.ClassSent, res.ClassDropped)
	fmt.Printf("egress load (offered over capacity per relay after warm-up): p10=%.2f p25=%.2f p50=%.2f p75=%.2f p90=%.2f\n",
		res.EgressLoad[0], res.EgressLoad[1], res.EgressLoad[2], res.EgressLoad[3], res.EgressLoad[4])
	fmt.Println("hops: per hop (0 = source egress), frames offered to a queue, share by class (priority/normal/deprioritised) and share refused in each")
	for _, st := range []sim.Strategy{sim.Honest, sim.FreeriderPays} {
		for h := 0; h < sim.HopBuckets; h++ {
			fmt.Printf("  %-14s hop%d%s", st, h, map[bool]string{true: "+", false: " "}[h == sim.HopBuckets-1])
			fmt.Printf(" offered=%8d", hopSum(res.HopOffered[st][h][:]))
			// Classes 1 to 3 of package sched: priority, normal, deprioritised.
			for c, name := range []string{1: "priority", 2: "normal", 3: "deprioritised"} {
				if c == 0 {
					continue
				}
				fmt.Printf("  %s %.3f refused %.3f", name, ratio(res.HopOffered[st][h][c], hopSum(res.HopOffered[st][h][:])), ratio(res.HopRefused[st][h][c], res.HopOffered[st][h][c]))
			}
			fmt.Println()
		}
	}
	fmt.Printf("drops: debt=%d queue=%d link=%d wire=%d  cheques=%d rejected=%d rekeys=%d\n",
		res.DebtDrops, res.QueueDrops, res.LinkDrops, res.WireLoss, res.Cheques, res.ChequesRejected, res.Rekeys)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("run: wall=%s cpu=%s peak_rss_mib=%d\n", time.Since(start).Round(time.Second),
		(time.Duration(ru.Utime.Nano()) + time.Duration(ru.Stime.Nano())).Round(time.Second), ru.Maxrss/1024)
	fmt.Printf("wrote %s.csv, %s_classes.csv, %s.png\n", base, base, base)
	fmt.Println(res.Line())
}

// raiseFileLimit lifts RLIMIT_NOFILE to at least n where the hard limit (or,
// as root, the system) allows.
func raiseFileLimit(n uint64) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil || l.Cur >= n {
		return
	}
	want := syscall.Rlimit{Cur: n, Max: max(l.Max, n)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// hopSum is the sum of a hop's frames over the classes.
func hopSum(v []uint64) uint64 {
	var n uint64
	for _, x := range v {
		n += x
	}
	return n
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
