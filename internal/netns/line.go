package netns

import (
	"fmt"
	"net"
	"net/netip"
)

// Line is the topology of the data-plane tests and the demo:
//
//	[Sender ns] SenderIf <-veth-> PortA [root ns: DPDK] PortB <-veth-> ReceiverIf [Receiver ns]
//
// The sender's subnet is SenderNet, the receiver's ReceiverNet; each side
// routes the other's subnet through a gateway address (GatewayA, GatewayB)
// that nothing owns: its permanent neighbour entry names the MAC the
// frames should carry, so no ARP is needed across the DPDK ports. A relay
// under test takes the gateways as its own addresses (GatewayA on PortA,
// GatewayB on PortB) and ReceiverMAC and SenderMAC as its next hops, with
// LineConfig.GatewayAMAC and GatewayBMAC set to its ports' MACs.
type Line struct {
	Sender, Receiver     *NS
	SenderIf, ReceiverIf string // interfaces in the namespaces
	PortA, PortB         string // root-namespace ends, for the DPDK ports
	SenderAddr           netip.Addr
	ReceiverAddr         netip.Addr
	GatewayA, GatewayB   netip.Addr // the sender's and the receiver's next hop
	SenderMAC            net.HardwareAddr
	ReceiverMAC          net.HardwareAddr
	PortAMAC, PortBMAC   net.HardwareAddr
}

// LineConfig chooses the neighbour entries of a Line.
type LineConfig struct {
	// GatewayAMAC is the destination MAC the sender puts on frames to the
	// receiver's subnet. nil: the receiver's own MAC, so a forwarder that
	// moves frames from PortA to PortB unchanged delivers them. A relay
	// that rewrites Ethernet headers passes its PortA MAC instead.
	GatewayAMAC net.HardwareAddr
	// GatewayBMAC is the same for the receiver's frames back: nil is the
	// sender's MAC.
	GatewayBMAC net.HardwareAddr
	// MTU of all four interfaces; 0 leaves 1500.
	MTU int
	// ChecksumOffload leaves the veths' checksum offloads on, as a lab
	// an operator sets up by hand has them (see Link.ChecksumOffload): the
	// sender's UDP datagrams then reach a DPDK port on PortA with their
	// checksums left to offload.
	ChecksumOffload bool
}

// The Line's addresses: documentation-free private ranges, fixed, since each
// Line has namespaces of its own and the root-namespace ends carry none.
var (
	senderPrefix   = netip.MustParsePrefix("10.201.1.1/24")
	receiverPrefix = netip.MustParsePrefix("10.201.2.1/24")
	gatewayA       = netip.MustParseAddr("10.201.1.254")
	gatewayB       = netip.MustParseAddr("10.201.2.254")
)

// NewLine builds a Line in e: namespaces "s" and "r", veths "s0"-"a" and
// "r0"-"b" (full names carry e's prefix), addresses, routes and neighbour
// entries, TX checksum offload off everywhere unless cfg.ChecksumOffload (see
// Link.ChecksumOffload),
// IPv6 off on all four (its solicitations and reports would cross the DPDK
// ports, where tests count every frame) and all four interfaces up.
func (e *Env) NewLine(cfg LineConfig) (*Line, error) {
	l := &Line{
		SenderAddr: senderPrefix.Addr(), ReceiverAddr: receiverPrefix.Addr(),
		GatewayA: gatewayA, GatewayB: gatewayB,
	}
	var err error
	if l.Sender, err = e.NewNS("s"); err != nil {
		return nil, err
	}
	if l.Receiver, err = e.NewNS("r"); err != nil {
		return nil, err
	}
	if l.SenderIf, l.PortA, err = e.Veth(End{"s0", l.Sender}, End{"a", Root}); err != nil {
		return nil, err
	}
	if l.ReceiverIf, l.PortB, err = e.Veth(End{"r0", l.Receiver}, End{"b", Root}); err != nil {
		return nil, err
	}
	// IPv6 would send router and neighbour solicitations, DAD and MLD
	// reports through the DPDK ports, and tests count every frame there.
	for _, c := range []struct {
		ns  *NS
		dev string
	}{{l.Sender, l.SenderIf}, {l.Receiver, l.ReceiverIf}, {Root, l.PortA}, {Root, l.PortB}} {
		if err := c.ns.WriteSysctl("net/ipv6/conf/"+c.dev+"/disable_ipv6", "1"); err != nil {
			return nil, err
		}
	}
	for _, c := range []struct {
		ns   *NS
		dev  string
		addr []netip.Prefix
	}{
		{l.Sender, l.SenderIf, []netip.Prefix{senderPrefix}},
		{l.Receiver, l.ReceiverIf, []netip.Prefix{receiverPrefix}},
		{Root, l.PortA, nil},
		{Root, l.PortB, nil},
	} {
		if err := c.ns.Configure(c.dev, Link{Addrs: c.addr, MTU: cfg.MTU, ChecksumOffload: cfg.ChecksumOffload}); err != nil {
			return nil, err
		}
	}
	if l.SenderMAC, err = l.Sender.HardwareAddr(l.SenderIf); err != nil {
		return nil, err
	}
	if l.ReceiverMAC, err = l.Receiver.HardwareAddr(l.ReceiverIf); err != nil {
		return nil, err
	}
	if l.PortAMAC, err = Root.HardwareAddr(l.PortA); err != nil {
		return nil, err
	}
	if l.PortBMAC, err = Root.HardwareAddr(l.PortB); err != nil {
		return nil, err
	}
	gwA, gwB := cfg.GatewayAMAC, cfg.GatewayBMAC
	if gwA == nil {
		gwA = l.ReceiverMAC
	}
	if gwB == nil {
		gwB = l.SenderMAC
	}
	steps := []func() error{
		func() error { return l.Sender.Neighbor(l.SenderIf, gatewayA, gwA) },
		func() error { return l.Sender.Route(receiverPrefix.Masked(), gatewayA, l.SenderIf) },
		func() error { return l.Receiver.Neighbor(l.ReceiverIf, gatewayB, gwB) },
		func() error { return l.Receiver.Route(senderPrefix.Masked(), gatewayB, l.ReceiverIf) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, fmt.Errorf("netns: line: %w", err)
		}
	}
	return l, nil
}
