package handshake

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/identity"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.txt")

func TestHandshake(t *testing.T) {
	f := newFixture(t)
	client, server, tr := f.handshake(f.initiator())
	if len(tr.init) != InitSize || len(tr.challenge) != ChallengeSize {
		t.Fatalf("INIT %d and CHALLENGE %d bytes", len(tr.init), len(tr.challenge))
	}
	if len(tr.challenge) > len(tr.init) {
		t.Fatal("CHALLENGE larger than INIT: amplification")
	}
	if client.ID() != server.ID() || client.ChannelBinding() != server.ChannelBinding() {
		t.Fatal("the two ends disagree on the session id or handshake hash")
	}
	if client.Peer() != f.server.PublicKey() || server.Peer() != f.client.PublicKey() {
		t.Fatal("peers not authenticated as the expected identities")
	}
	if client.PeerStatic() != f.server.StaticPublic() || server.PeerStatic() != f.client.StaticPublic() {
		t.Fatal("peer static keys")
	}
	if string(client.PeerPayload()) != "server terms" || string(server.PeerPayload()) != "client terms" {
		t.Fatalf("payloads %q %q", client.PeerPayload(), server.PeerPayload())
	}
	if client.Role() != RoleInitiator || server.Role() != RoleResponder || client.Network() != testNetwork {
		t.Fatal("roles or network")
	}
	checkMirrored(t, client.Current(), server.Current())
}

// checkMirrored checks that a's send keys are b's receive keys and the
// reverse, and that no key is reused for two purposes or directions.
func checkMirrored(t *testing.T, a, b Keys) {
	t.Helper()
	if a.Generation != b.Generation {
		t.Fatalf("generations %d and %d", a.Generation, b.Generation)
	}
	if a.HopSend != b.HopRecv || a.HopRecv != b.HopSend || a.DataSend != b.DataRecv || a.DataRecv != b.DataSend {
		t.Fatal("send and receive keys do not mirror")
	}
	seen := map[[32]byte]bool{}
	for _, k := range [][32]byte{a.HopSend, a.HopRecv, a.DataSend, a.DataRecv} {
		if seen[k] || k == [32]byte{} {
			t.Fatal("a key is zero or used twice")
		}
		seen[k] = true
	}
}

// TestVectors runs a handshake, a rekey and a close with fixed keys, a fixed
// clock and deterministic randomness, and compares every message and key
// with testdata/vectors.txt (go test -run Vectors -update rewrites it).
func TestVectors(t *testing.T) {
	got := vectors(t)
	if again := vectors(t); again != got {
		t.Fatal("the handshake is not deterministic under injected randomness and clock")
	}
	path := filepath.Join("testdata", "vectors.txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	wl, gl := lines(string(want)), lines(got)
	for i := range max(len(wl), len(gl)) {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			t.Errorf("vector line %d:\n got  %s\n want %s", i+1, g, w)
		}
	}
}

