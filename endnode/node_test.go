package endnode

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/pool/transport"
)

// nullTransport discards what is sent.
type nullTransport struct{ sent int }

func (*nullTransport) Recv([]byte) (int, transport.Endpoint, error) { select {} }
func (n *nullTransport) Send(transport.Endpoint, []byte) error      { n.sent++; return nil }
func (*nullTransport) Local(int, netip.Addr) (transport.Endpoint, bool) {
	return transport.Endpoint{}, false
}
func (*nullTransport) Close() error { return nil }

func seeded(t testing.TB, b byte) *identity.Identity {
	id, err := identity.FromSeed(bytes.Repeat([]byte{b}, identity.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// pair builds two nodes with an established end-to-end session between
// them, on route (a sends on it, b on its reverse), without a relay.
func pair(t testing.TB) (a, b *Node, ea, eb *e2eSession) {
	clk := clock.NewFake(time.Date(2026, 11, 21, 4, 0, 0, 0, time.UTC))
	mk := func(seed byte) *Node {
		n, err := New(Config{Identity: seeded(t, seed), Network: 3, Relay: netip.MustParseAddrPort("127.0.0.1:9254"),
			Transport: &nullTransport{}, Clock: clk, Rand: rand.Reader, Log: logging.Nop(), Echo: true})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a, b = mk(1), mk(2)
	init, _ := handshake.NewInitiator(handshake.InitiatorConfig{Identity: a.cfg.Identity, Network: 3,
		Server: b.cfg.Identity.PublicKey(), Payload: mustPayload(a), Clock: clk, Rand: rand.Reader})
	route := [16]byte{1, 2, 3}
	from := pseudoAddr(route)
	m, _ := init.Init(nil)
	ch, err := b.e2eResp.Challenge(nil, m, from)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := init.Respond(nil, ch)
	ack, sb, err := b.e2eResp.Accept(nil, resp, from)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := init.Finish(ack)
	if err != nil {
		t.Fatal(err)
	}
	ea, eb = &e2eSession{route: route}, &e2eSession{route: [16]byte{0x81, 2, 3}, accepted: true}
	ea.established(sa)
	eb.established(sb)
	a.e2e[eb.route], b.e2e[route] = ea, eb
	return a, b, ea, eb
}

func TestInnerFrames(t *testing.T) {
	_, b, ea, eb := pair(t)
	var got []byte
	b.cfg.OnData = func(_ [16]byte, p []byte) { got = append(got[:0], p...) }
	f := ea.seal(nil, []byte("hello, b"), 1)
	b.onInner(ea.route, bytes.Clone(f), len(f)+80)
	if string(got) != "hello, b" || b.Stats.DataReceived.Load() != 1 {
		t.Fatalf("got %q", got)
	}
	// Replayed, forged, truncated, or for another session: refused.
	b.onInner(ea.route, bytes.Clone(f), 0)
	forged := bytes.Clone(f)
	forged[len(forged)-1] ^= 1
	b.onInner(ea.route, ea.seal(nil, []byte("x"), 1)[:90], 0)
	b.onInner(ea.route, forged, 0)
	b.onInner([16]byte{9}, ea.seal(nil, []byte("y"), 1), 0)
	if b.Stats.DataReceived.Load() != 1 || b.Stats.InnerRejected.Load() != 4 {
		t.Fatalf("received %d rejected %d", b.Stats.DataReceived.Load(), b.Stats.InnerRejected.Load())
	}
	_ = eb
}

func TestSealOpenAllocs(t *testing.T) {
	_, _, ea, eb := pair(t)
	buf := make([]byte, 0, 2048)
	payload := make([]byte, 1000)
	if n := testing.AllocsPerRun(100, func() {
		buf = ea.seal(buf[:0], payload, 1)
		if _, ok := eb.open(buf); !ok {
			t.Fatal("open failed")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per frame", n)
	}
}

// FuzzInner feeds arbitrary inner frames to a node with an established
// session and a responder: errors are counted, nothing panics.
func FuzzInner(f *testing.F) {
	_, b, ea, _ := pair(f)
	f.Add(ea.seal(nil, []byte("seed"), 1))
	f.Add(innerHandshake(nil, handshake.KindInit, 1, make([]byte, handshake.InitSize)))
	f.Add(innerHandshake(nil, handshake.KindResponse, 1, make([]byte, handshake.ResponseMinSize)))
	f.Fuzz(func(t *testing.T, inner []byte) {
		b.onInner(ea.route, inner, len(inner))
		b.onInner([16]byte{7}, inner, len(inner))
	})
}
