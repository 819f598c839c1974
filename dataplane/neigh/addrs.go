package neigh

import (
	"fmt"
	"net/netip"

	"github.com/poolrelay/poolrelay/dataplane"
)

// Port is what the neighbour code knows of a port: its name (which static
// neighbours refer to), its MAC (the source of probes) and the relay's own
// addresses on it with their on-link prefixes.
type Port struct {
	Name string
	MAC  MAC
	// Addrs are the relay's addresses on the port; each prefix's Addr is
	// the address, its Masked form the on-link subnet.
	Addrs []netip.Prefix
}

// PortsFromConfig builds Ports from the [[port]] tables and the MAC address
// of each port (read from the device once it is started), in the same order.
func PortsFromConfig(cfgs []dataplane.PortConfig, macs []MAC) ([]Port, error) {
	if len(cfgs) != len(macs) {
		return nil, fmt.Errorf("neigh: %d ports configured but %d MAC addresses given", len(cfgs), len(macs))
	}
	if len(cfgs) > 1<<16 {
		return nil, fmt.Errorf("neigh: %d ports: at most 65536", len(cfgs))
	}
	ports := make([]Port, len(cfgs))
	for i, c := range cfgs {
		ports[i] = Port{Name: c.Name, MAC: macs[i]}
		for _, a := range c.Addresses {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return nil, fmt.Errorf("neigh: port %q: %w", c.Name, err)
			}
			ports[i].Addrs = append(ports[i].Addrs, unmapPrefix(p))
		}
	}
	return ports, nil
}

// unmapPrefix turns an IPv4-mapped prefix into the IPv4 one, so that every
// IPv4 address in the package has one form.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if !p.Addr().Is4In6() {
		return p
	}
	bits := p.Bits() - 96
	if bits < 0 {
		bits = 0
	}
	return netip.PrefixFrom(p.Addr().Unmap(), bits)
}

// Addrs is the relay's own addresses per port. It is immutable: workers may
// read it concurrently without synchronisation.
type Addrs struct {
	ports [][]netip.Prefix
}

// NewAddrs returns the address table of ports; port i of the slice is port
// index i.
func NewAddrs(ports []Port) *Addrs {
	a := &Addrs{ports: make([][]netip.Prefix, len(ports))}
	for i, p := range ports {
		for _, pr := range p.Addrs {
			a.ports[i] = append(a.ports[i], unmapPrefix(pr))
		}
	}
	return a
}

// Mine reports whether ip is one of the relay's addresses on port: the test
// a worker makes before answering an ARP request or a neighbour
// solicitation. A port has a handful of addresses, so a linear scan of
// 16-byte compares beats any index. It does not allocate.
func (a *Addrs) Mine(port uint16, ip netip.Addr) bool {
	if int(port) >= len(a.ports) {
		return false
	}
	ip = ip.Unmap()
	for _, p := range a.ports[port] {
		if p.Addr() == ip {
			return true
		}
	}
	return false
}

// OnLink reports whether ip is in a subnet of one of the relay's addresses
// on port, that is, whether it can be reached on the link without a router.
func (a *Addrs) OnLink(port uint16, ip netip.Addr) bool {
	if int(port) >= len(a.ports) {
		return false
	}
	ip = ip.Unmap()
	for _, p := range a.ports[port] {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Source returns the address the relay probes target from on port: its
// address in the subnet that holds target if there is one, else its first
// address of target's family. ok is false when the port has no address of
// that family, and the relay cannot ask.
func (a *Addrs) Source(port uint16, target netip.Addr) (src netip.Addr, ok bool) {
	if int(port) >= len(a.ports) {
		return netip.Addr{}, false
	}
	target = target.Unmap()
	for _, p := range a.ports[port] {
		if p.Contains(target) {
			return p.Addr(), true
		}
	}
	for _, p := range a.ports[port] {
		if p.Addr().Is4() == target.Is4() {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// Ports returns the number of ports.
func (a *Addrs) Ports() int { return len(a.ports) }