func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func vectors(t *testing.T) string {
	f := newFixture(t, func(c *ResponderConfig) {
		c.Puzzle.Base, c.Puzzle.Flood = 8, 8 // a real puzzle in the vectors
	})
	client, server, tr := f.handshake(f.initiator())
	var b strings.Builder
	put := func(name string, v []byte) { fmt.Fprintf(&b, "%-22s %s\n", name, hex.EncodeToString(v)) }
	sp, cp := f.server.PublicKey(), f.client.PublicKey()
	ss, cs := f.server.StaticPublic(), f.client.StaticPublic()
	fmt.Fprintf(&b, "# poolrelay handshake vectors: server seed 32x11, client seed 32x22, network %d,\n", testNetwork)
	fmt.Fprintf(&b, "# client %v, clock %s, randomness SHA-256(label||counter)\n", clientAddr, newClock().Now().Format(time.RFC3339))
	put("server_ed25519", sp[:])
	put("server_x25519", ss[:])
	put("client_ed25519", cp[:])
	put("client_x25519", cs[:])
	put("init", tr.init)
	put("challenge", tr.challenge)
	put("response", tr.response)
	put("ack", tr.ack)
	id := client.ID()
	put("session_id", id[:])
	putKeys := func(prefix string, k Keys) {
		put(prefix+"hop_i2r", k.HopSend[:])
		put(prefix+"hop_r2i", k.HopRecv[:])
		put(prefix+"data_i2r", k.DataSend[:])
		put(prefix+"data_r2i", k.DataRecv[:])
	}
	putKeys("gen0_", client.Current())
	req, err := client.Rekey(nil)
	if err != nil {
		t.Fatal(err)
	}
	reply, _, err := server.Handle(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Handle(nil, reply); err != nil {
		t.Fatal(err)
	}
	put("rekey_request", req)
	put("rekey_reply", reply)
	putKeys("gen1_", client.Current())
	cl, err := client.Close(nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	put("close", cl)
	return b.String()
}

func TestRespondersRejectINIT(t *testing.T) {
	f := newFixture(t, func(c *ResponderConfig) {
		c.Policy = ListPolicy(seededIdentity(t, 0x22).PublicKey())
	})
	init, _ := f.initiator().Init(nil)
	stranger := newFixture(t)
	stranger.client = seededIdentity(t, 0x33)
	strangerInit, _ := stranger.initiator().Init(nil)
	otherNet, _ := f.initiator(func(c *InitiatorConfig) { c.Network = 8 }).Init(nil)
	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		{"truncated", init[:InitSize-1], ErrTruncated},
		{"extended", append(bytes.Clone(init), 0), ErrTruncated},
		{"empty", nil, ErrTruncated},
		{"version", flip(init, 0), ErrVersion},
		{"kind", flip(init, 1), ErrMalformed},
		{"reserved", flip(init, 6), ErrMalformed},
		{"padding", flip(init, InitSize-1), ErrMalformed},
		{"wrong network", otherNet, ErrWrongNetwork},
		{"not enrolled", strangerInit, ErrNotEnrolled},
	}
	for _, c := range cases {
		if _, err := f.resp.Challenge(nil, c.msg, clientAddr); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := f.resp.Challenge(nil, init, clientAddr); err != nil {
		t.Fatalf("listed client: %v", err)
	}
}

func TestResponderRejectsRESPONSE(t *testing.T) {
	hard := func(c *ResponderConfig) { c.Puzzle.Base, c.Puzzle.Flood = 10, 10 }

	t.Run("forged cookie", func(t *testing.T) {
		f := newFixture(t)
		tr := f.toResponse(f.initiator(), clientAddr)
		if _, _, err := f.resp.Accept(nil, flip(tr.response, 20), clientAddr); !errors.Is(err, ErrBadCookie) {
			t.Fatalf("%v, want ErrBadCookie", err)
		}
	})
	t.Run("other address", func(t *testing.T) {
		f := newFixture(t)
		tr := f.toResponse(f.initiator(), clientAddr)
		if _, _, err := f.resp.Accept(nil, tr.response, otherAddr); !errors.Is(err, ErrBadCookie) {
			t.Fatalf("%v, want ErrBadCookie", err)
		}
	})
	t.Run("cookie for another ephemeral", func(t *testing.T) {
		f := newFixture(t)
		tr := f.toResponse(f.initiator(), clientAddr)
		if _, _, err := f.resp.Accept(nil, flip(tr.response, responseFixed+5), clientAddr); !errors.Is(err, ErrBadCookie) {
			t.Fatalf("%v, want ErrBadCookie", err)
		}
	})
	t.Run("difficulty lowered", func(t *testing.T) {
		f := newFixture(t, hard)
		tr := f.toResponse(f.initiator(), clientAddr)
		low := bytes.Clone(tr.response)
		low[6] = 0
		if _, _, err := f.resp.Accept(nil, low, clientAddr); !errors.Is(err, ErrBadCookie) {
			t.Fatalf("%v, want ErrBadCookie", err)
		}
	})
	t.Run("stale", func(t *testing.T) {
		f := newFixture(t)
		tr := f.toResponse(f.initiator(), clientAddr)
		f.clock.Advance(2 * DefaultCookieBucket)
		if _, _, err := f.resp.Accept(nil, tr.response, clientAddr); !errors.Is(err, ErrCookieExpired) {
			t.Fatalf("%v, want ErrCookieExpired", err)
		}
	})
	t.Run("previous bucket still valid", func(t *testing.T) {
		f := newFixture(t)
		tr := f.toResponse(f.initiator(), clientAddr)
		f.clock.Advance(DefaultCookieBucket)
		if _, _, err := f.resp.Accept(nil, tr.response, clientAddr); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("clock stepped back", func(t *testing.T) {
		f := newFixture(t)
		f.clock.Advance(3 * DefaultCookieBucket)
		tr := f.toResponse(f.initiator(), clientAddr)
		f.clock.Advance(-2 * time.Hour) // buckets never move backwards
		if _, _, err := f.resp.Accept(nil, tr.response, clientAddr); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("future bucket", func(t *testing.T) {
		f := newFixture(t)
		tr := f.toResponse(f.initiator(), clientAddr)
		fut := bytes.Clone(tr.response)
		fut[15]++
		if _, _, err := f.resp.Accept(nil, fut, clientAddr); !errors.Is(err, ErrBadCookie) {
			t.Fatalf("%v, want ErrBadCookie", err)
		}
	})
	t.Run("wrong solution", func(t *testing.T) {
		f := newFixture(t, hard)
		tr := f.toResponse(f.initiator(), clientAddr)
		if _, _, err := f.resp.Accept(nil, flip(tr.response, 39), clientAddr); !errors.Is(err, ErrPuzzle) {
			t.Fatalf("%v, want ErrPuzzle", err)
		}
	})
	t.Run("replayed", func(t *testing.T) {
		f := newFixture(t)
		_, server, tr := f.handshake(f.initiator())
		_, _, err := f.resp.Accept(nil, tr.response, clientAddr)
		if !errors.Is(err, ErrReplay) {
			t.Fatalf("%v, want ErrReplay", err)
		}
		if server.InitiatorEphemeral() != [32]byte(tr.response[responseFixed:responseFixed+32]) {
			t.Fatal("session does not record the initiator ephemeral")
		}
	})
	t.Run("replayed after filter rotation", func(t *testing.T) {
		f := newFixture(t)
		_, _, tr := f.handshake(f.initiator())
		f.clock.Advance(DefaultCookieBucket)
		if _, _, err := f.resp.Accept(nil, tr.response, clientAddr); !errors.Is(err, ErrReplay) {
			t.Fatalf("one bucket later: %v, want ErrReplay", err)
		}
		f.clock.Advance(DefaultCookieBucket)
		if _, _, err := f.resp.Accept(nil, tr.response, clientAddr); !errors.Is(err, ErrCookieExpired) {
			t.Fatalf("two buckets later: %v, want ErrCookieExpired", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		f := newFixture(t)
		tr := f.toResponse(f.initiator(), clientAddr)
		for _, n := range []int{0, 8, responseFixed, ResponseMinSize - 1} {
			if _, _, err := f.resp.Accept(nil, tr.response[:n], clientAddr); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%d bytes: %v, want ErrTruncated", n, err)
			}
		}
		// Cutting the payload keeps a valid length but breaks Noise.
		if _, _, err := f.resp.Accept(nil, tr.response[:len(tr.response)-1], clientAddr); !errors.Is(err, ErrAuth) {
			t.Fatalf("short payload: %v, want ErrAuth", err)
		}
	})
	t.Run("wrong network", func(t *testing.T) {
		f := newFixture(t)
		tr := f.toResponse(f.initiator(), clientAddr)
		bad := bytes.Clone(tr.response)
		bad[5]++
		if _, _, err := f.resp.Accept(nil, bad, clientAddr); !errors.Is(err, ErrWrongNetwork) {
			t.Fatalf("%v, want ErrWrongNetwork", err)
		}
	})
	t.Run("tampered noise", func(t *testing.T) {
		f := newFixture(t)
		tr := f.toResponse(f.initiator(), clientAddr)
		for _, i := range []int{responseFixed + 40, len(tr.response) - 1} {
			if _, _, err := f.resp.Accept(nil, flip(tr.response, i), clientAddr); !errors.Is(err, ErrAuth) {
				t.Fatalf("byte %d: %v, want ErrAuth", i, err)
			}
		}
	})
	t.Run("policy changed", func(t *testing.T) {
		allow := true
		f := newFixture(t, func(c *ResponderConfig) {
			c.Policy = func(identity.PublicKey) bool { return allow }
		})
		tr := f.toResponse(f.initiator(), clientAddr)
		allow = false
		if _, _, err := f.resp.Accept(nil, tr.response, clientAddr); !errors.Is(err, ErrNotEnrolled) {
			t.Fatalf("%v, want ErrNotEnrolled", err)
		}
	})
	t.Run("forged client binding", func(t *testing.T) {
		f := newFixture(t)
		c := f.initiator()
		c.payload[3] ^= 1 // the binding signature inside the Noise payload
		tr := f.toResponse(c, clientAddr)
		if _, _, err := f.resp.Accept(nil, tr.response, clientAddr); !errors.Is(err, ErrBadBinding) {
			t.Fatalf("%v, want ErrBadBinding", err)
		}
	})
}

// An attacker that claims another identity in INIT and RESPONSE gets a
// cookie (INIT is unauthenticated) but cannot complete the handshake:
// with its own static key the victim's binding does not cover it
// (ErrBadBinding); presenting the victim's static key it cannot do the DH
// (ErrAuth).
func TestImpersonation(t *testing.T) {
	victim := seededIdentity(t, 0x22)
	attacker := seededIdentity(t, 0x44)
	apriv, apub := attacker.StaticPrivate(), attacker.StaticPublic()
	vpub := victim.StaticPublic()
	for _, tc := range []struct {
		name   string
		static noise.DHKey
		want   error
	}{
		{"own static key", noise.DHKey{Private: apriv[:], Public: apub[:]}, ErrBadBinding},
		{"victim's static key", noise.DHKey{Private: apriv[:], Public: vpub[:]}, ErrAuth},
	} {
		// Cold: the server never saw the victim. Warm: the victim completed
		// a handshake before, so its binding and static-static DH are
		// cached; the cache must not let the impostor through either.
		for _, warm := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s warm=%v", tc.name, warm), func(t *testing.T) {
				f := newFixture(t)
				if warm {
					f.handshake(f.initiator())
					if f.resp.peers.staticDH(victim.PublicKey()) == nil {
						t.Fatal("the victim's handshake was not cached")
					}
				}
				resp := forgeResponse(t, f, victim.PublicKey(), tc.static, victim.Binding().Sig)
				if _, _, err := f.resp.Accept(nil, resp, clientAddr); !errors.Is(err, tc.want) {
					t.Fatalf("%v, want %v", err, tc.want)
				}
			})
		}
	}
	// The forging helper itself is sound: with the real identity's keys it
	// produces a RESPONSE the server accepts.
	f := newFixture(t)
	vpriv := victim.StaticPrivate()
	resp := forgeResponse(t, f, victim.PublicKey(), noise.DHKey{Private: vpriv[:], Public: vpub[:]}, victim.Binding().Sig)
	if _, _, err := f.resp.Accept(nil, resp, clientAddr); err != nil {
		t.Fatalf("control case: %v", err)
	}
}

// forgeResponse builds INIT and RESPONSE by hand, claiming identity
// claimed while using static for Noise and sig as the binding signature.
func forgeResponse(t *testing.T, f *fixture, claimed identity.PublicKey, static noise.DHKey, sig [64]byte) []byte {
	t.Helper()
	var ephPriv [32]byte
	newRand("forger").Read(ephPriv[:])
	k, _ := ecdh.X25519().NewPrivateKey(ephPriv[:])
	init := Init{Network: testNetwork, Identity: claimed, Ephemeral: [32]byte(k.PublicKey().Bytes())}
	ib, _ := init.AppendBinary(nil)
	chb, err := f.resp.Challenge(nil, ib, clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := ParseChallenge(chb)
	p := newPuzzleInput(&ch.Cookie, &init.Ephemeral)
	r := Response{Network: testNetwork, Difficulty: ch.Difficulty, Bucket: ch.Bucket, Cookie: ch.Cookie,
		Solution: p.solve(ch.Difficulty), Identity: claimed}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: noiseSuite, Random: bytes.NewReader(ephPriv[:]), Pattern: noise.HandshakeIK,
		Initiator: true, Prologue: prologue(r.appendFixed(nil), ch.Server.Identity),
		StaticKeypair: static, PeerStatic: ch.Server.Static[:],
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Noise, _, _, err = hs.WriteMessage(nil, sig[:]); err != nil {
		t.Fatal(err)
	}
	out, err := r.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A returning peer's handshake uses the cached binding and static-static
// DH, and ends with the same keys as a cold one would.
func TestPeerCache(t *testing.T) {
	f := newFixture(t)
	f.handshake(f.initiator())
	e := f.resp.peers.entries[f.client.PublicKey()]
	if e == nil || e.dh == nil || e.dh.peer != f.client.StaticPublic() {
		t.Fatal("no cache entry with the static-static DH after a handshake")
	}
	// Warm handshake, checked against a cold server in the same state.
	cold := newFixture(t)
	c1, s1, _ := f.handshake(f.initiator(func(c *InitiatorConfig) { c.Rand = newRand("again") }))
	c2, s2, _ := cold.handshake(cold.initiator(func(c *InitiatorConfig) { c.Rand = newRand("again") }))
	if c1.Peer() != c2.Peer() || s1.Peer() != s2.Peer() {
		t.Fatal("warm and cold handshakes authenticated different peers")
	}
	checkMirrored(t, c1.Current(), s1.Current())
	// The cache is bounded.
	for i := range maxKnownPeers + 1 {
		var k [32]byte
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		f.resp.peers.remember(identity.PublicKey(k), k, make([]byte, 64), &x25519{})
	}
	if n := len(f.resp.peers.entries); n > maxKnownPeers {
		t.Fatalf("peer cache grew to %d", n)
	}
}

func TestInitiatorRejectsCHALLENGE(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t)
	other.server = seededIdentity(t, 0x55)
	other.resp = newFixture(t, func(c *ResponderConfig) { c.Identity = other.server }).resp

	fresh := func(mut ...func(*InitiatorConfig)) (*Initiator, []byte) {
		c := f.initiator(mut...)
		init, _ := c.Init(nil)
		ch, err := f.resp.Challenge(nil, init, clientAddr)
		if err != nil {
			t.Fatal(err)
		}
		return c, ch
	}
	c, ch := fresh()
	// A CHALLENGE from another server, for this client's INIT.
	init, _ := c.Init(nil)
	otherCh, _ := other.resp.Challenge(nil, init, clientAddr)
	// A CHALLENGE for another INIT.
	c2 := f.initiator(func(c *InitiatorConfig) { c.Rand = newRand("someone else") })
	init2, _ := c2.Init(nil)
	ch2, _ := f.resp.Challenge(nil, init2, clientAddr)
	hard := newFixture(t, func(c *ResponderConfig) { c.Puzzle.Base, c.Puzzle.Flood, c.Puzzle.Max = 30, 30, 30 })
	hardCh, _ := hard.resp.Challenge(nil, init, clientAddr)
	badNet := bytes.Clone(ch)
	badNet[5]++

	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		{"truncated", ch[:ChallengeSize-1], ErrTruncated},
		{"version", flip(ch, 0), ErrVersion},
		{"kind", flip(ch, 1), ErrMalformed},
		{"reserved", flip(ch, 7), ErrMalformed},
		{"wrong network", badNet, ErrWrongNetwork},
		{"other INIT", ch2, ErrMismatch},
		{"forged binding", flip(ch, ChallengeSize-1), ErrBadBinding},
		{"forged binding key", flip(ch, 64+40), ErrBadBinding},
		{"wrong server", otherCh, ErrWrongPeer},
		{"too hard", hardCh, ErrDifficulty},
	}
	for _, tc := range cases {
		if _, err := c.Respond(nil, tc.msg); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Server addresses: the node id must match the proven identity.
	good := address.New(address.TypeRelay, 1, 1, f.server.PublicKey())
	bad := address.New(address.TypeRelay, 1, 1, other.server.PublicKey())
	anyServer := func(c *InitiatorConfig) { c.Server = identity.PublicKey{} }
	cb, chb := fresh(anyServer, func(c *InitiatorConfig) { c.ServerAddress = bad })
	if _, err := cb.Respond(nil, chb); !errors.Is(err, ErrWrongPeer) {
		t.Errorf("address of another node: %v, want ErrWrongPeer", err)
	}
	cg, chg := fresh(anyServer, func(c *InitiatorConfig) { c.ServerAddress = good })
	if _, err := cg.Respond(nil, chg); err != nil {
		t.Errorf("matching address: %v", err)
	}
	// The genuine CHALLENGE still works after all those rejections, and
	// answering it again yields the same RESPONSE (retransmission).
	r1, err := c.Respond(nil, ch)
	if err != nil {
		t.Fatal(err)
	}
	if r2, err := c.Respond(nil, ch); err != nil || !bytes.Equal(r1, r2) {
		t.Fatalf("retransmission: %v", err)
	}
	if _, err := c.Init(nil); !errors.Is(err, ErrState) {
		t.Fatalf("Init after Respond: %v", err)
	}
}

func TestInitiatorRejectsACK(t *testing.T) {
	f := newFixture(t)
	c := f.initiator()
	if _, err := c.Finish(make([]byte, AckMinSize)); !errors.Is(err, ErrState) {
		t.Fatalf("Finish before Respond: %v", err)
	}
	tr := f.toResponse(c, clientAddr)
	ack, _, err := f.resp.Accept(nil, tr.response, clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	// An ACK from a different handshake (same server, other client attempt).
	c2 := f.initiator(func(c *InitiatorConfig) { c.Rand = newRand("c2") })
	tr2 := f.toResponse(c2, clientAddr)
	ack2, _, err := f.resp.Accept(nil, tr2.response, clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	badNet := bytes.Clone(ack)
	badNet[2]++
	lowOrder := bytes.Clone(ack)
	clear(lowOrder[headerSize : headerSize+32]) // an all-zero e: the DH fails
	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		{"truncated", ack[:AckMinSize-1], ErrTruncated},
		{"version", flip(ack, 0), ErrVersion},
		{"kind", flip(ack, 1), ErrMalformed},
		{"wrong network", badNet, ErrWrongNetwork},
		{"forged", flip(ack, len(ack)-1), ErrAuth},
		{"forged ephemeral", flip(ack, headerSize), ErrAuth},
		{"low-order ephemeral", lowOrder, ErrAuth},
		{"other handshake", ack2, ErrAuth},
	}
	for _, tc := range cases {
		if _, err := c.Finish(tc.msg); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// None of that broke the attempt: the genuine ACK completes it.
	s, err := c.Finish(ack)
	if err != nil {
		t.Fatalf("genuine ACK after forgeries: %v", err)
	}
	if s.Peer() != f.server.PublicKey() {
		t.Fatal("wrong peer")
	}
	if _, err := c.Finish(ack); !errors.Is(err, ErrState) {
		t.Fatalf("second Finish: %v", err)
	}
}

// TestNetworkSeparation: a client of network 8 gets nowhere with a server
// of network 7, at any step, even with messages rewritten to say 7.
func TestNetworkSeparation(t *testing.T) {
	f := newFixture(t)
	c := f.initiator(func(c *InitiatorConfig) { c.Network = 8 })
	init, _ := c.Init(nil)
	if _, err := f.resp.Challenge(nil, init, clientAddr); !errors.Is(err, ErrWrongNetwork) {
		t.Fatalf("INIT: %v", err)
	}
	// Rewrite the INIT to network 7: the server answers, but the client
	// refuses a CHALLENGE of network 7.
	init[5] = testNetwork
	ch, err := f.resp.Challenge(nil, init, clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Respond(nil, ch); !errors.Is(err, ErrWrongNetwork) {
		t.Fatalf("CHALLENGE: %v", err)
	}
	// Rewrite the CHALLENGE to 8 too: the client answers for network 8,
	// which the server refuses; rewritten back to 7 the cookie fails.
	ch[5] = 8
	resp, err := c.Respond(nil, ch)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.resp.Accept(nil, resp, clientAddr); !errors.Is(err, ErrWrongNetwork) {
		t.Fatalf("RESPONSE: %v", err)
	}
	resp[5] = testNetwork
	if _, _, err := f.resp.Accept(nil, resp, clientAddr); err == nil {
		t.Fatal("a RESPONSE made for network 8 was accepted by network 7")
	}
}

func TestFloodRaisesDifficulty(t *testing.T) {
	f := newFixture(t, func(c *ResponderConfig) {
		c.Puzzle = PuzzleConfig{Base: 0, Flood: 8, Max: 14, FloodRate: 2000, HalfLife: 5 * time.Second}
	})
	init, _ := f.initiator().Init(nil)
	dst := make([]byte, 0, ChallengeSize)
	if f.resp.Difficulty() != 0 {
		t.Fatal("difficulty before the flood")
	}
	// 500,000 INIT/s for one second.
	for range 500_000 {
		f.clock.Advance(2 * time.Microsecond)
		if _, err := f.resp.Challenge(dst, init, clientAddr); err != nil {
			t.Fatal(err)
		}
	}
	// 8 + floor(log2(500000/2000)) = 8 + 7 = 15, capped at 14.
	if d := f.resp.Difficulty(); d != 14 {
		t.Fatalf("difficulty %d under a 500k/s flood (rate %.0f/s), want 14", d, f.resp.InitRate())
	}
	ch, _ := f.resp.Challenge(nil, init, clientAddr)
	if ch[6] != 14 {
		t.Fatalf("CHALLENGE carries difficulty %d", ch[6])
	}
	// A legitimate client still gets through, solving the harder puzzle.
	c := f.initiator()
	client, server, _ := f.handshake(c)
	if client.ID() != server.ID() {
		t.Fatal("handshake under flood")
	}
	// The flood stops; a trickle of INITs continues. The difficulty falls
	// back to the base within a few half-lives.
	for range 60 {
		f.clock.Advance(time.Second)
		f.resp.Challenge(dst, init, clientAddr)
	}
	if d := f.resp.Difficulty(); d != 0 {
		t.Fatalf("difficulty %d a minute after the flood (rate %.1f/s)", d, f.resp.InitRate())
	}
	// Runtime adjustment, both ways. The estimate is still decaying from the
	// flood (about 500000/2^12 per second after twelve half-lives).
	if err := f.resp.SetPuzzle(PuzzleConfig{Base: 5, Flood: 9, Max: 12, FloodRate: 1e6, HalfLife: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if f.resp.Difficulty() != 5 {
		t.Fatalf("SetPuzzle: difficulty %d (rate %.1f/s), want the base 5", f.resp.Difficulty(), f.resp.InitRate())
	}
	if err := f.resp.SetPuzzle(PuzzleConfig{Base: 5, Flood: 9, Max: 12, FloodRate: 10, HalfLife: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if f.resp.Difficulty() != 12 {
		t.Fatalf("SetPuzzle: difficulty %d (rate %.1f/s), want the max 12", f.resp.Difficulty(), f.resp.InitRate())
	}
	if err := f.resp.SetPuzzle(PuzzleConfig{Base: 5, Flood: 4, Max: 40, FloodRate: 0}); err == nil {
		t.Fatal("invalid puzzle config accepted")
	}
}

// A flood of INITs that the policy refuses does not raise the difficulty.
func TestRefusedFloodDoesNotRaiseDifficulty(t *testing.T) {
	f := newFixture(t, func(c *ResponderConfig) { c.Policy = ListPolicy(seededIdentity(t, 0x22).PublicKey()) })
	stranger := newFixture(t)
	stranger.client = seededIdentity(t, 0x66)
	init, _ := stranger.initiator().Init(nil)
	for range 100_000 {
		f.clock.Advance(2 * time.Microsecond)
		if _, err := f.resp.Challenge(nil, init, clientAddr); !errors.Is(err, ErrNotEnrolled) {
			t.Fatal(err)
		}
	}
	if d := f.resp.Difficulty(); d != 0 {
		t.Fatalf("difficulty %d after a flood of refused INITs", d)
	}
}

func TestDifficultyCurve(t *testing.T) {
	c := PuzzleConfig{Base: 2, Flood: 10, Max: 20, FloodRate: 1000, HalfLife: time.Second}
	for _, tc := range []struct {
		rate float64
		want uint8
	}{{0, 2}, {1000, 2}, {1001, 10}, {1999, 10}, {2000, 11}, {4000, 12}, {1e6, 19}, {1e9, 20}} {
		if got := c.difficultyFor(tc.rate); got != tc.want {
			t.Errorf("rate %v: %d, want %d", tc.rate, got, tc.want)
		}
	}
}

func TestPuzzle(t *testing.T) {
	var cookie [CookieSize]byte
	var eph [32]byte
	cookie[0], eph[0] = 1, 2
	p := newPuzzleInput(&cookie, &eph)
	for d := uint8(0); d <= 12; d++ {
		s := p.solve(d)
		if !p.ok(s, d) {
			t.Fatalf("difficulty %d: solution %d does not verify", d, s)
		}
		if d > 0 && s > 0 && p.ok(s-1, d) {
			t.Fatalf("difficulty %d: solve skipped solution %d", d, s-1)
		}
	}
	// A different cookie is a different puzzle.
	s := p.solve(12)
	cookie[0] = 9
	q := newPuzzleInput(&cookie, &eph)
	if q.ok(s, 12) && q.solve(12) == s {
		t.Fatal("solution independent of the cookie")
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := NewResponder(ResponderConfig{}); err == nil {
		t.Fatal("empty responder config accepted")
	}
	if _, err := NewInitiator(InitiatorConfig{}); err == nil {
		t.Fatal("empty initiator config accepted")
	}
	f := newFixture(t)
	_, err := NewResponder(ResponderConfig{
		Identity: f.server, Policy: OpenPolicy, Puzzle: DefaultPuzzleConfig(),
		Clock: f.clock, Rand: newRand("x"), Payload: make([]byte, MaxPayload+1),
	})
	if err == nil {
		t.Fatal("oversized payload accepted")
	}
}

func TestChallengeNoAllocs(t *testing.T) {
	f := newFixture(t)
	init, _ := f.initiator().Init(nil)
	dst := make([]byte, 0, ChallengeSize)
	n := testing.AllocsPerRun(1000, func() {
		f.clock.Advance(time.Microsecond)
		if _, err := f.resp.Challenge(dst[:0], init, clientAddr); err != nil {
			panic(err)
		}
	})
	if n != 0 {
		t.Fatalf("Challenge allocates %v times per INIT", n)
	}
}
