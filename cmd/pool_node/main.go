// Command pool_node is a POOL end node: the traffic source and sink of the
// tests and the demo. It enrolls with a relay over UDP and then either
// reflects whatever end-to-end traffic reaches it (without --peer; with
// --sink it only counts it, printing sent=0 received=M lost=0 mbps=0 when
// stopped), or opens a route through the relay (and the relays named by
// --via) to --peer, runs the end-to-end handshake, sends --count frames of
// --size bytes at --rate frames per second, and prints
//
//	sent=N received=M lost=K mbps=X
//
// where received counts the frames that came back from the reflecting peer
// and mbps is the payload throughput of those round trips (with --one-way,
// towards a sink, only sent=N).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/endnode"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/pool/transport"
)

type options struct {
	relay, relayAddr, identity, listen, peer string
	via                                      string
	sink, oneWay                             bool
	network, org                             uint
	segment                                  uint
	rate, count, size                        int
	wait                                     time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.relay, "relay", "", "relay UDP address, e.g. 192.0.2.1:9254 (required)")
	flag.StringVar(&o.relayAddr, "relay-address", "", "POOL address the relay must prove (optional)")
	flag.StringVar(&o.identity, "identity", "pool_node.key", "Ed25519 identity key file, created if missing")
	flag.StringVar(&o.listen, "listen", "0.0.0.0:0", "local UDP address")
	flag.StringVar(&o.peer, "peer", "", "POOL address of the end node to send to; without it, reflect traffic")
	flag.StringVar(&o.via, "via", "", "comma-separated POOL addresses of further relays on the way to --peer")
	flag.UintVar(&o.network, "network", 1, "POOL network id")
	flag.UintVar(&o.org, "org", 0, "organisation id of this node's address")
	flag.UintVar(&o.segment, "segment", 0, "segment id of this node's address")
	flag.IntVar(&o.rate, "rate", 0, "frames per second to send; 0 sends as fast as possible")
	flag.IntVar(&o.count, "count", 1000, "frames to send")
	flag.IntVar(&o.size, "size", 1000, "payload bytes per frame")
	flag.DurationVar(&o.wait, "wait", 2*time.Second, "how long to wait for the last echoes")
	flag.BoolVar(&o.sink, "sink", false, "without --peer: count what arrives instead of reflecting it")
	flag.BoolVar(&o.oneWay, "one-way", false, "with --peer: send and report sent=N only, without waiting for echoes (the peer is a --sink)")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pool_node:", err)
		os.Exit(1)
	}
}

func run(o options, out io.Writer) error {
	if o.relay == "" {
		return errors.New("--relay is required")
	}
	relay, err := netip.ParseAddrPort(o.relay)
	if err != nil {
		return fmt.Errorf("--relay: %w", err)
	}
	var relayAddr address.Address
	if o.relayAddr != "" {
		if relayAddr, err = address.Parse(o.relayAddr); err != nil {
			return fmt.Errorf("--relay-address: %w", err)
		}
	}
	if o.size < 0 || o.size > endnode.MaxPayload {
		return fmt.Errorf("--size must be between 0 and %d", endnode.MaxPayload)
	}
	id, _, err := identity.LoadOrCreate(o.identity, rand.Reader)
	if err != nil {
		return err
	}
	udp, err := transport.ListenUDP(o.listen)
	if err != nil {
		return err
	}
	defer udp.Close()
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
	var got, gotBytes atomic.Uint64
	var last atomic.Int64
	node, err := endnode.New(endnode.Config{
		Identity: id, Network: uint32(o.network), Relay: relay, RelayAddress: relayAddr, Transport: udp,
		Clock: clock.System{}, Rand: rand.Reader, Log: log, Echo: o.peer == "" && !o.sink,
		OnData: func(_ [16]byte, p []byte) {
			got.Add(1)
			gotBytes.Add(uint64(len(p)))
			last.Store(time.Now().UnixNano())
		},
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := node.Enroll(ectx); err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	self := node.Address(uint32(o.org), uint16(o.segment))
	log.Info().Str("address", self.String()).Str("listen", udp.Addr().String()).Msg("enrolled with the relay")
	if o.peer == "" {
		<-ctx.Done()
		<-done
		fmt.Fprintf(out, "sent=%d received=%d lost=0 mbps=0\n", node.Stats.DataSent.Load(), got.Load())
		return nil
	}
	peer, err := address.Parse(o.peer)
	if err != nil {
		return fmt.Errorf("--peer: %w", err)
	}
	var path []address.Address
	for _, v := range strings.Split(o.via, ",") {
		if v = strings.TrimSpace(v); v != "" {
			a, err := address.Parse(v)
			if err != nil {
				return fmt.Errorf("--via: %w", err)
			}
			path = append(path, a)
		}
	}
	route, err := node.OpenPath(ectx, append(path, peer), 0)
	if err != nil {
		return fmt.Errorf("route: %w", err)
	}
	snd, err := node.Connect(ectx, route, peer)
	if err != nil {
		return fmt.Errorf("end-to-end handshake: %w", err)
	}
	payload := make([]byte, o.size)
	start := time.Now()
	var interval time.Duration
	if o.rate > 0 {
		interval = time.Second / time.Duration(o.rate)
	}
	sent := 0
	for ; sent < o.count && ctx.Err() == nil; sent++ {
		if interval > 0 {
			if d := time.Until(start.Add(time.Duration(sent) * interval)); d > 0 {
				time.Sleep(d)
			}
		}
		if err := snd.Send(payload); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	if o.oneWay {
		// Let the last frames leave the socket before the node closes.
		time.Sleep(100 * time.Millisecond)
		stop()
		<-done
		fmt.Fprintf(out, "sent=%d\n", sent)
		return nil
	}
	// Wait for the echoes: until all are back or none came for o.wait.
	deadline := time.Now().Add(o.wait)
	for seen := got.Load(); int(seen) < sent && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		if n := got.Load(); n != seen {
			seen, deadline = n, time.Now().Add(o.wait)
		}
	}
	received := got.Load()
	elapsed := time.Duration(last.Load() - start.UnixNano())
	mbps := 0.0
	if elapsed > 0 {
		mbps = float64(gotBytes.Load()) * 8 / elapsed.Seconds() / 1e6
	}
	stop()
	<-done
	fmt.Fprintf(out, "sent=%d received=%d lost=%d mbps=%.1f\n", sent, received, sent-int(received), mbps)
	return nil
}
