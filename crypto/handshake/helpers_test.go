package handshake

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
)

// newClock is the tests' fake clock, at a fixed start.
func newClock() *clock.Fake { return clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

// detRand is a deterministic byte stream: SHA-256(label || counter) blocks.
// Handshakes driven by it produce the same bytes on every run.
type detRand struct {
	label string
	ctr   uint64
	buf   []byte
}

func newRand(label string) *detRand { return &detRand{label: label} }

func (r *detRand) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) {
		in := binary.BigEndian.AppendUint64([]byte(r.label), r.ctr)
		r.ctr++
		h := sha256.Sum256(in)
		r.buf = append(r.buf, h[:]...)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func seededIdentity(t testing.TB, b byte) *identity.Identity {
	t.Helper()
	id, err := identity.FromSeed(bytes.Repeat([]byte{b}, identity.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

const testNetwork = 7

var (
	clientAddr = netip.MustParseAddrPort("192.0.2.10:40000")
	otherAddr  = netip.MustParseAddrPort("192.0.2.11:40000")
)

// fixture is a server and the means to make clients for it, all on one fake
// clock and deterministic randomness.
type fixture struct {
	t      testing.TB
	clock  *clock.Fake
	server *identity.Identity
	client *identity.Identity
	resp   *Responder
}

func newFixture(t testing.TB, mutate ...func(*ResponderConfig)) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: newClock(), server: seededIdentity(t, 0x11), client: seededIdentity(t, 0x22)}
	cfg := ResponderConfig{
		Identity: f.server,
		Network:  testNetwork,
		Policy:   OpenPolicy,
		Puzzle:   DefaultPuzzleConfig(),
		Payload:  []byte("server terms"),
		Clock:    f.clock,
		Rand:     newRand("server"),
		Log:      logging.Nop(),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	r, err := NewResponder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.resp = r
	return f
}

func (f *fixture) initiator(mutate ...func(*InitiatorConfig)) *Initiator {
	f.t.Helper()
	cfg := InitiatorConfig{
		Identity: f.client,
		Network:  testNetwork,
		Server:   f.server.PublicKey(),
		Payload:  []byte("client terms"),
		Clock:    f.clock,
		Rand:     newRand("client"),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := NewInitiator(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// transcript is one handshake's messages.
type transcript struct {
	init, challenge, response, ack []byte
}

// run drives a handshake to its RESPONSE, failing the test on any error.
func (f *fixture) toResponse(c *Initiator, from netip.AddrPort) transcript {
	f.t.Helper()
	var tr transcript
	var err error
	if tr.init, err = c.Init(nil); err != nil {
		f.t.Fatal(err)
	}
	if tr.challenge, err = f.resp.Challenge(nil, tr.init, from); err != nil {
		f.t.Fatal(err)
	}
	if tr.response, err = c.Respond(nil, tr.challenge); err != nil {
		f.t.Fatal(err)
	}
	return tr
}

// handshake runs a whole handshake and returns both sessions.
func (f *fixture) handshake(c *Initiator) (client, server *Session, tr transcript) {
	f.t.Helper()
	tr = f.toResponse(c, clientAddr)
	var err error
	tr.ack, server, err = f.resp.Accept(nil, tr.response, clientAddr)
	if err != nil {
		f.t.Fatal(err)
	}
	if client, err = c.Finish(tr.ack); err != nil {
		f.t.Fatal(err)
	}
	return client, server, tr
}

// flip returns a copy of b with byte i changed.
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}
