// Package neigh resolves next-hop MAC addresses for a relay whose ports have
// no kernel network stack, and knows the relay's own addresses on each port.
//
// Three parts, by who uses them:
//
//   - Table: an immutable (port, IP) to MAC snapshot that workers read
//     through Published, lock-free, at any time. It holds static neighbours
//     from the configuration and every neighbour the resolver has confirmed.
//   - Addrs: the relay's own addresses per port, from the port
//     configuration, with a fast "is this mine" test for workers answering
//     ARP and neighbour solicitations.
//   - Resolver: the state machine the control core runs. Request starts the
//     resolution of an IP and returns the ARP request or IPv6 neighbour
//     solicitation to send; Tick retransmits with backoff and ages
//     confirmed entries; Learn takes in the replies that workers punt. Each
//     change publishes a new Table.
//
// The resolver never builds frames: it returns Probe values, and the caller
// turns them into bytes with the wire codec (an ARP request for IPv4, a
// neighbour solicitation to the solicited-node group for IPv6) and injects
// them on the probe's port. Time comes from an injected Clock.
package neigh

import (
	"net/netip"
	"sync/atomic"
)

// MAC is an Ethernet address.
type MAC = [6]byte

// key identifies a neighbour: a port index and an address in 16-byte form
// (IPv4 stored IPv4-mapped, as netip.Addr.As16 and route.Route keep it).
type key struct {
	port uint16
	ip   [16]byte
}

func keyOf(port uint16, ip netip.Addr) key { return key{port: port, ip: ip.As16()} }

// Table is an immutable snapshot of resolved neighbours. Any number of
// goroutines may read it concurrently; nobody writes it after it is
// published.
type Table struct {
	macs map[key]MAC
}

// Lookup returns the MAC of ip on port. It does not allocate.
func (t *Table) Lookup(port uint16, ip netip.Addr) (MAC, bool) {
	m, ok := t.macs[keyOf(port, ip.Unmap())]
	return m, ok
}

// Lookup16 is Lookup for an address in 16-byte form (IPv4-mapped for IPv4),
// as a route's DstIP holds it.
func (t *Table) Lookup16(port uint16, ip [16]byte) (MAC, bool) {
	m, ok := t.macs[key{port: port, ip: ip}]
	return m, ok
}

// Len returns the number of neighbours in the snapshot.
func (t *Table) Len() int { return len(t.macs) }

// Range calls fn for each neighbour until fn returns false, in no particular
// order.
func (t *Table) Range(fn func(port uint16, ip netip.Addr, mac MAC) bool) {
	for k, m := range t.macs {
		if !fn(k.port, netip.AddrFrom16(k.ip).Unmap(), m) {
			return
		}
	}
}

// Published is where the current Table is published: the resolver stores a
// new snapshot, workers load it (once per burst is enough). The zero value
// holds an empty table.
type Published struct {
	p atomic.Pointer[Table]
}

var emptyTable = &Table{}

// Load returns the current snapshot, never nil. It is wait-free.
func (p *Published) Load() *Table {
	if t := p.p.Load(); t != nil {
		return t
	}
	return emptyTable
}

func (p *Published) store(t *Table) { p.p.Store(t) }
