// Command pool_gen is the project's own DPDK traffic generator, for machines
// without Pktgen-DPDK: it sends relayed POOL frames (Ethernet/IP/UDP to the
// relay port, an outer DATA header on channel 0 for N hop sessions, an
// inner POOL frame; optionally valid hop MACs under a given key) on one
// DPDK port at a target rate or flat out, receives on the same or another
// port, counts what comes back per session, and prints
//
//	tx_pps=… rx_pps=… lost=…
//
// followed by a table. Any DPDK port works: net_memif (client or server,
// facing pool_relay's memif port), net_ring, net_af_packet, net_af_xdp, a
// PCI NIC.
//
// Frames come from a TX mempool of the generator's own that is filled with
// frames before the run (--mode prefill): DPDK does not clear an mbuf's data
// when it is freed, so sending a frame costs a bulk allocation, its length,
// and the next session's ids, seq and hop MAC written in place with the UDP
// checksum patched (sessions go round robin). --mode build builds every frame from scratch instead, for
// comparison. Each burst costs two cgo calls: the allocation, and the one
// dpdk.Burst.Cycle that sends it and receives the next RX burst.
//
// Usage:
//
//	pool_gen --port 'net_memif0,role=client,socket=/run/pool_relay.memif' \
//	    --rate 1e6 --size 128 --sessions 1024 --duration 10s --key $KEY
//
// Against a relay's static lab peers (pool_relay's [[control.static_peer]],
// configs/bench-vhost.toml), --key-file names the sending peer's
// pre-shared key file and --rx-key-file the receiving peer's: pool_gen
// derives the direction keys from them as the relay does
// (hopmac.LabKeys), so every frame carries a fresh seq and a MAC the relay
// verifies, and what comes back is checked under the relay's key.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/internal/traffic"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the parsed command line.
type options struct {
	eal      dataplane.EALConfig
	gen      genConfig
	rows     int
	logLevel string
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// parseArgs parses the command line. The [eal] section of --config, if
// given, is the base; EAL flags given explicitly override it.
func parseArgs(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("pool_gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{eal: dataplane.DefaultEALConfig()}
	o.eal.FilePrefix = defaultPrefix(os.Getpid())
	var (
		config         = fs.String("config", "", "TOML file whose [eal] section starts the EAL (a pool_relay config works)")
		cores          = fs.String("cores", o.eal.Cores, "EAL core list: main core first, the generator's worker on the next")
		noHuge         = fs.Bool("no-huge", o.eal.NoHuge, "run DPDK on ordinary pages")
		memMB          = fs.Int("memory-mb", o.eal.MemoryMB, "DPDK memory in MiB (-m); 0 with hugepages lets DPDK decide")
		prefix         = fs.String("file-prefix", o.eal.FilePrefix, "EAL --file-prefix")
		logLevel       = fs.Int("eal-log-level", o.eal.LogLevel, "DPDK log level, 1-8")
		ealArgs, ports listFlag
		rate           = fs.Float64("rate", 0, "target rate in frames per second (1e6 = 1 Mpps); 0 sends flat out")
		size           = fs.Int("size", 128, "Ethernet frame size in bytes, FCS excluded")
		sessions       = fs.Int("sessions", 1024, "hop sessions the frames cycle through")
		duration       = fs.Duration("duration", 5*time.Second, "how long to send")
		drain          = fs.Duration("drain", 200*time.Millisecond, "how long to keep counting after sending stops")
		burst          = fs.Int("burst", 32, "frames per burst")
		mode           = fs.String("mode", modePrefill, "prefill (restamp prefilled mbufs) or build (build every frame)")
		mbufs          = fs.Int("mbufs", 8191, "mbufs in each of the TX and RX pools")
		key            = fs.String("key", "", "hop key, 64 hex digits: frames carry valid hop MACs under it")
		rxKey          = fs.String("rx-key", "", "hop key, 64 hex digits, to verify the MACs of frames that come back")
		keyFile        = fs.String("key-file", "", "a static peer's pre-shared key file (pool_relay's [[control.static_peer]] key_file): frames carry valid hop MACs under the key it derives for the peer's frames to the relay")
		rxKeyFile      = fs.String("rx-key-file", "", "the receiving static peer's key file: frames that come back are verified under the key it derives for the relay's frames to the peer")
		srcMAC         = fs.String("src-mac", "02:00:00:00:00:01", "source MAC of the frames")
		dstMAC         = fs.String("dst-mac", "02:00:00:00:00:02", "destination MAC: the relay port's")
		srcIP          = fs.String("src-ip", "192.0.2.1", "source IP")
		dstIP          = fs.String("dst-ip", "192.0.2.2", "destination IP: the relay port's")
		srcPort        = fs.Uint("src-port", 40000, "UDP source port")
		dstPort        = fs.Uint("dst-port", wire.RelayPort, "UDP destination port")
		rows           = fs.Int("table", 8, "sessions listed in the table (the ones with the most lost frames)")
		level          = fs.String("log-level", "info", "log level: debug, info, warn, error")
	)
	fs.Var(&ealArgs, "eal-arg", "extra EAL argument (repeatable)")
	fs.Var(&ports, "port", "DPDK device: the first sends, a second one receives (repeatable, 1 or 2)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("pool_gen: unexpected arguments %q", fs.Args())
	}
	if *config != "" {
		if err := loadEAL(*config, &o.eal); err != nil {
			return nil, err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "cores":
			o.eal.Cores = *cores
		case "no-huge":
			o.eal.NoHuge = *noHuge
		case "memory-mb":
			o.eal.MemoryMB = *memMB
		case "file-prefix":
			o.eal.FilePrefix = *prefix
		case "eal-log-level":
			o.eal.LogLevel = *logLevel
		}
	})
	o.eal.ExtraArgs = append(o.eal.ExtraArgs, ealArgs...)
	if len(ports) < 1 || len(ports) > 2 {
		return nil, errors.New("pool_gen: give one --port (send and receive) or two (send, receive)")
	}
	o.gen = genConfig{
		TxDevice: ports[0], RxDevice: ports[len(ports)-1],
		Rate: *rate, Duration: *duration, Drain: *drain, Burst: *burst, Mode: *mode, Mbufs: *mbufs,
	}
	if *rate < 0 || *duration <= 0 || *drain < 0 || *mbufs < 1023 {
		return nil, errors.New("pool_gen: --rate must be >= 0, --duration > 0, --drain >= 0, --mbufs >= 1023")
	}
	var err error
	spec := traffic.Spec{Size: *size, Sessions: *sessions}
	if spec.Src, err = parseMAC(*srcMAC); err != nil {
		return nil, err
	}
	if spec.Dst, err = parseMAC(*dstMAC); err != nil {
		return nil, err
	}
	if spec.SrcIP, err = netip.ParseAddr(*srcIP); err != nil {
		return nil, fmt.Errorf("pool_gen: --src-ip: %w", err)
	}
	if spec.DstIP, err = netip.ParseAddr(*dstIP); err != nil {
		return nil, fmt.Errorf("pool_gen: --dst-ip: %w", err)
	}
	if *srcPort > 65535 || *dstPort < 1 || *dstPort > 65535 {
		return nil, errors.New("pool_gen: UDP ports are 1 to 65535")
	}
	spec.SrcPort, spec.DstPort = uint16(*srcPort), uint16(*dstPort)
	if spec.Key, err = parseKey("key", *key); err != nil {
		return nil, err
	}
	if o.gen.RxKey, err = parseKey("rx-key", *rxKey); err != nil {
		return nil, err
	}
	if *keyFile != "" {
		if spec.Key != nil {
			return nil, errors.New("pool_gen: give --key or --key-file, not both")
		}
		psk, err := hopmac.LoadPSK(*keyFile)
		if err != nil {
			return nil, fmt.Errorf("pool_gen: --key-file: %w", err)
		}
		spec.Key, _ = hopmac.LabKeys(psk)
		// The key outlives this run: seqs from the clock, above any an
		// earlier run sent (hopmac.ClockSeq).
		spec.FirstSeq = hopmac.ClockSeq(time.Now())
	}
	if *rxKeyFile != "" {
		if o.gen.RxKey != nil {
			return nil, errors.New("pool_gen: give --rx-key or --rx-key-file, not both")
		}
		psk, err := hopmac.LoadPSK(*rxKeyFile)
		if err != nil {
			return nil, fmt.Errorf("pool_gen: --rx-key-file: %w", err)
		}
		_, o.gen.RxKey = hopmac.LabKeys(psk)
	}
	if _, err := traffic.NewBuilder(spec); err != nil {
		return nil, fmt.Errorf("pool_gen: %w", err)
	}
	o.gen.Spec = spec
	o.rows, o.logLevel = *rows, *level
	return o, nil
}

// loadEAL decodes the [eal] section of a TOML file over cfg. Other
// sections are ignored, so a pool_relay config works; an unknown key
// inside [eal] is an error, as in the relay's own strict loader.
func loadEAL(path string, cfg *dataplane.EALConfig) error {
	var file struct {
		EAL *dataplane.EALConfig `toml:"eal"`
	}
	file.EAL = cfg
	md, err := toml.DecodeFile(path, &file)
	if err != nil {
		return fmt.Errorf("pool_gen: %s: %w", path, err)
	}
	for _, k := range md.Undecoded() {
		if len(k) > 0 && k[0] == "eal" {
			return fmt.Errorf("pool_gen: %s: unknown key %s", path, k)
		}
	}
	return nil
}

func parseMAC(s string) (wire.MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return wire.MAC{}, fmt.Errorf("pool_gen: %q is not an Ethernet address", s)
	}
	return wire.MAC(hw), nil
}

