// Package lab builds the network-namespace labs of pool_demo and
// pool_crashtest: relays as pool_relay processes on DPDK and end nodes as
// pool_node processes, on a line of namespaces joined by veth pairs,
//
//	[a] a0 ─ r1p0 [r1] r1p1 ─ r2p0 [r2] … rNp1 ─ b0 [b]
//
// where subnet i (10.NET.i.0/24) joins hop i and hop i+1: A is .1 on subnet
// 1, relay i is .2 on subnet i (towards A) and .1 on subnet i+1 (towards
// B), B is .2 on the last. The relays' veth ends carry no kernel address:
// their DPDK ports (net_af_packet or net_af_xdp on the veth) take the
// addresses from the relay's configuration.
//
// A Lab writes the relays' configurations (the caller's TOML), starts the
// processes and waits for their sockets, reads identities, enrolls relays
// with each other and end nodes with their relays, reads what the relays'
// CLI reports, and on Close stops every process and removes every
// namespace, DPDK runtime directory and file it made. It needs root.
package lab

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
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/internal/netns"
)

// RelayPort is the UDP port relays listen on for relays and end nodes,
// NodePort the one end nodes listen on (POOL spec v1).
const (
	RelayPort = 9254
	NodePort  = 9253
)

// Config describes a lab.
type Config struct {
	// Base names the lab's objects: namespaces and veths are named
	// netns.Prefix(Base)+name, the relays' EAL file prefixes
	// BASE<pid>_NAME. A killed run's leftovers under Base are removed
	// first.
	Base string
	// Work is the pattern of the work directory (configs, data, sockets,
	// logs, keys) under the temporary directory, as os.MkdirTemp takes it.
	Work string
	// What the lab is for, in the warning about a killed one's leftovers
	// ("demo", "run").
	What string
	// Bin is the directory holding pool_relay and pool_node.
	Bin string
	// Net is the second octet of the lab's subnets (10.Net.i.0/24).
	Net byte
	// Relays is how many relays stand between A and B (at least 1).
	Relays int
	// ChecksumOffload leaves the veths' checksum offloads on, as a lab set
	// up by hand has them (see netns.Link.ChecksumOffload).
	ChecksumOffload bool
	// Keep leaves the work directory behind (its path is printed).
	Keep bool
	// Log receives the processes' output, each line prefixed with the
	// process's name; nil discards it.
	Log io.Writer
	// DeathSignal is sent to the lab's processes if the driver dies (see
	// Supervisor.DeathSignal).
	DeathSignal syscall.Signal
	// CLITimeout bounds each pool_relay command; 0 is no bound but the
	// context's.
	CLITimeout time.Duration
	// Poll is how often Retry and WaitFor try again.
	Poll time.Duration
}

// Lab is a running lab.
type Lab struct {
	cfg      Config
	RelayBin string // pool_relay, absolute
	NodeBin  string // pool_node, absolute
	Work     string // the work directory
	Env      *netns.Env
	Sup      *Supervisor
	// Relays are r1 … rN, from A to B.
	Relays []*Relay
	// A and B are the end nodes' namespaces, AAddr and BAddr their
	// addresses (on a0 and b0).
	A, B         *netns.NS
	AAddr, BAddr netip.Prefix
}

// Relay is one relay of the lab. Start fills Proc, Identify ID and Addr.
type Relay struct {
	Name string
	// Ports are its veth ends' full names, towards A and towards B: the
	// interfaces its DPDK ports open.
	Ports [2]string
	// Addrs are its addresses on them, for its configuration.
	Addrs [2]netip.Prefix
	// Dir is its data directory (work/NAME unless the caller sets another
	// before Start), Config its configuration file, Socket its control
	// socket, FilePrefix its EAL file prefix.
	Dir, Config, Socket, FilePrefix string
	ID                              string // peer id (Ed25519 identity, hex)
	Addr                            string // POOL address
	NS                              *netns.NS
	Proc                            *Proc

	index int
}

// Key is the relay's identity key file (in its data directory).
func (r *Relay) Key() string { return filepath.Join(r.Dir, "identity.key") }

