package control

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/control/controltest"
	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/endnode"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/pool/transport"
)

const network = 5

var epochTime = time.Date(2026, 11, 21, 4, 0, 0, 0, time.UTC)

// ledgerTerms are acceptable end-node terms for the default ledger.
func ledgerTerms() account.Terms { return endnode.DefaultTerms() }

// tap records the frames a transport sends, for replay and forgery tests.
type tap struct {
	transport.Transport
	mu   sync.Mutex
	sent [][]byte
}

func (t *tap) Send(to transport.Endpoint, f []byte) error {
	t.mu.Lock()
	t.sent = append(t.sent, bytes.Clone(f))
	t.mu.Unlock()
	return t.Transport.Send(to, f)
}

// lastOfType returns the last recorded frame of type typ on channel ch.
func (t *tap) lastOfType(typ wire.Type, ch uint8) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.sent) - 1; i >= 0; i-- {
		if h := wire.Header(t.sent[i]); h.Type() == typ && h.Channel() == ch {
			return t.sent[i]
		}
	}
	return nil
}

func newPlane(t testing.TB) *controltest.Plane {
	p, err := controltest.NewPlane(1024)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type world struct {
	t      *testing.T
	clk    *clock.Fake
	plane  *controltest.Plane
	core   *Core
	led    *ledger.Ledger
	relay  *controltest.Relay
	relayA address.Address
	ticks  chan time.Time
	nodes  []*testNode
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type testNode struct {
	*endnode.Node
	id    *identity.Identity
	tap   *tap
	udp   *transport.UDP
	ticks chan time.Time
	got   atomic.Uint64
}

func seeded(t testing.TB, b byte) *identity.Identity {
	id, err := identity.FromSeed(bytes.Repeat([]byte{b}, identity.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newWorld(t *testing.T, mutate func(*Config)) *world {
	return newWorldLedger(t, mutate, nil)
}

// newWorldLedger is newWorld with the ledger's configuration changed by
// mutateLedger as well.
func newWorldLedger(t *testing.T, mutate func(*Config), mutateLedger func(*ledger.Config)) *world {
	return newWorldFull(t, 0x51, mutate, mutateLedger, nil)
}

// newWorldFull is newWorldLedger with the relay's identity made from seed
// and the core's Options changed by mutateOpts as well.
func newWorldFull(t *testing.T, seed byte, mutate func(*Config), mutateLedger func(*ledger.Config), mutateOpts func(*Options)) *world {
	w := &world{t: t, clk: clock.NewFake(epochTime), plane: newPlane(t),
		ticks: make(chan time.Time)}
	rid := seeded(t, seed)
	w.relayA = address.New(address.TypeRelay, 1, 1, rid.PublicKey())
	lcfg := ledger.DefaultConfig()
	if mutateLedger != nil {
		mutateLedger(&lcfg)
	}
	led, _, err := ledger.Open(ledger.Options{Config: lcfg, DataDir: t.TempDir(), Network: network,
		Signer: rid, Clock: w.clk, Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	w.led = led
	udp, err := transport.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.relay = &controltest.Relay{UDP: udp, Plane: w.plane}
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	opts := Options{Config: cfg, Identity: rid, Network: network, Transport: w.relay, DataPlane: w.plane, Counters: w.plane, RouteCounters: w.plane,
		Ledger: led, Clock: w.clk, Rand: rand.Reader, Log: logging.Nop(), Ticks: w.ticks, MTU: 1500}
	if mutateOpts != nil {
		mutateOpts(&opts)
	}
	w.core, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if err := w.core.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(w.close)
	t.Cleanup(func() {
		if t.Failed() {
			for k, v := range w.core.Counters() {
				if v != 0 {
					t.Logf("core %s = %d", k, v)
				}
			}
			for i, n := range w.nodes {
				t.Logf("node %d: sent %d recv %d hoprej %d innerrej %d ctlrej %d hb sent %d ok %d rej %d", i,
					n.Stats.DataSent.Load(), n.Stats.DataReceived.Load(), n.Stats.HopRejected.Load(), n.Stats.InnerRejected.Load(),
					n.Stats.ControlRejected.Load(), n.Stats.HeartbeatsSent.Load(), n.Stats.HeartbeatsAccepted.Load(), n.Stats.HeartbeatsRejected.Load())
			}
		}
	})
	return w
}

func (w *world) close() {
	w.cancel()
	w.wg.Wait()
	w.relay.Close()
	for _, n := range w.nodes {
		n.udp.Close()
	}
	w.led.Close()
}

func (w *world) addNode(seed byte, echo bool) *testNode {
	udp, err := transport.ListenUDP("127.0.0.1:0")
	if err != nil {
		w.t.Fatal(err)
	}
	tn := &testNode{id: seeded(w.t, seed), udp: udp, ticks: make(chan time.Time)}
	tn.tap = &tap{Transport: udp}
	tn.Node, err = endnode.New(endnode.Config{Identity: tn.id, Network: network, Relay: w.relay.Addr(),
		RelayAddress: w.relayA, Transport: tn.tap, Clock: w.clk, Rand: rand.Reader, Log: logging.Nop(),
		Ticks: tn.ticks, Echo: echo, OnData: func([16]byte, []byte) { tn.got.Add(1) }})
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		_ = tn.Run(ctx)
	}()
	w.t.Cleanup(cancel)
	w.nodes = append(w.nodes, tn)
	return tn
}

// step advances the fake clock by d and runs one tick everywhere, waiting
// until each loop has finished its tick (a request after the tick is a
// barrier: the loops handle one thing at a time), so that no tick reads a
// clock already advanced for the next one.
func (w *world) step(d time.Duration) {
	w.clk.Advance(d)
	w.tickCore()
	w.tickNodes()
}

// tickCore runs one tick of the core and waits until it is done.
func (w *world) tickCore() {
	w.ticks <- w.clk.Now()
	_ = w.core.do(context.Background(), func() {})
}

// tickNodes runs one tick of every node and waits until the frames it sent
// have landed.
func (w *world) tickNodes() {
	for _, n := range w.nodes {
		select {
		case n.ticks <- w.clk.Now():
			_, _ = n.RelayKey(context.Background())
		case <-time.After(time.Second): // a stopped node
		}
	}
	w.settle()
}

// settle waits until the frames the tick sent have landed: loopback UDP is
// asynchronous, and the next step must not advance the clock under frames
// still in flight. Quiet means no loop received anything for 20 ms.
func (w *world) settle() {
	sum := func() uint64 {
		s := w.core.Counter(RxFrames) + w.plane.Forwarded.Load()
		for _, n := range w.nodes {
			s += n.Stats.ControlFramesIn.Load() + n.Stats.DataReceived.Load() + n.Stats.ControlRejected.Load()
		}
		return s
	}
	last, quiet := sum(), time.Now()
	for time.Since(quiet) < 20*time.Millisecond {
		time.Sleep(2 * time.Millisecond)
		if s := sum(); s != last {
			last, quiet = s, time.Now()
		}
	}
}

// eventually waits (in real time) for cond; the frames are on loopback.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}
