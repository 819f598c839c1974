package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/control"
	"github.com/poolrelay/poolrelay/control/controltest"
	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/endnode"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/pool/transport"
)

// TestSendThroughRelay runs a relay (the control core over UDP with the
// controltest forwarder), a reflecting end node, and pool_node as the
// sender, all on loopback with the wall clock, and checks the summary line.
func TestSendThroughRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	rid, _ := identity.Generate(rand.Reader)
	led, _, err := ledger.Open(ledger.Options{Config: ledger.DefaultConfig(), DataDir: t.TempDir(), Network: 1,
		Signer: rid, Clock: clock.System{}, Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	plane, _ := controltest.NewPlane(64)
	udp, err := transport.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	relay := &controltest.Relay{UDP: udp, Plane: plane}
	core, err := control.New(control.Options{Config: control.DefaultConfig(), Identity: rid, Network: 1,
		Transport: relay, DataPlane: plane, Counters: plane, Ledger: led, Clock: clock.System{}, Rand: rand.Reader, Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = core.Run(ctx) }()
	defer relay.Close()

	// The reflector.
	bid, _ := identity.Generate(rand.Reader)
	budp, _ := transport.ListenUDP("127.0.0.1:0")
	defer budp.Close()
	b, err := endnode.New(endnode.Config{Identity: bid, Network: 1, Relay: udp.Addr(), Transport: budp,
		Clock: clock.System{}, Rand: rand.Reader, Log: logging.Nop(), Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = b.Run(ctx) }()
	if err := b.Enroll(ctx); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	o := options{relay: udp.Addr().String(), relayAddr: address.New(address.TypeRelay, 0, 0, rid.PublicKey()).String(),
		identity: filepath.Join(t.TempDir(), "node.key"), listen: "127.0.0.1:0", peer: b.Address(0, 0).String(),
		network: 1, rate: 20000, count: 300, size: 800, wait: time.Second}
	if err := run(o, &out); err != nil {
		t.Fatal(err)
	}
	var sent, received, lost int
	var mbps float64
	if _, err := fmt.Sscanf(out.String(), "sent=%d received=%d lost=%d mbps=%f", &sent, &received, &lost, &mbps); err != nil {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
	if sent != 300 || received+lost != sent || received < 290 || mbps <= 0 {
		t.Fatalf("summary %q", out.String())
	}
	if got := plane.Forwarded.Load(); got < uint64(sent+received) {
		t.Fatalf("relay forwarded %d frames for %d sent and %d echoed", got, sent, received)
	}
}

func TestFlags(t *testing.T) {
	for _, o := range []options{{}, {relay: "nonsense"}, {relay: "127.0.0.1:1", size: 1 << 20}} {
		if err := run(o, new(bytes.Buffer)); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
