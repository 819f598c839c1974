package dataplane

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/poolrelay/poolrelay/internal/confcheck"
)

// EALConfig is the [eal] section: how the DPDK environment is started.
type EALConfig struct {
	// Cores is the DPDK lcore list ("0-1", "0,2,4"). The first core is the
	// main (control) core; workers run on the others.
	Cores string `toml:"cores"`
	// NoHuge runs DPDK on ordinary pages (--no-huge): half the packet rate on
	// these machines, but needs no hugepage reservation.
	NoHuge bool `toml:"no_huge"`
	// MemoryMB is the memory DPDK reserves at start (-m). 0 lets DPDK decide
	// with hugepages; with no_huge it must be set.
	MemoryMB int `toml:"memory_mb"`
	// FilePrefix keeps the runtime files of several DPDK processes on one
	// machine apart (--file-prefix).
	FilePrefix string `toml:"file_prefix"`
	// InMemory keeps no runtime files at all (--in-memory); it needs
	// hugepages.
	InMemory bool `toml:"in_memory"`
	// LogLevel is DPDK's own log level (--log-level), 1 (emergency) to 8 (debug).
	LogLevel int `toml:"log_level"`
	// ExtraArgs are appended to the EAL arguments verbatim.
	ExtraArgs []string `toml:"extra_args"`
}

// PortConfig is one [[port]] table: a DPDK device and the relay's addresses on it.
type PortConfig struct {
	// Name is how the port is shown in status, stats and routes.
	Name string `toml:"name"`
	// Device is a PCI address ("0000:03:00.0") or a vdev string
	// ("net_af_xdp0,iface=veth0", "net_null0,size=128").
	Device string `toml:"device"`
	// RxQueues and TxQueues: 0 means one per worker.
	RxQueues int `toml:"rx_queues"`
	TxQueues int `toml:"tx_queues"`
	// RxDescriptors and TxDescriptors are ring sizes, powers of two. A small
	// TX ring keeps the egress backlog in the relay's class queues, where
	// priority applies, rather than in the NIC.
	RxDescriptors int `toml:"rx_descriptors"`
	TxDescriptors int `toml:"tx_descriptors"`
	// MTU is the IP MTU; 0 leaves the device default.
	MTU int `toml:"mtu"`
	// Promiscuous receives frames for any destination MAC.
	Promiscuous bool `toml:"promiscuous"`
	// Addresses are the relay's own IPs on this port, in CIDR form; the relay
	// answers ARP and neighbour solicitations for them.
	Addresses []string `toml:"addresses"`
	// EgressRateMbps shapes the port's output in software; 0 is unlimited.
	EgressRateMbps int `toml:"egress_rate_mbps"`
}

// Neighbor is a static next-hop entry: an IP that resolves to MAC on Port
// without ARP or neighbour discovery.
type Neighbor struct {
	IP   string `toml:"ip"`
	MAC  string `toml:"mac"`
	Port string `toml:"port"`
}

// Config is the [dataplane] section.
type Config struct {
	// Burst is the number of frames moved per RX/TX call.
	Burst int `toml:"burst"`
	// Mbufs is the number of packet buffers in the pool (2^n-1 is ideal for
	// DPDK's ring-backed mempools).
	Mbufs int `toml:"mbufs"`
	// MbufCache is the per-core mempool cache size.
	MbufCache int `toml:"mbuf_cache"`
	// UDPPorts are the UDP ports that carry POOL, beside IP protocol 253.
	UDPPorts []int `toml:"udp_ports"`
	// PuntRing and InjectRing are the sizes (powers of two) of the rings to
	// and from the control core.
	PuntRing   int `toml:"punt_ring"`
	InjectRing int `toml:"inject_ring"`
	// MaxRoutes bounds the route table.
	MaxRoutes int `toml:"max_routes"`
	// IdleSleep, when not zero, lets a worker sleep this long after a run of
	// empty polls instead of spinning: DPDK's polling owns a core, which a
	// dedicated appliance wants and a shared machine (a lab, three demo
	// relays on two cores) cannot give. It adds up to IdleSleep of latency to
	// the first frame after a quiet spell and nothing under load.
	IdleSleep time.Duration `toml:"idle_sleep"`
	// Neighbors are static next hops.
	Neighbors []Neighbor `toml:"neighbor"`
}

