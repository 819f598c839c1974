package route_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/poolrelay/poolrelay/dataplane/route"
)

// The control core installs routes in bulk and sweeps expired ones; workers
// look up whole bursts.
func Example() {
	tbl, err := route.New(1 << 20)
	if err != nil {
		panic(err)
	}
	now := time.Unix(1_700_000_000, 0)

	// Control core: one batch, one copy per shard it touches.
	var b route.Batch
	for i := range 3 {
		r := route.Route{
			IngressPeer: uint32(10 + i),
			EgressPeer:  42,
			EgressPort:  1,
			Encap:       route.EncapUDP,
			SrcPort:     9254,
			DstPort:     9254,
			Expires:     now.Add(time.Duration(i+1) * time.Minute).UnixNano(),
		}
		if err := r.SetAddrs(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.7")); err != nil {
			panic(err)
		}
		b.Put(route.SessionID{byte(i + 1)}, r)
	}
	if err := tbl.Apply(&b); err != nil {
		panic(err)
	}

	// Worker: the session ids of a receive burst, looked up together.
	ids := []route.SessionID{{1}, {2}, {9}}
	routes := make([]route.Route, len(ids))
	found := make([]bool, len(ids))
	tbl.LookupBurst(ids, routes, found)
	for i := range ids {
		if found[i] {
			fmt.Printf("session %x: charge peer %d, send to %v on port %d\n", ids[i][0], routes[i].IngressPeer, routes[i].DstAddr(), routes[i].EgressPort)
		} else {
			fmt.Printf("session %x: unknown, drop\n", ids[i][0])
		}
	}

	// Control core, later: the first route has expired.
	fmt.Println("expired:", tbl.Sweep(now.Add(90*time.Second)), "left:", tbl.Len())
	// Output:
	// session 1: charge peer 10, send to 198.51.100.7 on port 1
	// session 2: charge peer 11, send to 198.51.100.7 on port 1
	// session 9: unknown, drop
	// expired: 1 left: 2
}
