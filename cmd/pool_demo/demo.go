package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/internal/netns"
	"github.com/poolrelay/poolrelay/internal/syncbuf"
)

// relaySpec is one relay of the demo's line.
type relaySpec struct {
	name   string
	ports  [2]string // veth short names, towards A and towards B
	addrs  [2]string // its addresses on them, CIDR
	config string    // written config file
	socket string
	key    string
	addr   string // POOL address, once started
	id     string // peer id (Ed25519 identity, hex), once started
	ns     *netns.NS
	proc   *proc
}

// The line's addressing: subnet i joins hop i and i+1.
var (
	aAddr = netip.MustParsePrefix("10.77.1.1/24")
	bAddr = netip.MustParsePrefix("10.77.4.2/24")
)

func run(ctx context.Context, o options, out io.Writer) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("root is needed: the demo makes network namespaces and runs DPDK")
	}
	relayBin, err := filepath.Abs(filepath.Join(o.bin, "pool_relay"))
	if err != nil {
		return err
	}
	nodeBin := filepath.Join(filepath.Dir(relayBin), "pool_node")
	for _, b := range []string{relayBin, nodeBin} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%w (run make build first, or pass --bin)", err)
		}
	}
	logw := o.log
	if logw == nil {
		logw = io.Discard
	}
	log := zerolog.New(logw)
	if err := netns.RemoveStale("demo"); err != nil {
		fmt.Fprintf(out, "warning: removing a killed demo's leftovers: %v\n", err)
	}
	env := netns.New(netns.Prefix("demo"), log)
	defer func() {
		if cerr := env.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("cleanup: %w", cerr)
		}
	}()
	work, err := os.MkdirTemp("", "pool_demo-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintf(out, "work directory: %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	sup := &supervisor{}
	defer sup.stopAll(10 * time.Second)

	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }

	// Topology.
	step("network namespaces and veth pairs (prefix %s)", env.Prefix())
	relays := []*relaySpec{
		{name: "r1", ports: [2]string{"r1p0", "r1p1"}, addrs: [2]string{"10.77.1.2/24", "10.77.2.1/24"}},
		{name: "r2", ports: [2]string{"r2p0", "r2p1"}, addrs: [2]string{"10.77.2.2/24", "10.77.3.1/24"}},
		{name: "r3", ports: [2]string{"r3p0", "r3p1"}, addrs: [2]string{"10.77.3.2/24", "10.77.4.1/24"}},
	}
	nsA, err := newNS(env, "a")
	if err != nil {
		return err
	}
	nsB, err := newNS(env, "b")
	if err != nil {
		return err
	}
	for _, r := range relays {
		if r.ns, err = newNS(env, r.name); err != nil {
			return err
		}
	}
	links := []struct {
		a, b   netns.End
		aAddrs []netip.Prefix
		bAddrs []netip.Prefix
	}{
		{a: netns.End{Name: "a0", NS: nsA}, b: netns.End{Name: "r1p0", NS: relays[0].ns}, aAddrs: []netip.Prefix{aAddr}},
		{a: netns.End{Name: "r1p1", NS: relays[0].ns}, b: netns.End{Name: "r2p0", NS: relays[1].ns}},
		{a: netns.End{Name: "r2p1", NS: relays[1].ns}, b: netns.End{Name: "r3p0", NS: relays[2].ns}},
		{a: netns.End{Name: "r3p1", NS: relays[2].ns}, b: netns.End{Name: "b0", NS: nsB}, bAddrs: []netip.Prefix{bAddr}},
	}
	// The veths keep the kernel's checksum offloads on, as a lab set up by
	// hand has them: the end nodes' UDP checksums reach r1 and r3 left to
	// offload, and the relays complete them (checksum_completed in stats).
	for _, l := range links {
		an, bn, err := env.Veth(l.a, l.b)
		if err != nil {
			return err
		}
		if err := l.a.NS.Configure(an, netns.Link{Addrs: l.aAddrs, ChecksumOffload: true}); err != nil {
			return err
		}
		if err := l.b.NS.Configure(bn, netns.Link{Addrs: l.bAddrs, ChecksumOffload: true}); err != nil {
			return err
		}
	}

	// Relays.
	for i, r := range relays {
		dir := filepath.Join(work, r.name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		r.socket = filepath.Join(work, r.name+".sock")
		r.config = filepath.Join(work, r.name+".toml")
		r.key = filepath.Join(dir, "identity.key")
		dev0, dev1 := device(o.vdev, 2*i, env.Name(r.ports[0])), device(o.vdev, 2*i+1, env.Name(r.ports[1]))
		text := relayConfig(r, dir, dev0, dev1, fmt.Sprintf("%s_%s", strings.TrimSuffix(env.Prefix(), "-"), r.name))
		if err := os.WriteFile(r.config, []byte(text), 0o600); err != nil {
			return err
		}
		step("starting relay %s (DPDK net_%s on %s and %s, --no-huge)", r.name, o.vdev, env.Name(r.ports[0]), env.Name(r.ports[1]))
		r.proc, err = sup.start(ctx, r.ns, filepath.Join(work, r.name+".log"), logw, relayBin, "start", "--config", r.config)
		if err != nil {
			return err
		}
	}
	for _, r := range relays {
		if err := waitFor(ctx, 60*time.Second, r.proc, func() error {
			_, err := cli(ctx, relayBin, "status", "--socket", r.socket)
			return err
		}); err != nil {
			return fmt.Errorf("relay %s did not come up: %w\n%s", r.name, err, r.proc.tail())
		}
		id, err := cli(ctx, relayBin, "identity", "--key", r.key, "--json")
		if err != nil {
			return err
		}
		var info struct{ Identity, Address string }
		if err := json.Unmarshal([]byte(id), &info); err != nil {
			return fmt.Errorf("identity of %s: %w", r.name, err)
		}
		r.addr, r.id = info.Address, info.Identity
		// The peer id first, as the PEER columns of the tables print it
		// (its first 8 hex digits); the POOL address carries a hash of
		// the key instead, which no table shows.
		fmt.Fprintf(out, "    %s is peer %s, POOL address %s\n", r.name, info.Identity, r.addr)
	}

	// Relays enroll with their neighbour towards B, over the data plane.
	for i := 0; i+1 < len(relays); i++ {
		r, next := relays[i], relays[i+1]
		target := strings.TrimSuffix(next.addrs[0], "/24") + ":9254"
		step("%s enrolls with %s at %s", r.name, next.name, target)
		if err := retry(ctx, 20*time.Second, func() error {
			_, err := cli(ctx, relayBin, "enroll", "--socket", r.socket, next.addr+"@"+target)
			return err
		}); err != nil {
			return fmt.Errorf("%s enroll %s: %w\n%s", r.name, next.name, err, r.proc.tail())
		}
	}

	// End nodes.
	keyA, keyB := filepath.Join(work, "a.key"), filepath.Join(work, "b.key")
	for _, k := range []string{keyA, keyB} {
		if _, err := cli(ctx, relayBin, "keygen", "--out", k); err != nil {
			return err
		}
	}
	idB, err := cli(ctx, relayBin, "identity", "--key", keyB, "--node", "--json")
	if err != nil {
		return err
	}
	var infoB struct{ Identity, Address string }
	if err := json.Unmarshal([]byte(idB), &infoB); err != nil {
		return err
	}
	step("end node B (peer %s, %s) enrolls with r3 and waits for traffic", infoB.Identity, infoB.Address)
	procB, err := sup.start(ctx, nsB, filepath.Join(work, "b.log"), logw, nodeBin,
		"--relay", "10.77.4.1:9254", "--relay-address", relays[2].addr, "--identity", keyB,
		"--listen", bAddr.Addr().String()+":9253", "--sink")
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, procB, func() error {
		if !strings.Contains(procB.output(), "enrolled with the relay") {
			return errors.New("not enrolled yet")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("end node B: %w\n%s", err, procB.tail())
	}
	step("end node A enrolls with r1, opens a route through r1, r2, r3 to B and sends %d frames of %d bytes", o.frames, o.size)
	idA, err := cli(ctx, relayBin, "identity", "--key", keyA, "--node", "--json")
	if err != nil {
		return err
	}
	var infoA struct{ Identity string }
	if err := json.Unmarshal([]byte(idA), &infoA); err != nil {
		return err
	}
	fmt.Fprintf(out, "    A is peer %s\n", infoA.Identity)
	var outA bytes.Buffer
	cmdA := nsA.Command(ctx, nodeBin,
		"--relay", "10.77.1.2:9254", "--relay-address", relays[0].addr, "--identity", keyA,
		"--listen", aAddr.Addr().String()+":9253", "--peer", infoB.Address,
		"--via", relays[1].addr+","+relays[2].addr,
		"--count", strconv.Itoa(o.frames), "--size", strconv.Itoa(o.size), "--rate", strconv.Itoa(o.rate), "--one-way")
	cmdA.Stdout = &outA
	cmdA.Stderr = &prefixWriter{w: logw, prefix: "a: "}
	cmdA.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmdA.Start(); err != nil {
		return fmt.Errorf("end node A: %w", err)
	}
	doneA := make(chan error, 1)
	go func() { doneA <- cmdA.Wait() }()
	// What an operator sees on r1 while A's frames flow: the routes by
	// rate and one snapshot of pool_relay top, printed once A is done.
	live := make(chan string, 1)
	go func() { live <- whileSending(ctx, relayBin, relays[0].socket, o) }()

	// While A's route is up, forge frames on it: A's route id, a MAC made
	// up. They must reach no one and be charged to no one.
	spoofed, spoofErr := spoof(ctx, relayBin, relays[0].socket, infoA.Identity, nsA, doneA)
	if err := <-doneA; err != nil {
		return fmt.Errorf("end node A: %w\n%s", err, outA.String())
	}
	fmt.Fprintf(out, "    A: %s", outA.String())
	if spoofErr != nil {
		return spoofErr
	}
	step("r1 while A was sending: pool_relay routes --sort rate, top --once")
	fmt.Fprint(out, indent(<-live))
	step("%d frames forged with A's route id and a bad MAC sent to r1 from A's subnet", spoofed)

	// Give the relays' control cores a few ticks: counters to the ledgers,
	// heartbeats exchanged and cross-checked, cheques sent and acknowledged.
	step("waiting for heartbeats and settlement")
	settled := waitFor(ctx, 30*time.Second, relays[0].proc, func() error {
		for _, r := range relays[:2] {
			s, err := cli(ctx, relayBin, "cheques", "--socket", r.socket, "--json")
			if err != nil {
				return err
			}
			if !strings.Contains(s, `"direction":"issued"`) && !strings.Contains(s, `"direction": "issued"`) {
				return fmt.Errorf("%s has issued no cheque yet", r.name)
			}
		}
		return nil
	})
	// Two more heartbeat rounds, so each relay's own score (what its peers'
	// signed counters say of it) covers the whole run.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2500 * time.Millisecond):
	}

	// The relays' own counts: forged frames dropped as bad_mac at r1, and
	// every heartbeat cross-check agreeing.
	var stats [3]relayStats
	for i, r := range relays {
		js, err := cli(ctx, relayBin, "stats", "--json", "--socket", r.socket)
		if err != nil {
			return err
		}
		if stats[i], err = parseStats(js); err != nil {
			return fmt.Errorf("%s stats: %w", r.name, err)
		}
	}

	for _, r := range relays {
		step("%s: pool_relay status, peers, routes, cheques", r.name)
		for _, args := range [][]string{{"status"}, {"peers"}, {"routes"}, {"cheques"}} {
			s, err := cli(ctx, relayBin, append(args, "--socket", r.socket)...)
			if err != nil {
				fmt.Fprintf(out, "    %s: %v\n", strings.Join(args, " "), err)
				continue
			}
			fmt.Fprint(out, indent(s))
		}
		if o.jsonDir != "" {
			if err := saveJSON(ctx, relayBin, r, o.jsonDir); err != nil {
				return err
			}
		}
	}
	step("stopping B, then the relays (r1 with pool_relay stop, watched from r2), and verifying their journals")
	if err := procB.stop(10 * time.Second); err != nil {
		fmt.Fprintf(out, "warning: end node B: %v\n", err)
	}
	fmt.Fprintf(out, "    B: %s\n", lastLine(procB.output(), "received="))
	seen, err := stopSeen(ctx, relayBin, relays[0], relays[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "    r2 saw r1 leave %d ms after pool_relay stop returned (stop_seen_ms=%d)\n", seen.Milliseconds(), seen.Milliseconds())
	for _, r := range relays {
		if err := r.proc.stop(20 * time.Second); err != nil {
			return fmt.Errorf("%s: %w\n%s", r.name, err, r.proc.tail())
		}
	}
	var failed []string
	for _, r := range relays {
		s, err := cli(ctx, relayBin, "journal", "verify", "--config", r.config)
		fmt.Fprintf(out, "    %s:\n%s", r.name, indent(indent(s)))
		if err != nil {
			failed = append(failed, r.name)
		}
	}
	received := lastNumber(procB.output(), "received=")
	sent := lastNumber(outA.String(), "sent=")
	var accepted, mismatched uint64
	for i, st := range stats {
		accepted += st.Control["heartbeats_accepted"]
		mismatched += st.Control["heartbeat_mismatch"]
		fmt.Fprintf(out, "    %s: heartbeats accepted %d, mismatched %d; checksums completed %d; drops %v\n", relays[i].name,
			st.Control["heartbeats_accepted"], st.Control["heartbeat_mismatch"], st.Events["checksum_completed"], st.drops())
	}
	forgedDropped := stats[0].drop("bad_mac")
	fmt.Fprintf(out, "demo: sent=%d received=%d forged=%d forged_dropped=%d heartbeats=%d mismatches=%d cheques=%v journals_ok=%v\n",
		sent, received, spoofed, forgedDropped, accepted, mismatched, settled == nil, len(failed) == 0)
	switch {
	case forgedDropped != uint64(spoofed):
		return fmt.Errorf("r1 dropped %d frames as bad_mac, %d were forged", forgedDropped, spoofed)
	case received != sent:
		return fmt.Errorf("A sent %d frames, B received %d", sent, received)
	case accepted == 0 || mismatched != 0:
		return fmt.Errorf("heartbeat cross-checks: %d accepted, %d mismatched", accepted, mismatched)
	case len(failed) > 0:
		return fmt.Errorf("journal verification failed on %v", failed)
	case received <= 0:
		return errors.New("no frame reached B")
	case settled != nil:
		return fmt.Errorf("no settlement: %w", settled)
	}
	return nil
}

// stopSeen runs pool_relay stop on r and measures how long after it
// returned watcher's peers table shows r down: the CLOSE r sends on the way
// out makes it at once, where a lost CLOSE would take peer_timeout.
func stopSeen(ctx context.Context, relayBin string, r, watcher *relaySpec) (time.Duration, error) {
	if _, err := cli(ctx, relayBin, "stop", "--socket", r.socket); err != nil {
		return 0, err
	}
	start := time.Now()
	for time.Since(start) < 10*time.Second {
		js, err := cli(ctx, relayBin, "peers", "--json", "--socket", watcher.socket)
		if err != nil {
			return 0, err
		}
		var ps []struct {
			ID        string `json:"id"`
			Connected bool   `json:"connected"`
		}
		if err := json.Unmarshal([]byte(js), &ps); err != nil {
			return 0, fmt.Errorf("%s peers --json: %w", watcher.name, err)
		}
		for _, p := range ps {
			if p.ID == r.id && !p.Connected {
				return time.Since(start), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	st, _ := cli(ctx, relayBin, "stats", "--socket", watcher.socket)
	return 0, fmt.Errorf("%s still shows %s up 10 s after pool_relay stop; its stats:\n%s", watcher.name, r.name, st)
}

// saveJSON writes the relay's pool_relay status --json and peers --json
// output, exactly as printed, to dir/NAME.status.json and dir/NAME.peers.json.
func saveJSON(ctx context.Context, relayBin string, r *relaySpec, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--json-dir: %w", err)
	}
	for _, what := range []string{"status", "peers"} {
		s, err := cli(ctx, relayBin, what, "--json", "--socket", r.socket)
		if err != nil {
			return fmt.Errorf("%s %s --json: %w", r.name, what, err)
		}
		if err := os.WriteFile(filepath.Join(dir, r.name+"."+what+".json"), []byte(s), 0o644); err != nil {
			return fmt.Errorf("--json-dir: %w", err)
		}
	}
	return nil
}

func newNS(env *netns.Env, name string) (*netns.NS, error) {
	ns, err := env.NewNS(name)
	if err != nil {
		return nil, err
	}
	// IPv6 off: its router solicitations and reports would only add noise
	// to the relays' drop counters.
	for _, k := range []string{"net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6"} {
		if err := ns.WriteSysctl(k, "1"); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// relayConfig is the TOML of one demo relay: small thresholds so that the
// demo's traffic reaches early settlement, frequent heartbeats and class
// ticks so that the results show within seconds, and an idle back-off so
// three relays polling on one core leave it to the others when idle.
func relayConfig(r *relaySpec, dir, dev0, dev1, prefix string) string {
	return fmt.Sprintf(`# pool_demo relay %[1]s
[log]
level = "info"
format = "json"

[node]
data_dir = %[2]q
network_id = 1

[eal]
cores = "0-1"
no_huge = true
memory_mb = 256
file_prefix = %[3]q

[dataplane]
mbufs = 4095
mbuf_cache = 128
max_routes = 4096
idle_sleep = "200us"

[[port]]
name = "p0"
device = %[4]q
addresses = [%[5]q]

[[port]]
name = "p1"
device = %[6]q
addresses = [%[7]q]

[ctl]
socket = %[8]q
metrics_listen = "127.0.0.1:9464"

[control]
heartbeat_interval = "1s"
tick = "500ms"

[ledger]
payment_threshold = 2000000
disconnect_threshold = 2500000
initial_credit = 2500000
min_payment_threshold = 1000000
cheque_retry_min = "200ms"
cheque_retry_max = "2s"
score_half_volume = 4194304
class_tick = "1s"
score_prior_bytes = 65536
`, r.name, dir, prefix, dev0, r.addrs[0], dev1, r.addrs[1], r.socket)
}

// device is the DPDK device string of a relay port on veth iface: AF_PACKET
// (a packet socket, works on any interface) or AF_XDP (an XDP socket with
// the PMD's program attached in native mode on the veth; one queue).
func device(vdev string, id int, iface string) string {
	if vdev == "af_xdp" {
		return fmt.Sprintf("net_af_xdp%d,iface=%s,start_queue=0,queue_count=1", id, iface)
	}
	return fmt.Sprintf("net_af_packet%d,iface=%s,qpairs=1", id, iface)
}

// whileSending waits until A has sent for a while (half its frames at its
// rate, at least 1.5 s: the relay's rates are one-second samples), then
// returns r1's routes by rate and a snapshot of top.
func whileSending(ctx context.Context, relayBin, socket string, o options) string {
	wait := max(time.Duration(o.frames/2)*time.Second/time.Duration(max(o.rate, 1)), 1500*time.Millisecond)
	select {
	case <-ctx.Done():
		return ctx.Err().Error() + "\n"
	case <-time.After(wait):
	}
	var b strings.Builder
	for _, args := range [][]string{{"routes", "--sort", "rate"}, {"top", "--once"}} {
		s, err := cli(ctx, relayBin, append(args, "--socket", socket)...)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", strings.Join(args, " "), err)
			continue
		}
		b.WriteString(s)
		b.WriteString("\n")
	}
	return b.String()
}

// cli runs a pool_relay command and returns its standard output.
func cli(ctx context.Context, bin string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("pool_relay %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// retry calls fn until it succeeds or d passes.
func retry(ctx context.Context, d time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitFor is retry that gives up at once when p exits.
func waitFor(ctx context.Context, d time.Duration, p *proc, fn func() error) error {
	return retry(ctx, d, func() error {
		if p.exited() {
			return fmt.Errorf("process exited: %v", p.err())
		}
		return fn()
	})
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

func lastLine(s, marker string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], marker) {
			return strings.TrimSpace(lines[i])
		}
	}
	return "(no " + strings.TrimSuffix(marker, "=") + " line)"
}

var numberAfter = map[string]*regexp.Regexp{}

func lastNumber(s, marker string) int {
	re, ok := numberAfter[marker]
	if !ok {
		re = regexp.MustCompile(regexp.QuoteMeta(marker) + `(\d+)`)
		numberAfter[marker] = re
	}
	m := re.FindAllStringSubmatch(s, -1)
	if len(m) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// supervisor owns the demo's processes and stops whatever is still running
// when the demo ends, however it ends.
type supervisor struct {
	mu    sync.Mutex
	procs []*proc
}

// proc is a process in a namespace whose output is kept.
type proc struct {
	cmd  *exec.Cmd
	name string
	out  *syncbuf.Buffer
	done chan struct{}
	werr error
}

func (s *supervisor) start(ctx context.Context, ns *netns.NS, logFile string, log io.Writer, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	p := &proc{name: filepath.Base(logFile), out: &syncbuf.Buffer{}, done: make(chan struct{})}
	// Not CommandContext: the demo stops its processes with SIGTERM and a
	// grace period, not the SIGKILL a cancelled context sends.
	p.cmd = ns.Command(context.Background(), bin, args...)
	w := io.MultiWriter(f, p.out, &prefixWriter{w: log, prefix: strings.TrimSuffix(p.name, ".log") + ": "})
	p.cmd.Stdout, p.cmd.Stderr = w, w
	// Own process group, so the stop below reaches the process and its
	// children; SIGTERM from the kernel if the demo itself dies (SIGKILL),
	// so no relay outlives it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() {
		p.werr = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

func (s *supervisor) stopAll(grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop(grace)
	}
}

// stop sends SIGTERM to the process group and SIGKILL after grace.
func (p *proc) stop(grace time.Duration) error {
	if p.exited() {
		return p.exitErr()
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(grace):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within %v after SIGTERM; killed", p.name, grace)
	}
}

func (p *proc) exitErr() error {
	var ee *exec.ExitError
	if errors.As(p.werr, &ee) {
		return fmt.Errorf("%s exited: %v", p.name, p.werr)
	}
	return p.werr
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) err() error     { return p.werr }
func (p *proc) output() string { return p.out.String() }

// tail returns the last lines of the output, for error messages.
func (p *proc) tail() string {
	lines := strings.Split(strings.TrimRight(p.out.String(), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return p.name + ":\n" + indent(strings.Join(lines, "\n"))
}

// prefixWriter writes each line with a prefix (which process said it).
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	part   []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.part = append(p.part, b...)
	for {
		i := bytes.IndexByte(p.part, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.part[:i])
		p.part = p.part[i+1:]
	}
	return len(b), nil
}

// spoof waits for A's route at r1 and sends forged frames on it from A's
// namespace (another UDP port than A's): a well-formed outer POOL DATA
// header with A's route id, a fresh seq, a payload, and a MAC field that no
// key produced. It returns how many it sent.
func spoof(ctx context.Context, relayBin, socket, identityA string, nsA *netns.NS, doneA <-chan error) (int, error) {
	var session []byte
	deadline := time.Now().Add(30 * time.Second)
	for session == nil {
		js, err := cli(ctx, relayBin, "routes", "--json", "--socket", socket)
		if err != nil {
			return 0, err
		}
		var routes []struct{ Session, From string }
		if err := json.Unmarshal([]byte(js), &routes); err != nil {
			return 0, fmt.Errorf("routes: %w", err)
		}
		for _, r := range routes {
			if r.From == identityA {
				if session, err = hex.DecodeString(r.Session); err != nil || len(session) != 16 {
					return 0, fmt.Errorf("routes: bad session %q", r.Session)
				}
			}
		}
		if session != nil {
			break
		}
		if time.Now().After(deadline) {
			return 0, errors.New("A's route never appeared at r1")
		}
		select {
		case err := <-doneA:
			return 0, fmt.Errorf("A ended before its route appeared at r1: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	conn, err := nsA.DialUDP(netip.AddrPortFrom(aAddr.Addr(), 0), netip.MustParseAddrPort("10.77.1.2:9254"))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	const n, payload = 20, 200
	frame := make([]byte, 80+payload)
	frame[0] = 1<<4 | 3 // version 1, DATA
	copy(frame[20:36], session)
	binary.BigEndian.PutUint16(frame[44:], payload)
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint64(frame[4:], uint64(1<<40+i)) // seq
		for j := 48; j < 64; j++ {
			frame[j] = byte(i*31 + j) // a MAC no key made
		}
		if _, err := conn.Write(frame); err != nil {
			return i, err
		}
	}
	return n, nil
}

// relayStats is what the demo reads of `pool_relay stats --json`.
type relayStats struct {
	Drops []struct {
		Reason  string
		Packets uint64
	}
	Control map[string]uint64
	Events  map[string]uint64
}

func parseStats(js string) (relayStats, error) {
	var s relayStats
	err := json.Unmarshal([]byte(js), &s)
	return s, err
}

func (s relayStats) drop(reason string) uint64 {
	for _, d := range s.Drops {
		if d.Reason == reason {
			return d.Packets
		}
	}
	return 0
}

func (s relayStats) drops() map[string]uint64 {
	m := map[string]uint64{}
	for _, d := range s.Drops {
		m[d.Reason] = d.Packets
	}
	return m
}