func parseKey(name, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	k, err := hex.DecodeString(s)
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("pool_gen: --%s must be 64 hex digits (a 32-byte hop key)", name)
	}
	return k, nil
}

// defaultPrefix is the EAL file prefix of the pool_gen process pid: its
// own, so that several generators can run at once.
func defaultPrefix(pid int) string { return "pool_gen_" + strconv.Itoa(pid) }

// sweepStale removes the EAL runtime directories of pool_gen processes
// that died without closing the EAL (killed, or by SIGPIPE writing to a
// closed pipe): with a prefix per pid, nothing else ever reuses them.
func sweepStale(log zerolog.Logger) {
	dirs, _ := filepath.Glob("/var/run/dpdk/" + "pool_gen_*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "pool_gen_"))
		if err != nil || pid == os.Getpid() || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			log.Warn().Err(err).Str("dir", d).Msg("removing a dead pool_gen's runtime directory")
		}
	}
}

// run is main without the exit: parse, start the EAL, generate, report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := logging.New(logging.Config{Level: o.logLevel, Format: "auto"}, stderr)
	log = logging.For(log, "pool_gen")
	cores, err := dataplane.ParseCoreList(o.eal.Cores)
	if err != nil {
		fmt.Fprintln(stderr, "pool_gen:", err)
		return 2
	}
	o.gen.WorkCore = cores[0]
	if len(cores) > 1 {
		o.gen.WorkCore = cores[1]
	}
	if o.eal.FilePrefix == defaultPrefix(os.Getpid()) {
		sweepStale(log)
	}
	devices := []string{o.gen.TxDevice}
	if o.gen.RxDevice != o.gen.TxDevice {
		devices = append(devices, o.gen.RxDevice)
	}
	e, err := dpdk.Init(o.eal, devices, logging.For(log, "dpdk"))
	if err != nil {
		fmt.Fprintln(stderr, "pool_gen:", err)
		return 1
	}
	defer func() {
		if err := e.Close(); err != nil {
			log.Error().Err(err).Msg("closing the EAL")
		}
	}()
	defer dpdk.TuneRuntime(len(cores))()
	if err := dpdk.PinThreads(cores[:1]); err != nil {
		log.Warn().Err(err).Msg("could not keep the runtime's threads on the main core")
	}
	res, err := generate(ctx, e, o.gen, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	report(stdout, &o.gen, res, o.rows)
	return 0
}

