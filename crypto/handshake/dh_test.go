package handshake

import (
	"bytes"
	"crypto/ecdh"
	"testing"

	"github.com/flynn/noise"
)

// noiseSuite is flynn/noise's own suite: the reference the tests hold the
// package's DH to, and what the forging helpers use as an independent
// implementation.
var noiseSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

// TestDHMatchesNoise: x25519 computes exactly what noise.DH25519 computes,
// for keys it knows, keys it does not, and bad points.
func TestDHMatchesNoise(t *testing.T) {
	rng := newRand("dh")
	for i := range 50 {
		ours := &x25519{}
		seed := make([]byte, 64)
		rng.Read(seed)
		a, err := ours.GenerateKeypair(bytes.NewReader(seed[:32]))
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := noise.DH25519.GenerateKeypair(bytes.NewReader(seed[:32]))
		if !bytes.Equal(a.Private, ref.Private) || !bytes.Equal(a.Public, ref.Public) {
			t.Fatalf("%d: key generation differs", i)
		}
		b, _ := noise.DH25519.GenerateKeypair(bytes.NewReader(seed[32:]))
		got, err1 := ours.DH(a.Private, b.Public) // a known key
		want, err2 := noise.DH25519.DH(a.Private, b.Public)
		if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d: DH with a known key differs: %v %v", i, err1, err2)
		}
		got, err1 = ours.DH(b.Private, a.Public) // an unknown key
		if err1 != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d: DH with an unknown key differs: %v", i, err1)
		}
	}
	// Low-order points give an all-zero secret: both refuse.
	k := &x25519{}
	kp, _ := k.GenerateKeypair(newRand("low"))
	for _, p := range [][]byte{make([]byte, 32), append([]byte{1}, make([]byte, 31)...)} {
		if _, err := k.DH(kp.Private, p); err == nil {
			t.Fatalf("low-order point %x accepted", p)
		}
		if _, err := noise.DH25519.DH(kp.Private, p); err == nil {
			t.Fatalf("reference accepted low-order point %x", p)
		}
	}
	if _, err := k.DH(kp.Private, []byte{1, 2, 3}); err == nil {
		t.Fatal("short point accepted")
	}
	// fixed is handed out once, then fresh keys again.
	fk, _ := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{7}, 32))
	f := &x25519{fixed: fk}
	first, _ := f.GenerateKeypair(failingReader{})
	if !bytes.Equal(first.Public, fk.PublicKey().Bytes()) {
		t.Fatal("fixed key not used")
	}
	if _, err := f.GenerateKeypair(failingReader{}); err == nil {
		t.Fatal("fixed key handed out twice")
	}
}

// TestHandshakeMatchesReference runs the server against a client built on
// flynn/noise's own DH (forgeResponse with the client's real keys): the
// DH replacement changes nothing on the wire.
func TestHandshakeMatchesReference(t *testing.T) {
	f := newFixture(t)
	priv, pub := f.client.StaticPrivate(), f.client.StaticPublic()
	resp := forgeResponse(t, f, f.client.PublicKey(), noise.DHKey{Private: priv[:], Public: pub[:]}, f.client.Binding().Sig)
	if _, s, err := f.resp.Accept(nil, resp, clientAddr); err != nil || s.Peer() != f.client.PublicKey() {
		t.Fatalf("server refused a reference client: %v", err)
	}
}
