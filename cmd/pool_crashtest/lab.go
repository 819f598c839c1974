package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/internal/netns"
	"github.com/poolrelay/poolrelay/internal/syncbuf"
)

// options configure a run.
type options struct {
	bin      string
	kills    int
	scenario string
	seed     int64
	keep     bool
	timeout  time.Duration
	// log, when set, receives the processes' output (tests).
	log io.Writer
}

// relay is one relay of the lab.
type relay struct {
	name   string
	ports  [2]string
	addrs  [2]string
	dir    string // data directory
	config string
	socket string
	id     string // peer id, hex
	addr   string // POOL address
	ns     *netns.NS
	proc   *proc
}

// lab is the running topology.
type lab struct {
	o        options
	relayBin string
	nodeBin  string
	work     string
	env      *netns.Env
	sup      *supervisor
	r1, r2   *relay
	nsA, nsB *netns.NS
	keyA     string
	keyB     string
	addrB    string
	a, b     *proc
	out      io.Writer
}

// The lab's addressing: subnet 1 joins A and r1, 2 the relays, 3 r2 and B.
var (
	aAddr = netip.MustParsePrefix("10.78.1.1/24")
	bAddr = netip.MustParsePrefix("10.78.3.2/24")
)

// rate and size of A's traffic: 2000 frames/s of 1000 bytes make r1 owe r2
// past the early-settlement point (half of payment_threshold below) about
// every half second, so cheques flow all the time.
const (
	frameRate = 2000
	frameSize = 1000
)

// newLab builds the topology and starts the relays; r1 enrolls with r2 (the
// one operator action of the run). dataDir2, if set, is r2's data directory.
func newLab(ctx context.Context, o options, out io.Writer, dataDir2 string) (l *lab, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("root is needed: the crash test makes network namespaces and runs DPDK")
	}
	l = &lab{o: o, out: out, sup: &supervisor{}}
	if l.relayBin, err = filepath.Abs(filepath.Join(o.bin, "pool_relay")); err != nil {
		return nil, err
	}
	l.nodeBin = filepath.Join(filepath.Dir(l.relayBin), "pool_node")
	for _, b := range []string{l.relayBin, l.nodeBin} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("%w (run make build first, or pass --bin)", err)
		}
	}
	logw := o.log
	if logw == nil {
		logw = io.Discard
	}
	if err := netns.RemoveStale("ct"); err != nil {
		fmt.Fprintf(out, "warning: removing a killed run's leftovers: %v\n", err)
	}
	l.env = netns.New(netns.Prefix("ct"), zerolog.New(logw))
	defer func() {
		if err != nil {
			l.close()
			l = nil
		}
	}()
	if l.work, err = os.MkdirTemp("", "pool_crashtest-"); err != nil {
		return l, err
	}
	if o.keep {
		fmt.Fprintf(out, "work directory: %s\n", l.work)
	}
	l.r1 = &relay{name: "r1", ports: [2]string{"r1p0", "r1p1"}, addrs: [2]string{"10.78.1.2/24", "10.78.2.1/24"}}
	l.r2 = &relay{name: "r2", ports: [2]string{"r2p0", "r2p1"}, addrs: [2]string{"10.78.2.2/24", "10.78.3.1/24"}}
	if l.nsA, err = newNS(l.env, "a"); err != nil {
		return l, err
	}
	if l.nsB, err = newNS(l.env, "b"); err != nil {
		return l, err
	}
	for _, r := range []*relay{l.r1, l.r2} {
		if r.ns, err = newNS(l.env, r.name); err != nil {
			return l, err
		}
	}
	links := []struct {
		a, b   netns.End
		aAddrs []netip.Prefix
		bAddrs []netip.Prefix
	}{
		{a: netns.End{Name: "a0", NS: l.nsA}, b: netns.End{Name: "r1p0", NS: l.r1.ns}, aAddrs: []netip.Prefix{aAddr}},
		{a: netns.End{Name: "r1p1", NS: l.r1.ns}, b: netns.End{Name: "r2p0", NS: l.r2.ns}},
		{a: netns.End{Name: "r2p1", NS: l.r2.ns}, b: netns.End{Name: "b0", NS: l.nsB}, bAddrs: []netip.Prefix{bAddr}},
	}
	for _, lk := range links {
		an, bn, err := l.env.Veth(lk.a, lk.b)
		if err != nil {
			return l, err
		}
		if err := lk.a.NS.Configure(an, netns.Link{Addrs: lk.aAddrs}); err != nil {
			return l, err
		}
		if err := lk.b.NS.Configure(bn, netns.Link{Addrs: lk.bAddrs}); err != nil {
			return l, err
		}
	}
	for i, r := range []*relay{l.r1, l.r2} {
		r.dir = filepath.Join(l.work, r.name)
		if i == 1 && dataDir2 != "" {
			r.dir = dataDir2
		}
		if err := os.MkdirAll(r.dir, 0o700); err != nil {
			return l, err
		}
		r.socket = filepath.Join(l.work, r.name+".sock")
		r.config = filepath.Join(l.work, r.name+".toml")
		dev0 := fmt.Sprintf("net_af_packet%d,iface=%s,qpairs=1", 2*i, l.env.Name(r.ports[0]))
		dev1 := fmt.Sprintf("net_af_packet%d,iface=%s,qpairs=1", 2*i+1, l.env.Name(r.ports[1]))
		text := relayConfig(r, dev0, dev1, fmt.Sprintf("%s_%s", strings.TrimSuffix(l.env.Prefix(), "-"), r.name))
		if err := os.WriteFile(r.config, []byte(text), 0o600); err != nil {
			return l, err
		}
		if err := l.startRelay(ctx, r); err != nil {
			return l, err
		}
		idJSON, err := cli(ctx, l.relayBin, "identity", "--key", filepath.Join(r.dir, "identity.key"), "--json")
		if err != nil {
			return l, err
		}
		var info struct{ Identity, Address string }
		if err := json.Unmarshal([]byte(idJSON), &info); err != nil {
			return l, fmt.Errorf("identity of %s: %w", r.name, err)
		}
		r.id, r.addr = info.Identity, info.Address
	}
	target := l.r2.addr + "@" + strings.TrimSuffix(l.r2.addrs[0], "/24") + ":9254"
	fmt.Fprintf(out, "==> r1 (peer %.8s) enrolls with r2 (peer %.8s) at %s: the run's only enroll\n", l.r1.id, l.r2.id, target)
	if err := retry(ctx, 20*time.Second, func() error {
		_, err := cli(ctx, l.relayBin, "enroll", "--socket", l.r1.socket, target)
		return err
	}); err != nil {
		return l, fmt.Errorf("r1 enroll r2: %w\n%s", err, l.r1.proc.tail())
	}
	l.keyA, l.keyB = filepath.Join(l.work, "a.key"), filepath.Join(l.work, "b.key")
	for _, k := range []string{l.keyA, l.keyB} {
		if _, err := cli(ctx, l.relayBin, "keygen", "--out", k); err != nil {
			return l, err
		}
	}
	idB, err := cli(ctx, l.relayBin, "identity", "--key", l.keyB, "--node", "--json")
	if err != nil {
		return l, err
	}
	var infoB struct{ Address string }
	if err := json.Unmarshal([]byte(idB), &infoB); err != nil {
		return l, err
	}
	l.addrB = infoB.Address
	return l, l.startTraffic(ctx)
}

