// Package identity is a relay's long-term identity: an Ed25519 signing key,
// the X25519 static key it uses for key agreement, and the binding certificate
// that ties the second to the first so that peers can check it.
//
// # One secret, two keys
//
// The identity file holds a single 32-byte Ed25519 seed (PKCS#8 PEM, so
// `openssl pkey -in identity.key -pubout` reads it). The X25519 static private
// key is derived from that seed with HKDF-SHA256 under its own label
// (StaticKeyInfo), never by converting the Ed25519 scalar: the two keys are
// independent as far as anyone without the seed can tell, so no signature can
// ever be turned into a Diffie-Hellman oracle or back, and the file stays one
// secret that `pool_relay keygen` writes once.
//
// Peers cannot check a derivation they cannot compute, so the X25519 public key
// is bound to the identity by a Binding: the Ed25519 key signs
// (TagBinding, Ed25519 public key, X25519 public key). The handshake sends the
// binding (the server's in CHALLENGE, the client's signature inside the
// encrypted Noise payload) and each side verifies it before trusting the
// static key it authenticated against.
//
// # Domain separation
//
// SignMessage and VerifyMessage sign len(tag) || tag || message. Tags are at
// most MaxTagLen (31) bytes, so every tagged message starts with a byte in
// 0x01..0x1f; encodings that carry their own ASCII tag at the front (the
// ledger's cheques start with "poolrelay-chq-v1") start with a printable byte,
// so no signature is valid under both schemes.
//
// # Key file
//
// Load refuses a key file whose mode grants anything to group or others
// (ErrPermissions), like ssh does: a world-readable identity is a stolen
// identity. LoadOrCreate creates the file on first use with mode 0600 in a
// directory created 0700, writing a temporary file, syncing it and linking it
// into place so that two processes racing to create it end up with one key and
// a crash never leaves a truncated one.
package identity

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

const (
	// SeedSize is the size of the Ed25519 seed, the identity's only secret.
	SeedSize = ed25519.SeedSize
	// PublicKeySize is the size of an Ed25519 or X25519 public key.
	PublicKeySize = 32
	// SignatureSize is the size of an Ed25519 signature.
	SignatureSize = ed25519.SignatureSize
	// MaxTagLen bounds domain separation tags; see the package doc for why 31.
	MaxTagLen = 31

	// StaticKeyInfo is the HKDF label under which the X25519 static private key
	// is derived from the Ed25519 seed. Changing it changes every relay's
	// static key.
	StaticKeyInfo = "poolrelay/v1 x25519-static"
)

// Tag is a domain separation tag: what a signature is for. Each signed
// encoding has its own tag, and a new encoding gets a new tag.
type Tag string

// TagBinding is the tag of the X25519 binding certificate.
const TagBinding Tag = "poolrelay/v1 x25519-binding"

var (
	// ErrPermissions: the key file is readable or writable by group or others.
	ErrPermissions = errors.New("identity: key file permissions too open")
	// ErrBadKeyFile: the key file is not a PEM PKCS#8 Ed25519 private key.
	ErrBadKeyFile = errors.New("identity: not an Ed25519 PKCS#8 key file")
	// ErrBadBinding: a binding certificate's signature does not verify.
	ErrBadBinding = errors.New("identity: binding signature does not verify")
)

// PublicKey is an Ed25519 public key as a value: comparable, usable as a map
// key, and copied without aliasing the bytes it was read from.
type PublicKey [PublicKeySize]byte

// Ed25519 returns the key as the standard library's type.
func (p PublicKey) Ed25519() ed25519.PublicKey { return ed25519.PublicKey(p[:]) }

// String returns the key in lowercase hex.
func (p PublicKey) String() string { return hex.EncodeToString(p[:]) }

// IsZero reports whether p is the zero key, used for "unknown".
func (p PublicKey) IsZero() bool { return p == PublicKey{} }

// Identity is a loaded identity. It is immutable and safe for concurrent use.
type Identity struct {
	priv      ed25519.PrivateKey
	pub       PublicKey
	staticPrv [32]byte
	staticPub [32]byte
	staticKey *ecdh.PrivateKey
	binding   Binding
}

// Generate creates a new identity from rand (crypto/rand.Reader in
// production; a fixed stream in tests).
func Generate(rand io.Reader) (*Identity, error) {
	var seed [SeedSize]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, fmt.Errorf("identity: reading randomness: %w", err)
	}
	return FromSeed(seed[:])
}

// FromSeed rebuilds the identity whose Ed25519 seed is seed.
func FromSeed(seed []byte) (*Identity, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("identity: seed is %d bytes, want %d", len(seed), SeedSize)
	}
	id := &Identity{priv: ed25519.NewKeyFromSeed(seed)}
	copy(id.pub[:], id.priv.Public().(ed25519.PublicKey))

	// HKDF-Expand straight from the seed: the seed is already 32 uniformly
	// random bytes, which is what Expand asks of its pseudorandom key.
	k, err := hkdf.Expand(sha256.New, seed, StaticKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("identity: deriving static key: %w", err)
	}
	sk, err := ecdh.X25519().NewPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("identity: deriving static key: %w", err)
	}
	// Store the clamped-on-use scalar as derived; X25519 clamps on every use,
	// so the bytes are the private key as RFC 7748 defines it.
	copy(id.staticPrv[:], sk.Bytes())
	copy(id.staticPub[:], sk.PublicKey().Bytes())
	id.staticKey = sk

	id.binding = Binding{Identity: id.pub, Static: id.staticPub}
	copy(id.binding.Sig[:], id.SignMessage(TagBinding, id.binding.signedBody()))
	return id, nil
}