// Endpoint is the relay's POOL endpoint on its port towards A (side 0) or
// towards B (side 1): address:9254.
func (r *Relay) Endpoint(side int) string {
	return netip.AddrPortFrom(r.Addrs[side].Addr(), RelayPort).String()
}

// Devices are the DPDK device strings of the relay's two ports on vdev,
// af_packet or af_xdp (see Device).
func (r *Relay) Devices(vdev string) [2]string {
	return [2]string{Device(vdev, 2*r.index, r.Ports[0]), Device(vdev, 2*r.index+1, r.Ports[1])}
}

// Device is the DPDK device string of port id on veth iface: AF_PACKET (a
// packet socket, works on any interface) or, for vdev "af_xdp", AF_XDP (an
// XDP socket with the PMD's program attached in native mode on the veth;
// one queue).
func Device(vdev string, id int, iface string) string {
	if vdev == "af_xdp" {
		return fmt.Sprintf("net_af_xdp%d,iface=%s,start_queue=0,queue_count=1", id, iface)
	}
	return fmt.Sprintf("net_af_packet%d,iface=%s,qpairs=1", id, iface)
}

// BaseConfig is the start of r's TOML configuration, what every lab relay
// shares: JSON logs at info, its data directory, an EAL on two cores
// without hugepages under its file prefix, a small mbuf pool, its two
// ports on vdev (see Devices) with its addresses, and its control socket.
// It ends inside the [ctl] section; the caller appends the rest of that
// section, if any, and the [control] and [ledger] sections of its run. The
// first line is a comment naming who wrote it.
func (r *Relay) BaseConfig(writer, vdev string) string {
	dev := r.Devices(vdev)
	return fmt.Sprintf(`# %[1]s relay %[2]s
[log]
level = "info"
format = "json"

[node]
data_dir = %[3]q
network_id = 1

[eal]
cores = "0-1"
no_huge = true
memory_mb = 256
file_prefix = %[4]q

[dataplane]
mbufs = 4095
mbuf_cache = 128
max_routes = 4096
idle_sleep = "200us"

[[port]]
name = "p0"
device = %[5]q
addresses = [%[6]q]

[[port]]
name = "p1"
device = %[7]q
addresses = [%[8]q]

[ctl]
socket = %[9]q
`, writer, r.Name, r.Dir, r.FilePrefix, dev[0], r.Addrs[0].String(), dev[1], r.Addrs[1].String(), r.Socket)
}

// Settlement opens the [ledger] section of every lab relay: thresholds
// small enough that a lab's traffic takes a relay past the early-settlement
// point (half of payment_threshold) within seconds, so cheques flow, and a
// quick first cheque retry. The caller appends the rest of the section.
const Settlement = `[ledger]
payment_threshold = 2000000
disconnect_threshold = 2500000
initial_credit = 2500000
min_payment_threshold = 1000000
cheque_retry_min = "200ms"
`