// Default POOL ports (POOL spec v1): 9253 for POOL, 9254 for relays.
const (
	PoolUDPPort  = 9253
	RelayUDPPort = 9254
)

// DefaultEALConfig returns the defaults documented in configs/default.toml.
func DefaultEALConfig() EALConfig {
	// The default runs anywhere: ordinary pages, so no hugepage reservation is
	// needed. Production configs (configs/edge.toml) turn hugepages on.
	return EALConfig{Cores: "0-1", NoHuge: true, MemoryMB: 512, FilePrefix: "pool_relay", LogLevel: 4, ExtraArgs: []string{}}
}

// DefaultPortConfig returns the defaults applied to each [[port]] table.
func DefaultPortConfig() PortConfig {
	return PortConfig{RxDescriptors: 1024, TxDescriptors: 256, Promiscuous: true}
}

// DefaultConfig returns the defaults documented in configs/default.toml.
func DefaultConfig() Config {
	return Config{
		Burst:      32,
		Mbufs:      16383,
		MbufCache:  256,
		UDPPorts:   []int{PoolUDPPort, RelayUDPPort},
		PuntRing:   1024,
		InjectRing: 1024,
		MaxRoutes:  1 << 20,
		IdleSleep:  0,
	}
}

// Validate checks the [eal] section.
func (c EALConfig) Validate(errs confcheck.Errors) {
	if _, err := ParseCoreList(c.Cores); err != nil {
		errs.Addf("cores", "%v", err)
	}
	if c.NoHuge && c.InMemory {
		errs.Addf("in_memory", "DPDK refuses --in-memory with --no-huge: set one of them to false")
	}
	if c.NoHuge && c.MemoryMB == 0 {
		errs.Addf("memory_mb", "set memory_mb (for example 512) when no_huge is true")
	}
	if c.MemoryMB < 0 || c.MemoryMB > 1<<20 {
		errs.Addf("memory_mb", "%d is out of range: use 0 to 1048576", c.MemoryMB)
	}
	if c.FilePrefix == "" || strings.ContainsAny(c.FilePrefix, "/ \t") {
		errs.Addf("file_prefix", "%q must be non-empty and contain no slash or space", c.FilePrefix)
	}
	if c.LogLevel < 1 || c.LogLevel > 8 {
		errs.Addf("log_level", "%d is out of range: use 1 (emergency) to 8 (debug)", c.LogLevel)
	}
}

// Validate checks one [[port]] table.
func (c PortConfig) Validate(errs confcheck.Errors) {
	if c.Name == "" {
		errs.Addf("name", "every port needs a name")
	}
	if c.Device == "" {
		errs.Addf("device", "set a PCI address or a vdev string such as \"net_null0\"")
	}
	for _, q := range []struct {
		key string
		n   int
	}{{"rx_queues", c.RxQueues}, {"tx_queues", c.TxQueues}} {
		if q.n < 0 || q.n > 128 {
			errs.Addf(q.key, "%d is out of range: use 0 (one per worker) to 128", q.n)
		}
	}
	for _, d := range []struct {
		key string
		n   int
	}{{"rx_descriptors", c.RxDescriptors}, {"tx_descriptors", c.TxDescriptors}} {
		if d.n < 32 || d.n > 32768 || d.n&(d.n-1) != 0 {
			errs.Addf(d.key, "%d must be a power of two from 32 to 32768", d.n)
		}
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 9600) {
		errs.Addf("mtu", "%d is out of range: use 0 (device default) or 576 to 9600", c.MTU)
	}
	for i, a := range c.Addresses {
		if _, err := netip.ParsePrefix(a); err != nil {
			errs.Sub("addresses").Addf("["+strconv.Itoa(i)+"]", "%q is not an address in CIDR form such as 192.0.2.1/24", a)
		}
	}
	if c.EgressRateMbps < 0 {
		errs.Addf("egress_rate_mbps", "%d is negative: use 0 for unlimited", c.EgressRateMbps)
	}
}

