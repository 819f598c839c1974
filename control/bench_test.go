package control

import (
	"crypto/rand"
	"net/netip"
	"sync"
	"testing"

	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/pool/proto"
	"github.com/poolrelay/poolrelay/pool/transport"
)

// lastFrame is a transport that keeps the last frame sent.
type lastFrame struct {
	mu   sync.Mutex
	last []byte
}

func (l *lastFrame) Recv([]byte) (int, transport.Endpoint, error) { select {} }
func (l *lastFrame) Send(_ transport.Endpoint, f []byte) error {
	l.mu.Lock()
	l.last = append(l.last[:0], f...)
	l.mu.Unlock()
	return nil
}
func (l *lastFrame) Local(int, netip.Addr) (transport.Endpoint, bool) {
	return transport.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:9254")}, true
}
func (l *lastFrame) Close() error { return nil }

// BenchmarkEnroll is the relay's whole cost of enrolling a peer: CHALLENGE,
// RESPONSE checked and Noise completed, ledger Connect (journalled), hop
// keys installed, ACK and TERMS sent. The client's side runs with the timer
// stopped. The same client enrolls again and again (a returning peer: its
// previous session is replaced).
func BenchmarkEnroll(b *testing.B) {
	clk := clock.NewFake(epochTime)
	rid := seeded(b, 0x51)
	led, _, err := ledger.Open(ledger.Options{Config: ledger.DefaultConfig(), DataDir: b.TempDir(), Network: network,
		Signer: rid, Clock: clk, Log: logging.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer led.Close()
	tr := &lastFrame{}
	plane := newPlane(b)
	c, err := New(Options{Config: DefaultConfig(), Identity: rid, Network: network, Transport: tr, DataPlane: plane, Counters: plane,
		Ledger: led, Clock: clk, Rand: rand.Reader, Log: logging.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	client := seeded(b, 0xa1)
	payload, _ := (&proto.Enrollment{Role: proto.RoleNode, Terms: ledgerTerms()}).AppendBinary(nil)
	from := transport.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:40000")}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		init, _ := handshake.NewInitiator(handshake.InitiatorConfig{Identity: client, Network: network,
			Server: rid.PublicKey(), Payload: payload, Clock: clk, Rand: rand.Reader})
		msg, _ := init.Init(nil)
		b.StartTimer()
		c.handle(packet{from: from, data: proto.AppendHandshake(nil, handshake.KindInit, [16]byte{}, 0, msg)})
		b.StopTimer()
		ch, _ := proto.ParseFrame(tr.last)
		resp, err := init.Respond(nil, ch.Payload)
		if err != nil {
			b.Fatal(err)
		}
		frame := proto.AppendHandshake(nil, handshake.KindResponse, [16]byte{}, 0, resp)
		b.StartTimer()
		c.handle(packet{from: from, data: frame})
	}
	b.StopTimer()
	if c.Counter(PeersEnrolled) == 0 {
		b.Fatal("nothing enrolled")
	}
}
