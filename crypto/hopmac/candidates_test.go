package hopmac

// The MAC constructions that were measured against AES-GMAC to choose it (see
// the package doc). Each computes a tag over a frame with the MAC field zero,
// the way a relay would, with its per-call scratch preallocated so that the
// figures compare the primitives and not the garbage collector.

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"testing"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/poly1305"

	"github.com/poolrelay/poolrelay/internal/cputime"
)

// candidate MACs a frame in place, as Key.Sign does.
type candidate interface {
	sign(frame []byte)
}

type hmacCandidate struct {
	h   hash.Hash
	sum [32]byte
}

func (c *hmacCandidate) sign(frame []byte) {
	clear(frame[MACOffset : MACOffset+MACSize])
	c.h.Reset()
	c.h.Write(frame)
	copy(frame[MACOffset:], c.h.Sum(c.sum[:0]))
}

// chachaADCandidate is ChaCha20-Poly1305 with an empty plaintext and the
// frame as additional data: a Poly1305 MAC whose one-time key ChaCha20
// derives from the nonce, through the AEAD's assembly.
type chachaADCandidate struct {
	aead interface {
		Seal(dst, nonce, pt, ad []byte) []byte
	}
	nonce [12]byte
	tag   [16]byte
}

func (c *chachaADCandidate) sign(frame []byte) {
	clear(frame[MACOffset : MACOffset+MACSize])
	copy(c.nonce[4:], frame[seqOffset:seqOffset+8])
	c.aead.Seal(c.tag[:0], c.nonce[:], nil, frame)
	copy(frame[MACOffset:], c.tag[:])
}

// polyCandidate derives a Poly1305 one-time key per frame from ChaCha20
// keyed by the hop key with the seq as nonce, then MACs the frame.
type polyCandidate struct {
	key   [32]byte
	nonce [12]byte
	otk   [32]byte
	tag   [16]byte
	c     chacha20.Cipher
}

func (c *polyCandidate) sign(frame []byte) {
	clear(frame[MACOffset : MACOffset+MACSize])
	copy(c.nonce[4:], frame[seqOffset:seqOffset+8])
	cc, err := chacha20.NewUnauthenticatedCipher(c.key[:], c.nonce[:])
	if err != nil {
		panic(err)
	}
	clear(c.otk[:])
	cc.XORKeyStream(c.otk[:], c.otk[:])
	poly1305.Sum(&c.tag, frame, &c.otk)
	copy(frame[MACOffset:], c.tag[:])
}

type gmacCandidate struct{ k *Key }

func (c gmacCandidate) sign(frame []byte) { c.k.Sign(frame) }

func candidates() map[string]candidate {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i)
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		panic(err)
	}
	pc := &polyCandidate{}
	copy(pc.key[:], key)
	return map[string]candidate{
		"gmac":     gmacCandidate{New(key)},
		"hmac":     &hmacCandidate{h: hmac.New(sha256.New, key)},
		"chachaAD": &chachaADCandidate{aead: aead},
		"poly1305": pc,
	}
}

// BenchmarkCandidates measures each construction at the two sizes the issue
// names: a small frame and a full Ethernet MTU.
func BenchmarkCandidates(b *testing.B) {
	for _, name := range []string{"gmac", "hmac", "poly1305", "chachaAD"} {
		c := candidates()[name]
		for _, size := range []int{128, 1500} {
			frame := testFrame(size, 1)
			b.Run(fmt.Sprintf("%s/%d", name, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				m := cputime.Start()
				for b.Loop() {
					c.sign(frame)
				}
				m.Report(b)
			})
		}
	}
}

// TestCandidatesAreMACs keeps the benchmark honest: every candidate is
// deterministic, covers the whole frame, and actually writes a tag.
func TestCandidatesAreMACs(t *testing.T) {
	for name, c := range candidates() {
		f1, f2 := testFrame(300, 9), testFrame(300, 9)
		c.sign(f1)
		c.sign(f2)
		if string(f1) != string(f2) {
			t.Errorf("%s is not deterministic", name)
		}
		if string(f1[MACOffset:MACOffset+TagSize]) == string(make([]byte, TagSize)) {
			t.Errorf("%s wrote no tag", name)
		}
		f3 := testFrame(300, 9)
		f3[299] ^= 1
		c.sign(f3)
		if string(f3[MACOffset:MACOffset+TagSize]) == string(f1[MACOffset:MACOffset+TagSize]) {
			t.Errorf("%s does not cover the last payload byte", name)
		}
	}
}