// New builds the lab's topology: the work directory (printed to out with
// Keep), the namespaces with IPv6 off, the veth pairs and the end nodes'
// addresses. It starts no process. On error it removes what it made.
func New(cfg Config, out io.Writer) (l *Lab, err error) {
	if cfg.Relays < 1 {
		return nil, errors.New("lab: no relay")
	}
	l = &Lab{cfg: cfg, Sup: &Supervisor{Log: cfg.Log, DeathSignal: cfg.DeathSignal}}
	if l.RelayBin, err = filepath.Abs(filepath.Join(cfg.Bin, "pool_relay")); err != nil {
		return nil, err
	}
	l.NodeBin = filepath.Join(filepath.Dir(l.RelayBin), "pool_node")
	for _, b := range []string{l.RelayBin, l.NodeBin} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("%w (run make build first, or pass --bin)", err)
		}
	}
	if err := netns.RemoveStale(cfg.Base); err != nil {
		fmt.Fprintf(out, "warning: removing a killed %s's leftovers: %v\n", cfg.What, err)
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	l.Env = netns.New(netns.Prefix(cfg.Base), zerolog.New(logw))
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	if l.Work, err = os.MkdirTemp("", cfg.Work); err != nil {
		return l, err
	}
	if cfg.Keep {
		fmt.Fprintf(out, "work directory: %s\n", l.Work)
	}
	subnet := func(i int, host byte) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, cfg.Net, byte(i), host}), 24)
	}
	n := cfg.Relays
	l.AAddr, l.BAddr = subnet(1, 1), subnet(n+1, 2)
	if l.A, err = l.newNS("a"); err != nil {
		return l, err
	}
	if l.B, err = l.newNS("b"); err != nil {
		return l, err
	}
	prefix := strings.TrimSuffix(l.Env.Prefix(), "-")
	for i := range n {
		name := "r" + strconv.Itoa(i+1)
		r := &Relay{
			Name:       name,
			Ports:      [2]string{l.Env.Name(name + "p0"), l.Env.Name(name + "p1")},
			Addrs:      [2]netip.Prefix{subnet(i+1, 2), subnet(i+2, 1)},
			Dir:        filepath.Join(l.Work, name),
			Config:     filepath.Join(l.Work, name+".toml"),
			Socket:     filepath.Join(l.Work, name+".sock"),
			FilePrefix: prefix + "_" + name,
			index:      i,
		}
		if r.NS, err = l.newNS(name); err != nil {
			return l, err
		}
		l.Relays = append(l.Relays, r)
	}
	// The line's veths, A to B: a0 ─ r1p0, r1p1 ─ r2p0, …, rNp1 ─ b0.
	end := func(name string, ns *netns.NS) netns.End { return netns.End{Name: name, NS: ns} }
	left, leftAddrs := end("a0", l.A), []netip.Prefix{l.AAddr}
	for _, r := range l.Relays {
		if err := l.veth(left, leftAddrs, end(r.Name+"p0", r.NS), nil); err != nil {
			return l, err
		}
		left, leftAddrs = end(r.Name+"p1", r.NS), nil
	}
	if err := l.veth(left, leftAddrs, end("b0", l.B), []netip.Prefix{l.BAddr}); err != nil {
		return l, err
	}
	return l, nil
}

