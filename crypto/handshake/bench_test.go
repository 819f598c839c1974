package handshake

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/cputime"
	"github.com/poolrelay/poolrelay/internal/logging"
)

// The benchmarks use the real clock and crypto/rand, as in production.

func benchResponder(b *testing.B, difficulty uint8) *Responder {
	b.Helper()
	r, err := NewResponder(ResponderConfig{
		Identity: benchServer,
		Network:  testNetwork,
		Policy:   OpenPolicy,
		Puzzle: PuzzleConfig{Base: difficulty, Flood: max(difficulty, 16), Max: max(difficulty, 24),
			FloodRate: 1e12, HalfLife: 10 * time.Second},
		Clock: clock.System{},
		Rand:  rand.Reader,
		Log:   logging.Nop(),
	})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// benchClient and benchServer are made once: identity set-up (key
// derivation, binding signature) is not part of a handshake.
var benchClient, benchServer = mustIdentity(0x22), mustIdentity(0x11)

func mustIdentity(b byte) *identity.Identity {
	id, err := identity.FromSeed(bytes.Repeat([]byte{b}, identity.SeedSize))
	if err != nil {
		panic(err)
	}
	return id
}

func benchInitiator(b *testing.B) *Initiator { return benchInitiatorFor(b, benchClient) }

func benchInitiatorFor(b *testing.B, id *identity.Identity) *Initiator {
	b.Helper()
	c, err := NewInitiator(InitiatorConfig{
		Identity: id,
		Network:  testNetwork,
		Server:   benchServer.PublicKey(),
		Clock:    clock.System{},
		Rand:     rand.Reader,
	})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkChallenge is the INIT flood path: parse, rate estimate, policy,
// cookie. Each op is one INIT answered.
func BenchmarkChallenge(b *testing.B) {
	r := benchResponder(b, 0)
	init, _ := benchInitiator(b).Init(nil)
	dst := make([]byte, 0, ChallengeSize)
	from := netip.MustParseAddrPort("[2001:db8::1]:9254")
	b.ReportAllocs()
	m := cputime.Start()
	for b.Loop() {
		if _, err := r.Challenge(dst, init, from); err != nil {
			b.Fatal(err)
		}
	}
	m.Report(b)
}

// BenchmarkHandshake is a whole handshake, both ends on one core: the
// client's ephemeral, INIT, CHALLENGE, RESPONSE (IK message 1), ACK (IK
// message 2, binding verification), Finish. The client returns each time,
// so the server side runs warm (see BenchmarkAccept for both cases).
func BenchmarkHandshake(b *testing.B) {
	r := benchResponder(b, 0)
	b.ReportAllocs()
	m := cputime.Start()
	for b.Loop() {
		c := benchInitiator(b)
		init, _ := c.Init(nil)
		ch, err := r.Challenge(nil, init, clientAddr)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := c.Respond(nil, ch)
		if err != nil {
			b.Fatal(err)
		}
		ack, _, err := r.Accept(nil, resp, clientAddr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Finish(ack); err != nil {
			b.Fatal(err)
		}
	}
	m.Report(b)
}

// BenchmarkAccept is the server's share of a handshake: what bounds how many
// handshakes per second a relay core completes. RESPONSEs are prepared in
// batches outside the timer. new-peer: every client identity is new (an
// enrollment wave, or a flood of fresh identities that solved the puzzle);
// returning-peer: the same identity again (its binding and static-static
// DH are cached).
func BenchmarkAccept(b *testing.B) {
	for _, returning := range []bool{false, true} {
		name := "new-peer"
		if returning {
			name = "returning-peer"
		}
		b.Run(name, func(b *testing.B) {
			r := benchResponder(b, 0)
			var batch [][]byte
			b.ReportAllocs()
			b.ResetTimer()
			m := cputime.Start()
			for i := 0; i < b.N; i++ {
				if len(batch) == 0 {
					b.StopTimer()
					m.Pause()
					for range 64 {
						id := benchClient
						if !returning {
							seed := make([]byte, identity.SeedSize)
							rand.Read(seed)
							id, _ = identity.FromSeed(seed)
						}
						c := benchInitiatorFor(b, id)
						init, _ := c.Init(nil)
						ch, _ := r.Challenge(nil, init, clientAddr)
						resp, err := c.Respond(nil, ch)
						if err != nil {
							b.Fatal(err)
						}
						batch = append(batch, resp)
					}
					m.Resume()
					b.StartTimer()
				}
				if _, _, err := r.Accept(nil, batch[0], clientAddr); err != nil {
					b.Fatal(err)
				}
				batch = batch[1:]
			}
			m.Report(b)
		})
	}
}

// BenchmarkRekey is one rekey exchange, both ends.
func BenchmarkRekey(b *testing.B) {
	fx := newFixture(b)
	client, server, _ := fx.handshake(fx.initiator())
	b.ReportAllocs()
	m := cputime.Start()
	defer m.Report(b)
	for b.Loop() {
		req, err := client.Rekey(nil)
		if err != nil {
			b.Fatal(err)
		}
		reply, _, err := server.Handle(nil, req)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := client.Handle(nil, reply); err != nil {
			b.Fatal(err)
		}
		server.Confirm()
	}
}

// BenchmarkPuzzle is the client's cost per puzzle at a few difficulties.
func BenchmarkPuzzle(b *testing.B) {
	for _, d := range []uint8{8, 12, 16} {
		b.Run(fmt.Sprint(d), func(b *testing.B) {
			var cookie [CookieSize]byte
			var eph [32]byte
			for i := 0; b.Loop(); i++ {
				cookie[0], cookie[1] = byte(i), byte(i>>8)
				p := newPuzzleInput(&cookie, &eph)
				p.solve(d)
			}
		})
	}
}

// BenchmarkX25519 is the unit the handshake costs are counted in.
func BenchmarkX25519(b *testing.B) {
	k, _ := ecdh.X25519().GenerateKey(rand.Reader)
	p, _ := ecdh.X25519().GenerateKey(rand.Reader)
	m := cputime.Start()
	defer m.Report(b)
	for b.Loop() {
		if _, err := k.ECDH(p.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}
