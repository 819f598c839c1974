package handshake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"net/netip"
	"time"

	"github.com/poolrelay/poolrelay/crypto/identity"
)

// CookieSize is the size of a cookie: a truncated HMAC-SHA256. 128 bits
// make guessing a cookie for a spoofed address hopeless within its lifetime.
const CookieSize = 16

// cookieInputSize is the HMAC input: client address (16) and port (2), time
// bucket (8), difficulty (1), network (4), client identity (32) and
// ephemeral (32).
const cookieInputSize = 16 + 2 + 8 + 1 + 4 + 32 + 32

// cookieJar issues and checks cookies. Each time bucket has its own random
// secret; the jar keeps the current bucket's secret and the previous one, so
// a cookie is valid from the moment it is issued until the end of the next
// bucket (one to two bucket lengths) and then can never verify again, even
// if the secret leaked. The bucket number is counted on the monotonic clock
// from a random origin, so it says nothing about the wall clock and a
// stepped wall clock cannot reopen an old bucket.
type cookieJar struct {
	rand   io.Reader
	length time.Duration
	epoch  time.Time
	origin uint64

	bucket    uint64
	cur, prev hash.Hash // prev is nil when the previous bucket had no secret

	// Scratch for mac: the HMAC input and output live here so that
	// computing a cookie allocates nothing.
	in  [cookieInputSize]byte
	sum [sha256.Size]byte
}

func newCookieJar(rand io.Reader, length time.Duration, now time.Time) (*cookieJar, error) {
	j := &cookieJar{rand: rand, length: length, epoch: now}
	var o [8]byte
	if _, err := io.ReadFull(rand, o[:]); err != nil {
		return nil, fmt.Errorf("handshake: reading randomness: %w", err)
	}
	// Keep the origin below 2^62 so that bucket arithmetic never wraps.
	j.origin = binary.BigEndian.Uint64(o[:]) >> 2
	j.bucket = j.origin
	mac, err := j.newSecret()
	if err != nil {
		return nil, err
	}
	j.cur = mac
	return j, nil
}

func (j *cookieJar) newSecret() (hash.Hash, error) {
	var key [32]byte
	if _, err := io.ReadFull(j.rand, key[:]); err != nil {
		return nil, fmt.Errorf("handshake: reading randomness: %w", err)
	}
	return hmac.New(sha256.New, key[:]), nil
}

// advance moves to now's bucket, rotating secrets. It never moves backwards.
func (j *cookieJar) advance(now time.Time) error {
	d := now.Sub(j.epoch)
	if d < 0 {
		return nil
	}
	b := j.origin + uint64(d/j.length)
	if b <= j.bucket {
		return nil
	}
	mac, err := j.newSecret()
	if err != nil {
		return err
	}
	if b == j.bucket+1 {
		j.prev = j.cur
	} else {
		j.prev = nil // an idle gap: the previous bucket issued nothing
	}
	j.cur, j.bucket = mac, b
	return nil
}

// secret returns the MAC for bucket b, or the error that explains why there
// is none: a bucket from the future cannot have been issued (ErrBadCookie),
// one older than the previous bucket is stale (ErrCookieExpired).
func (j *cookieJar) secret(b uint64) (hash.Hash, error) {
	switch {
	case b == j.bucket:
		return j.cur, nil
	case b == j.bucket-1 && j.prev != nil:
		return j.prev, nil
	case b > j.bucket:
		return nil, ErrBadCookie
	case b < j.origin:
		// Below the jar's origin: not a bucket this server ever used.
		return nil, ErrBadCookie
	default:
		return nil, ErrCookieExpired
	}
}

// mac computes the cookie into out.
func (j *cookieJar) mac(out *[CookieSize]byte, h hash.Hash, from netip.AddrPort, bucket uint64,
	difficulty uint8, network uint32, id *identity.PublicKey, eph *[32]byte) {
	in := j.in[:0]
	a := from.Addr().As16()
	in = append(in, a[:]...)
	in = binary.BigEndian.AppendUint16(in, from.Port())
	in = binary.BigEndian.AppendUint64(in, bucket)
	in = append(in, difficulty)
	in = binary.BigEndian.AppendUint32(in, network)
	in = append(in, id[:]...)
	in = append(in, eph[:]...)
	h.Reset()
	h.Write(in)
	copy(out[:], h.Sum(j.sum[:0]))
}

// check verifies a cookie in constant time.
func (j *cookieJar) check(cookie *[CookieSize]byte, from netip.AddrPort, bucket uint64,
	difficulty uint8, network uint32, id *identity.PublicKey, eph *[32]byte) error {
	h, err := j.secret(bucket)
	if err != nil {
		return err
	}
	var want [CookieSize]byte
	j.mac(&want, h, from, bucket, difficulty, network, id, eph)
	if !hmac.Equal(want[:], cookie[:]) {
		return ErrBadCookie
	}
	return nil
}