// PublicKey returns the Ed25519 public key: the relay's identity.
func (id *Identity) PublicKey() PublicKey { return id.pub }

// StaticPublic returns the X25519 static public key.
func (id *Identity) StaticPublic() [32]byte { return id.staticPub }

// StaticPrivate returns the X25519 static private key, for the handshake.
func (id *Identity) StaticPrivate() [32]byte { return id.staticPrv }

// StaticKey returns the X25519 static key as a crypto/ecdh key, built once:
// an ecdh.PrivateKey computes its public half when it is made, so reusing it
// keeps each Diffie-Hellman to one scalar multiplication.
func (id *Identity) StaticKey() *ecdh.PrivateKey { return id.staticKey }

// Binding returns the identity's binding certificate, computed once.
func (id *Identity) Binding() Binding { return id.binding }

// Seed returns the Ed25519 seed, for saving.
func (id *Identity) Seed() []byte { return id.priv.Seed() }

// Public implements crypto.Signer.
func (id *Identity) Public() crypto.PublicKey { return id.pub.Ed25519() }

// Sign implements crypto.Signer: a plain Ed25519 signature over msg, for
// encodings that carry their own leading ASCII tag (see the package doc).
// opts must be crypto.Hash(0); Ed25519ph and Ed25519ctx are not offered.
func (id *Identity) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != crypto.Hash(0) {
		return nil, errors.New("identity: only pure Ed25519 (crypto.Hash(0)) is supported")
	}
	if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
		return nil, errors.New("identity: Ed25519ctx is not supported; use SignMessage for domain separation")
	}
	return ed25519.Sign(id.priv, msg), nil
}

// SignMessage signs msg under tag: the signature covers len(tag) || tag || msg.
// It panics if tag is empty or longer than MaxTagLen (a programming error).
func (id *Identity) SignMessage(tag Tag, msg []byte) []byte {
	buf := tagged(make([]byte, 0, 1+len(tag)+len(msg)), tag, msg)
	return ed25519.Sign(id.priv, buf)
}

// VerifyMessage reports whether sig is pub's signature of msg under tag.
// It panics if tag is invalid (a programming error) and returns false for
// any malformed key or signature.
func VerifyMessage(pub PublicKey, tag Tag, msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	var small [256]byte
	buf := tagged(small[:0], tag, msg)
	return ed25519.Verify(pub.Ed25519(), buf, sig)
}

func tagged(dst []byte, tag Tag, msg []byte) []byte {
	if len(tag) == 0 || len(tag) > MaxTagLen {
		panic(fmt.Sprintf("identity: tag %q must be 1..%d bytes", tag, MaxTagLen))
	}
	dst = append(dst, byte(len(tag)))
	dst = append(dst, tag...)
	return append(dst, msg...)
}

// BindingSize is the wire size of a Binding.
const BindingSize = 2*PublicKeySize + SignatureSize

// Binding certifies that Static is the X25519 static key of Identity. Wire
// form (BindingSize bytes): Identity (32) || Static (32) || Sig (64), where Sig
// is Identity's signature under TagBinding of Identity || Static.
type Binding struct {
	Identity PublicKey
	Static   [32]byte
	Sig      [SignatureSize]byte
}

func (b *Binding) signedBody() []byte {
	var body [2 * PublicKeySize]byte
	copy(body[:], b.Identity[:])
	copy(body[PublicKeySize:], b.Static[:])
	return body[:]
}

// Verify checks the signature; it returns ErrBadBinding if it does not hold.
func (b *Binding) Verify() error {
	if !VerifyMessage(b.Identity, TagBinding, b.signedBody(), b.Sig[:]) {
		return ErrBadBinding
	}
	return nil
}

// VerifySignature checks that sig is identity's binding signature for static.
// The handshake uses it where the two keys arrive separately.
func VerifySignature(identity PublicKey, static [32]byte, sig []byte) error {
	if len(sig) != SignatureSize {
		return ErrBadBinding
	}
	b := Binding{Identity: identity, Static: static}
	copy(b.Sig[:], sig)
	return b.Verify()
}

// AppendBinary appends the BindingSize-byte wire form.
func (b *Binding) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, b.Identity[:]...)
	dst = append(dst, b.Static[:]...)
	return append(dst, b.Sig[:]...), nil
}

// ParseBinding decodes a wire-form binding. It checks the length only; call
// Verify before trusting it.
func ParseBinding(b []byte) (Binding, error) {
	var out Binding
	if len(b) != BindingSize {
		return out, fmt.Errorf("identity: binding is %d bytes, want %d", len(b), BindingSize)
	}
	copy(out.Identity[:], b[0:32])
	copy(out.Static[:], b[32:64])
	copy(out.Sig[:], b[64:])
	return out, nil
}

// SignEd25519 signs msg with signer, which must hold an Ed25519 key (an
// Identity, an ed25519.PrivateKey, or any crypto.Signer over one, such as an
// HSM's), and checks that what came back has the size of an Ed25519
// signature: a signer of another kind fails here rather than producing a
// record no peer can verify.
func SignEd25519(signer crypto.Signer, msg []byte) (sig [ed25519.SignatureSize]byte, err error) {
	if _, ok := signer.Public().(ed25519.PublicKey); !ok {
		return sig, errors.New("identity: signer does not hold an Ed25519 key")
	}
	b, err := signer.Sign(nil, msg, crypto.Hash(0))
	if err != nil {
		return sig, fmt.Errorf("identity: sign: %w", err)
	}
	if len(b) != ed25519.SignatureSize {
		return sig, fmt.Errorf("identity: signer returned %d bytes, not an Ed25519 signature", len(b))
	}
	copy(sig[:], b)
	return sig, nil
}