// startRelay starts r's daemon and waits until its socket answers.
func (l *lab) startRelay(ctx context.Context, r *relay) error {
	logw := l.o.log
	if logw == nil {
		logw = io.Discard
	}
	p, err := l.sup.start(r.ns, filepath.Join(l.work, r.name+".log"), logw, l.relayBin, "start", "--config", r.config)
	if err != nil {
		return err
	}
	r.proc = p
	if err := waitFor(ctx, 60*time.Second, p, func() error {
		_, err := cli(ctx, l.relayBin, "status", "--socket", r.socket)
		return err
	}); err != nil {
		return fmt.Errorf("relay %s did not come up: %w\n%s", r.name, err, p.tail())
	}
	return nil
}

// startTraffic (re)starts the end nodes: B enrolled with r2 as a sink, A
// enrolled with r1 sending to B through r2 without end.
func (l *lab) startTraffic(ctx context.Context) error {
	l.stopTraffic()
	logw := l.o.log
	if logw == nil {
		logw = io.Discard
	}
	var err error
	l.b, err = l.sup.start(l.nsB, filepath.Join(l.work, "b.log"), logw, l.nodeBin,
		"--relay", strings.TrimSuffix(l.r2.addrs[1], "/24")+":9254", "--relay-address", l.r2.addr, "--identity", l.keyB,
		"--listen", bAddr.Addr().String()+":9253", "--sink")
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, l.b, func() error {
		if !strings.Contains(l.b.output(), "enrolled with the relay") {
			return errors.New("not enrolled yet")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("end node B: %w\n%s", err, l.b.tail())
	}
	l.a, err = l.sup.start(l.nsA, filepath.Join(l.work, "a.log"), logw, l.nodeBin,
		"--relay", strings.TrimSuffix(l.r1.addrs[0], "/24")+":9254", "--relay-address", l.r1.addr, "--identity", l.keyA,
		"--listen", aAddr.Addr().String()+":9253", "--peer", l.addrB, "--via", l.r2.addr,
		"--count", "1000000000", "--size", strconv.Itoa(frameSize), "--rate", strconv.Itoa(frameRate), "--one-way")
	return err
}

// stopTraffic stops the end nodes, if running.
func (l *lab) stopTraffic() {
	for _, p := range []*proc{l.a, l.b} {
		if p != nil {
			p.stop(5 * time.Second)
		}
	}
	l.a, l.b = nil, nil
}

// close stops every process and removes the namespaces, the DPDK runtime
// directories and (unless --keep) the work directory.
func (l *lab) close() error {
	l.sup.stopAll(20 * time.Second)
	err := l.env.Close()
	left, _ := filepath.Glob("/var/run/dpdk/" + strings.TrimSuffix(l.env.Prefix(), "-") + "_*")
	for _, d := range left {
		os.RemoveAll(d)
	}
	if l.work != "" && !l.o.keep {
		os.RemoveAll(l.work)
	}
	return err
}

func newNS(env *netns.Env, name string) (*netns.NS, error) {
	ns, err := env.NewNS(name)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6"} {
		if err := ns.WriteSysctl(k, "1"); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// relayConfig is a relay's TOML: the demo's small thresholds (cheques every
// half second at the lab's rate), a short tick so reconnection is seen
// soon, a checkpoint every 100 ms so that a crash loses little traffic
// charge not yet in the store, and forgiveness on r1 for A.
func relayConfig(r *relay, dev0, dev1, prefix string) string {
	// End nodes pay no cheques: r1 forgives A's debt faster than A's
	// traffic makes it (about 2.5 MB/s), or A would be cut off for debt
	// within seconds. r2 forgives nothing, so r1 pays it all in cheques.
	forgive := 0
	if r.name == "r1" {
		forgive = 4_000_000
	}
	return fmt.Sprintf(`# pool_crashtest relay %[1]s
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

[control]
heartbeat_interval = "1s"
tick = "100ms"
peer_timeout = "10s"

[ledger]
payment_threshold = 2000000
disconnect_threshold = 2500000
initial_credit = 2500000
min_payment_threshold = 1000000
cheque_retry_min = "200ms"
cheque_retry_max = "1s"
checkpoint_interval = "100ms"
score_half_volume = 1048576
class_tick = "1s"
score_prior_bytes = 65536
forgive_per_second = %[9]d
`, r.name, r.dir, prefix, dev0, r.addrs[0], dev1, r.addrs[1], r.socket, forgive)
}

// cli runs a pool_relay command and returns its standard output.
func cli(ctx context.Context, bin string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("pool_relay %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// peerView is what the driver reads of pool_relay peers --json.
type peerView struct {
	ID           string `json:"id"`
	Connected    bool   `json:"connected"`
	Reconnecting bool   `json:"reconnecting"`
	Balance      int64  `json:"balance"`
	ChequesIn    uint64 `json:"cheques_in"`
	ChequesOut   uint64 `json:"cheques_out"`
}

// peer returns r's view of the peer with id.
func (l *lab) peer(ctx context.Context, r *relay, id string) (peerView, error) {
	js, err := cli(ctx, l.relayBin, "peers", "--json", "--socket", r.socket)
	if err != nil {
		return peerView{}, err
	}
	var ps []peerView
	if err := json.Unmarshal([]byte(js), &ps); err != nil {
		return peerView{}, fmt.Errorf("%s peers --json: %w", r.name, err)
	}
	for _, p := range ps {
		if p.ID == id {
			return p, nil
		}
	}
	return peerView{}, fmt.Errorf("%s has no account of %.8s", r.name, id)
}

// control returns r's control counters (stats --json).
func (l *lab) control(ctx context.Context, r *relay) (map[string]uint64, error) {
	js, err := cli(ctx, l.relayBin, "stats", "--json", "--socket", r.socket)
	if err != nil {
		return nil, err
	}
	var st struct {
		Control map[string]uint64 `json:"control"`
	}
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		return nil, fmt.Errorf("%s stats --json: %w", r.name, err)
	}
	return st.Control, nil
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
		case <-time.After(50 * time.Millisecond):
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

// supervisor owns the run's processes and stops whatever still runs when
// the run ends, however it ends.
type supervisor struct {
	mu    sync.Mutex
	procs []*proc
}

// proc is a process in a namespace whose output is kept.
type proc struct {
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	werr error
}

func (s *supervisor) start(ns *netns.NS, logFile string, log io.Writer, bin string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p := &proc{out: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = ns.Command(context.Background(), bin, args...)
	w := io.MultiWriter(f, p.out, log)
	p.cmd.Stdout, p.cmd.Stderr = w, w
	// Own process group; SIGKILL from the kernel if the driver dies, so no
	// relay outlives it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
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
		return nil
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(grace):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("did not stop within %v", grace)
	}
}

// kill sends SIGKILL to the process (only it: the relay) and waits for it.
func (p *proc) kill() {
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *proc) exitErr() error {
	var ee *exec.ExitError
	if errors.As(p.werr, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
		return nil
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

func (p *proc) tail() string {
	lines := strings.Split(strings.TrimRight(p.out.String(), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
