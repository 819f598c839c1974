package proto

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
)

var epoch = time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)

func seeded(t testing.TB, b byte) *identity.Identity {
	t.Helper()
	id, err := identity.FromSeed(bytes.Repeat([]byte{b}, identity.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sessionPair runs a real handshake in memory and returns both ends.
func sessionPair(t testing.TB) (client, server *handshake.Session, cid, sid *identity.Identity) {
	t.Helper()
	clk := clock.NewFake(epoch)
	cid, sid = seeded(t, 1), seeded(t, 2)
	r, err := handshake.NewResponder(handshake.ResponderConfig{Identity: sid, Network: 9, Policy: handshake.OpenPolicy,
		Puzzle: handshake.DefaultPuzzleConfig(), Clock: clk, Rand: rand.Reader, Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := handshake.NewInitiator(handshake.InitiatorConfig{Identity: cid, Network: 9, Server: sid.PublicKey(), Clock: clk, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	from := netip.MustParseAddrPort("192.0.2.1:5000")
	init, _ := c.Init(nil)
	ch, err := r.Challenge(nil, init, from)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Respond(nil, ch)
	if err != nil {
		t.Fatal(err)
	}
	ack, server, err := r.Accept(nil, resp, from)
	if err != nil {
		t.Fatal(err)
	}
	client, err = c.Finish(ack)
	if err != nil {
		t.Fatal(err)
	}
	return client, server, cid, sid
}