// newNS makes a namespace with IPv6 off: its router solicitations and
// reports would only add noise to the relays' drop counters.
func (l *Lab) newNS(name string) (*netns.NS, error) {
	ns, err := l.Env.NewNS(name)
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

// veth joins a and b and gives their ends the addresses.
func (l *Lab) veth(a netns.End, aAddrs []netip.Prefix, b netns.End, bAddrs []netip.Prefix) error {
	an, bn, err := l.Env.Veth(a, b)
	if err != nil {
		return err
	}
	if err := a.NS.Configure(an, netns.Link{Addrs: aAddrs, ChecksumOffload: l.cfg.ChecksumOffload}); err != nil {
		return err
	}
	return b.NS.Configure(bn, netns.Link{Addrs: bAddrs, ChecksumOffload: l.cfg.ChecksumOffload})
}

// Start writes config as r's configuration file, makes its data directory
// and starts the relay (see Restart). It does not wait for it: see WaitUp.
func (l *Lab) Start(r *Relay, config string) error {
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.WriteFile(r.Config, []byte(config), 0o600); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return l.Restart(r)
}

// Restart starts r's pool_relay on the configuration Start wrote, in r's
// namespace, its output appended to work/NAME.log.
func (l *Lab) Restart(r *Relay) error {
	p, err := l.Sup.Start(r.NS, filepath.Join(l.Work, r.Name+".log"), l.RelayBin, "start", "--config", r.Config)
	if err != nil {
		return err
	}
	r.Proc = p
	return nil
}

// WaitUp waits up to a minute for r's control socket to answer, giving up
// at once if the relay exits.
func (l *Lab) WaitUp(ctx context.Context, r *Relay) error {
	if err := l.WaitFor(ctx, 60*time.Second, r.Proc, func() error {
		_, err := l.CLI(ctx, "status", "--socket", r.Socket)
		return err
	}); err != nil {
		return fmt.Errorf("relay %s did not come up: %w\n%s", r.Name, err, r.Proc.Tail())
	}
	return nil
}

// Identify reads r's peer id and POOL address from its key file (which
// the relay writes at its first start).
func (l *Lab) Identify(ctx context.Context, r *Relay) error {
	id, err := l.identity(ctx, r.Key(), false)
	if err != nil {
		return fmt.Errorf("identity of %s: %w", r.Name, err)
	}
	r.ID, r.Addr = id.Identity, id.Address
	return nil
}

// identity is what pool_relay identity --json prints.
type identity struct{ Identity, Address string }

func (l *Lab) identity(ctx context.Context, key string, node bool) (identity, error) {
	args := []string{"identity", "--key", key, "--json"}
	if node {
		args = append(args, "--node")
	}
	js, err := l.CLI(ctx, args...)
	if err != nil {
		return identity{}, err
	}
	var id identity
	if err := json.Unmarshal([]byte(js), &id); err != nil {
		return identity{}, fmt.Errorf("lab: %s: %w", strings.Join(args, " "), err)
	}
	return id, nil
}

// Enroll has r enroll with next over the data plane (pool_relay enroll to
// next's endpoint towards A), retrying for up to 20 s while next's
// listener comes up.
func (l *Lab) Enroll(ctx context.Context, r, next *Relay) error {
	if err := l.Retry(ctx, 20*time.Second, func() error {
		_, err := l.CLI(ctx, "enroll", "--socket", r.Socket, next.Addr+"@"+next.Endpoint(0))
		return err
	}); err != nil {
		return fmt.Errorf("%s enroll %s: %w\n%s", r.Name, next.Name, err, r.Proc.Tail())
	}
	return nil
}

// Node is an end node's identity.
type Node struct {
	Key      string // key file
	Identity string // peer id, hex
	Address  string // POOL address
}

// NewNode makes end node name's key file (work/NAME.key) and reads its
// identity.
func (l *Lab) NewNode(ctx context.Context, name string) (Node, error) {
	key := filepath.Join(l.Work, name+".key")
	if _, err := l.CLI(ctx, "keygen", "--out", key); err != nil {
		return Node{}, err
	}
	id, err := l.identity(ctx, key, true)
	if err != nil {
		return Node{}, err
	}
	return Node{Key: key, Identity: id.Identity, Address: id.Address}, nil
}

// StartSink starts end node B (key b) enrolled with r, the relay next to
// it, counting what it receives, and waits up to 30 s until it has
// enrolled.
func (l *Lab) StartSink(ctx context.Context, r *Relay, b Node) (*Proc, error) {
	p, err := l.Sup.Start(l.B, filepath.Join(l.Work, "b.log"), l.NodeBin,
		"--relay", r.Endpoint(1), "--relay-address", r.Addr, "--identity", b.Key,
		"--listen", netip.AddrPortFrom(l.BAddr.Addr(), NodePort).String(), "--sink")
	if err != nil {
		return nil, err
	}
	if err := l.WaitFor(ctx, 30*time.Second, p, func() error {
		if !strings.Contains(p.Output(), "enrolled with the relay") {
			return errors.New("not enrolled yet")
		}
		return nil
	}); err != nil {
		return p, fmt.Errorf("end node B: %w\n%s", err, p.Tail())
	}
	return p, nil
}

// SenderArgs are pool_node's arguments for end node A (key a): enrolled
// with r1, a route through via to peer, count frames of size payload
// bytes at rate frames/s, one way.
func (l *Lab) SenderArgs(a Node, peer string, via []*Relay, count, size, rate int) []string {
	addrs := make([]string, len(via))
	for i, r := range via {
		addrs[i] = r.Addr
	}
	r1 := l.Relays[0]
	return []string{
		"--relay", r1.Endpoint(0), "--relay-address", r1.Addr, "--identity", a.Key,
		"--listen", netip.AddrPortFrom(l.AAddr.Addr(), NodePort).String(), "--peer", peer,
		"--via", strings.Join(addrs, ","),
		"--count", strconv.Itoa(count), "--size", strconv.Itoa(size), "--rate", strconv.Itoa(rate), "--one-way",
	}
}

// CLI runs a pool_relay command and returns its standard output.
func (l *Lab) CLI(ctx context.Context, args ...string) (string, error) {
	if l.cfg.CLITimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.cfg.CLITimeout)
		defer cancel()
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, l.RelayBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("pool_relay %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Retry calls fn every Config.Poll until it returns nil, d passes or ctx
// ends (see the package function Retry).
func (l *Lab) Retry(ctx context.Context, d time.Duration, fn func() error) error {
	return Retry(ctx, d, l.cfg.Poll, fn)
}

// WaitFor is Retry that gives up at once when p exits.
func (l *Lab) WaitFor(ctx context.Context, d time.Duration, p *Proc, fn func() error) error {
	return WaitFor(ctx, d, l.cfg.Poll, p, fn)
}

// Stats is what the lab reads of pool_relay stats --json.
type Stats struct {
	Drops []struct {
		Reason  string
		Packets uint64
	}
	Control map[string]uint64
	Events  map[string]uint64
}

// Drop is the count of frames dropped for reason.
func (s Stats) Drop(reason string) uint64 {
	for _, d := range s.Drops {
		if d.Reason == reason {
			return d.Packets
		}
	}
	return 0
}

// DropMap is every drop count by reason.
func (s Stats) DropMap() map[string]uint64 {
	m := map[string]uint64{}
	for _, d := range s.Drops {
		m[d.Reason] = d.Packets
	}
	return m
}

// Stats reads r's counters.
func (l *Lab) Stats(ctx context.Context, r *Relay) (Stats, error) {
	js, err := l.CLI(ctx, "stats", "--json", "--socket", r.Socket)
	if err != nil {
		return Stats{}, err
	}
	var s Stats
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		return Stats{}, fmt.Errorf("%s stats --json: %w", r.Name, err)
	}
	return s, nil
}

// Peer is what the lab reads of a row of pool_relay peers --json.
type Peer struct {
	ID                string `json:"id"`
	Connected         bool   `json:"connected"`
	Reconnecting      bool   `json:"reconnecting"`
	Balance           int64  `json:"balance"`
	ChequesIn         uint64 `json:"cheques_in"`
	ChequesOut        uint64 `json:"cheques_out"`
	RelayedForBytes   uint64 `json:"relayed_for_bytes"`
	RelayedForPackets uint64 `json:"relayed_for_packets"`
}

// Peers reads r's peers table.
func (l *Lab) Peers(ctx context.Context, r *Relay) ([]Peer, error) {
	js, err := l.CLI(ctx, "peers", "--json", "--socket", r.Socket)
	if err != nil {
		return nil, err
	}
	var ps []Peer
	if err := json.Unmarshal([]byte(js), &ps); err != nil {
		return nil, fmt.Errorf("%s peers --json: %w", r.Name, err)
	}
	return ps, nil
}

// Peer reads r's row of the peer with id.
func (l *Lab) Peer(ctx context.Context, r *Relay, id string) (Peer, error) {
	ps, err := l.Peers(ctx, r)
	if err != nil {
		return Peer{}, err
	}
	for _, p := range ps {
		if p.ID == id {
			return p, nil
		}
	}
	return Peer{}, fmt.Errorf("%s has no account of %.8s", r.Name, id)
}

// Close stops every process (SIGTERM, SIGKILL after 20 s), removes the
// namespaces and veths, the relays' DPDK runtime directories and, unless
// Config.Keep, the work directory. It returns the namespace removal's
// error.
func (l *Lab) Close() error {
	l.Sup.StopAll(20 * time.Second)
	err := l.Env.Close()
	left, _ := filepath.Glob("/var/run/dpdk/" + strings.TrimSuffix(l.Env.Prefix(), "-") + "_*")
	for _, d := range left {
		os.RemoveAll(d)
	}
	if l.Work != "" && !l.cfg.Keep {
		os.RemoveAll(l.Work)
	}
	return err
}
