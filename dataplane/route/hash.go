package route

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
)

// hashKey is a table's secret hash key, drawn from crypto/rand when the table
// is made and never shown.
//
// Session ids are picked by remote parties. With an unkeyed (or guessable)
// hash, a party could pick ids that all land in one shard and one probe run
// and turn every lookup into a scan: collision flooding. Keyed with 256
// random bits, the ids that collide are different for every table and cannot
// be chosen without the key.
//
// Construction: the first step is NH, the hash of UMAC (Black, Halevi,
// Krawczyk, Krovetz, Rogaway, CRYPTO '99): the 128-bit product
// (x0+a0)·(x1+a1) of the id's two halves, each offset by a key word modulo
// 2^64. For any two distinct ids fixed in advance, the probability over the
// key that their products collide is at most 2^-64. The second step multiplies
// the product's halves, each masked with another key word, and folds the
// 128-bit result to 64 bits, so that both the top bits (which pick the shard)
// and the low bits (which pick the slot) depend on all of the id. This is the
// multiply-fold mixer that Go's runtime uses for map hashing on machines
// without AES; it costs two multiplications, about 2 ns, where
// hash/maphash.Bytes took 12 ns on the development machine, a fifth of the
// per-packet budget at 14 Mpps.
type hashKey struct{ a0, a1, a2, a3 uint64 }

// newHashKey draws a key from crypto/rand, which does not fail on supported
// platforms (Go 1.24 and later crash the program rather than return weak
// randomness).
func newHashKey() hashKey {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hashKey{
		a0: binary.LittleEndian.Uint64(b[0:]),
		a1: binary.LittleEndian.Uint64(b[8:]),
		a2: binary.LittleEndian.Uint64(b[16:]),
		a3: binary.LittleEndian.Uint64(b[24:]),
	}
}

// sum returns the 64-bit keyed hash of id.
func (k *hashKey) sum(id *SessionID) uint64 {
	x0 := binary.LittleEndian.Uint64(id[0:8])
	x1 := binary.LittleEndian.Uint64(id[8:16])
	hi, lo := bits.Mul64(x0+k.a0, x1+k.a1)
	hi, lo = bits.Mul64(hi^k.a2, lo^k.a3)
	return hi ^ lo
}