// Validate checks the [dataplane] section. ports are the configured port
// names, which static neighbours must refer to.
func (c Config) Validate(errs confcheck.Errors, ports []string) {
	if c.Burst < 1 || c.Burst > 512 {
		errs.Addf("burst", "%d is out of range: use 1 to 512 (32 is typical)", c.Burst)
	}
	if c.Mbufs < 1023 {
		errs.Addf("mbufs", "%d is too few: use at least 1023", c.Mbufs)
	}
	// DPDK caps the per-core cache at 512 and wants it below n/1.5, or the
	// caches can hold the whole pool and starve the other cores.
	if c.MbufCache < 0 || c.MbufCache > 512 || c.MbufCache*3 > c.Mbufs*2 {
		errs.Addf("mbuf_cache", "%d is out of range: use 0 to 512, and at most two thirds of mbufs", c.MbufCache)
	}
	for i, p := range c.UDPPorts {
		if p < 1 || p > 65535 {
			errs.Index("udp_ports", i).Addf("", "%d is not a UDP port: use 1 to 65535", p)
		}
	}
	for _, r := range []struct {
		key string
		n   int
	}{{"punt_ring", c.PuntRing}, {"inject_ring", c.InjectRing}} {
		if r.n < 64 || r.n > 1<<20 || r.n&(r.n-1) != 0 {
			errs.Addf(r.key, "%d must be a power of two from 64 to 1048576", r.n)
		}
	}
	if c.MaxRoutes < 1 || c.MaxRoutes > 1<<24 {
		errs.Addf("max_routes", "%d is out of range: use 1 to 16777216", c.MaxRoutes)
	}
	if c.IdleSleep < 0 || c.IdleSleep > 10*time.Millisecond {
		errs.Addf("idle_sleep", "%v is out of range: use 0 (always poll) to 10ms", c.IdleSleep)
	}
	for i, n := range c.Neighbors {
		ne := errs.Index("neighbor", i)
		if _, err := netip.ParseAddr(n.IP); err != nil {
			ne.Addf("ip", "%q is not an IP address", n.IP)
		}
		if _, err := ParseMAC(n.MAC); err != nil {
			ne.Addf("mac", "%v", err)
		}
		found := false
		for _, p := range ports {
			found = found || p == n.Port
		}
		if !found {
			ne.Addf("port", "%q names no configured [[port]]", n.Port)
		}
	}
}

// ParseCoreList parses a DPDK lcore list such as "0-3,6" into core ids in
// the order given, rejecting duplicates and ids beyond 1023.
func ParseCoreList(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errf("empty core list: use a list such as \"0-1\"")
	}
	var cores []int
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a || b > 1023 {
			return nil, errf("bad core list element %q: use ids 0-1023, e.g. \"0-1\" or \"0,2\"", part)
		}
		for c := a; c <= b; c++ {
			if seen[c] {
				return nil, errf("core %d listed twice", c)
			}
			seen[c] = true
			cores = append(cores, c)
		}
	}
	return cores, nil
}

// ParseMAC parses a colon-separated Ethernet address.
func ParseMAC(s string) ([6]byte, error) {
	var mac [6]byte
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return mac, errf("%q is not a MAC address such as 02:00:00:00:00:01", s)
	}
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil || len(p) != 2 {
			return mac, errf("%q is not a MAC address such as 02:00:00:00:00:01", s)
		}
		mac[i] = byte(v)
	}
	return mac, nil
}

func errf(format string, args ...any) error {
	return fmt.Errorf("dataplane: "+format, args...)
}