// report prints the summary line and the table.
func report(w io.Writer, c *genConfig, r *result, rows int) {
	secs := r.Elapsed.Seconds()
	if secs <= 0 {
		secs = 1e-9
	}
	fmt.Fprintf(w, "tx_pps=%.0f rx_pps=%.0f lost=%d\n", float64(r.Tx)/secs, float64(r.RxOurs)/secs, r.LostFrames())
	rate := "flat out"
	if c.Rate > 0 {
		rate = fmt.Sprintf("%.0f fps", c.Rate)
	}
	fmt.Fprintf(w, "run: %s -> %s (%s -> %s), %d B, %d sessions, %s, mode %s, burst %d, hop MAC %v, %.2f s\n",
		c.TxDevice, c.RxDevice, r.TxDriver, r.RxDriver, c.Spec.Size, c.Spec.Sessions, rate, c.Mode, c.Burst, c.Spec.Key != nil, r.Elapsed.Seconds())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, v uint64, what string) { fmt.Fprintf(tw, "%s\t%d\t%s\n", name, v, what) }
	row("tx", r.Tx, "frames the TX PMD accepted")
	row("tx_refused", r.TxRefused, "frames it refused (TX ring full), freed")
	row("tx_pool_empty", r.AllocFail, "bursts skipped for want of mbufs")
	row("rx", r.Rx, "frames received")
	row("rx_pool", r.RxOurs, "generated POOL frames of a known session")
	row("rx_other", r.Other, "any other frame")
	if c.RxKey != nil {
		row("rx_bad_mac", r.BadMAC, "generated frames failing --rx-key")
	}
	row("port_tx", r.TxStats.TxPackets, "TX port: frames sent")
	row("port_tx_errors", r.TxStats.TxErrors, "TX port: send errors")
	row("port_rx", r.RxStats.RxPackets, "RX port: frames received")
	row("port_rx_missed", r.RxStats.RxMissed, "RX port: dropped, RX queue full")
	row("port_rx_nombuf", r.RxStats.RxNoMbuf, "RX port: dropped, RX pool empty")
	tw.Flush()
	// Per session: the worst first (most queued frames not seen again),
	// and how many sessions got nothing back.
	idx := make([]int, len(r.Queued))
	silent := 0
	for i := range idx {
		idx[i] = i
		if r.Queued[i] > 0 && r.Received[i] == 0 {
			silent++
		}
	}
	lost := func(i int) int64 { return int64(r.Queued[i]) - int64(r.Received[i]) }
	sort.SliceStable(idx, func(a, b int) bool { return lost(idx[a]) > lost(idx[b]) })
	fmt.Fprintf(w, "sessions with frames queued and none back: %d of %d\n", silent, len(idx))
	// queued counts frames handed to the PMD, refused ones included: the
	// binding frees a refused burst's tail without saying whose frames
	// they were, so the column is "not back", and the line above it says
	// how much of it the TX ring refused, which lost= leaves out.
	if r.TxRefused > 0 {
		fmt.Fprintf(w, "not back includes the %d frames the TX ring refused (tx_refused), spread over the sessions; lost= counts only frames sent\n", r.TxRefused)
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "session\thop session id\tqueued\treceived\tnot back\t")
	for _, i := range idx[:min(rows, len(idx))] {
		id := traffic.HopSession(i)
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t\n", i, id, r.Queued[i], r.Received[i], lost(i))
	}
	tw.Flush()
}
