package handshake

import (
	"bytes"
	"crypto/ecdh"
	"fmt"
	"io"

	"github.com/flynn/noise"
)

// x25519 is Noise's DH function ("25519") over crypto/ecdh, for one
// handshake. flynn/noise's own DH25519 calls x/crypto/curve25519.X25519,
// which builds an ecdh.PrivateKey on every call, and building one computes
// its public half: every Diffie-Hellman cost two scalar multiplications,
// and key generation two as well (measured: a server handshake took ten
// multiplications' worth of CPU instead of five). x25519 keeps the
// ecdh.PrivateKey of the static key and of each ephemeral it generates, so
// each DH is one multiplication and each key generation one.
//
// The arithmetic is crypto/ecdh's; the outputs are byte for byte those of
// DH25519 (TestDHMatchesNoise), including the rejection of low-order points
// (an all-zero shared secret is an error).
type x25519 struct {
	keys []*ecdh.PrivateKey
	// known, if set, is a Diffie-Hellman already computed: the responder's
	// static key with a returning peer's static key (see peerCache).
	known *knownDH
	// computed records every DH this handshake did with its first key (the
	// static key), so that the responder can remember the peer's.
	computed []knownDH
	// fixed, if set, is what the next GenerateKeypair returns instead of a
	// new key: the initiator's ephemeral, announced in INIT before Noise
	// starts.
	fixed *ecdh.PrivateKey
}

// newSuite returns the cipher suite, Noise_*_25519_ChaChaPoly_SHA256, with d
// as its DH. X25519 because the identities' static keys are X25519 keys
// (crypto/identity); ChaCha20-Poly1305 and SHA-256 as the handshake's AEAD
// and hash (a handshake is a few short messages whose cost is all in
// X25519, so the suite is chosen for ubiquity, not speed).
func newSuite(d *x25519) noise.CipherSuite {
	return noise.NewCipherSuite(d, noise.CipherChaChaPoly, noise.HashSHA256)
}

func (d *x25519) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	k := d.fixed
	d.fixed = nil
	if k == nil {
		// Read exactly 32 bytes, as DH25519 does (ecdh.GenerateKey may read
		// one more at random), so a seeded rng gives the same keys.
		var b [32]byte
		if _, err := io.ReadFull(rng, b[:]); err != nil {
			return noise.DHKey{}, fmt.Errorf("handshake: reading randomness: %w", err)
		}
		var err error
		if k, err = ecdh.X25519().NewPrivateKey(b[:]); err != nil {
			return noise.DHKey{}, fmt.Errorf("handshake: %w", err)
		}
	}
	d.keys = append(d.keys, k)
	return noise.DHKey{Private: k.Bytes(), Public: k.PublicKey().Bytes()}, nil
}

// knownDH is the result of DH(static private key, peer) for one peer key.
type knownDH struct {
	peer   [32]byte
	secret [32]byte
}

func (d *x25519) DH(priv, pub []byte) ([]byte, error) {
	static := len(d.keys) > 0 && bytes.Equal(d.keys[0].Bytes(), priv)
	if static && d.known != nil && bytes.Equal(d.known.peer[:], pub) {
		return bytes.Clone(d.known.secret[:]), nil
	}
	out, err := d.dh(priv, pub)
	if err == nil && static && len(pub) == 32 {
		d.computed = append(d.computed, knownDH{peer: [32]byte(pub), secret: [32]byte(out)})
	}
	return out, err
}

func (d *x25519) dh(priv, pub []byte) ([]byte, error) {
	var k *ecdh.PrivateKey
	for _, c := range d.keys {
		if bytes.Equal(c.Bytes(), priv) {
			k = c
			break
		}
	}
	if k == nil {
		// A key this handshake did not create or receive: correct, at the
		// cost of computing its public half.
		var err error
		if k, err = ecdh.X25519().NewPrivateKey(priv); err != nil {
			return nil, err
		}
	}
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return k.ECDH(p)
}

func (d *x25519) DHLen() int     { return 32 }
func (d *x25519) DHName() string { return "25519" }
