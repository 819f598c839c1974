package neigh_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/neigh"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
)

// The control core asks for a next hop, sends the probe it gets back, feeds
// the punted reply to Learn; workers see the MAC in the published table.
func Example() {
	ports, err := neigh.PortsFromConfig(
		[]dataplane.PortConfig{{Name: "p0", Addresses: []string{"192.0.2.1/24"}}},
		[]neigh.MAC{{0x02, 0, 0, 0, 0, 1}},
	)
	if err != nil {
		panic(err)
	}
	var pub neigh.Published
	r, err := neigh.New(neigh.DefaultConfig(), ports, nil, clock.NewFake(time.Unix(1_700_000_000, 0)), logging.Nop(), &pub)
	if err != nil {
		panic(err)
	}

	gw := netip.MustParseAddr("192.0.2.254")
	probes, err := r.Request(nil, 0, gw)
	if err != nil {
		panic(err)
	}
	for _, p := range probes {
		// The caller builds the frame, e.g. with wire.BuildARPRequest(buf,
		// nil, p.SrcMAC, p.Src, p.Target), and injects it on p.Port.
		fmt.Printf("who-has %v tell %v on port %d\n", p.Target, p.Src, p.Port)
	}

	// A worker punts the ARP reply; the control core parses it.
	r.Learn(0, gw, neigh.MAC{0x02, 0, 0, 0, 0, 0xfe})

	// Workers: once per burst, load the snapshot and look up.
	mac, ok := pub.Load().Lookup(0, gw)
	fmt.Printf("%v is at %x (%v); 192.0.2.1 is ours: %v\n", gw, mac, ok, r.Addrs().Mine(0, netip.MustParseAddr("192.0.2.1")))
	// Output:
	// who-has 192.0.2.254 tell 192.0.2.1 on port 0
	// 192.0.2.254 is at 0200000000fe (true); 192.0.2.1 is ours: true
}
