package wire

import (
	"encoding/binary"
	"math/bits"
)

// Checksum returns the Internet checksum (RFC 1071) of b, seeded with the
// ones' complement partial sum initial (for instance a pseudo-header sum from
// PseudoHeaderSum). The result is ready to store in a header; over data that
// already holds a correct checksum it is zero.
func Checksum(b []byte, initial uint64) uint16 {
	return ^fold(sum(b, initial))
}

// sum adds b to the ones' complement partial sum acc, as big-endian 16-bit
// words (a trailing odd byte is the high byte of a word padded with zero).
// The part for b comes folded to 16 bits; acc is returned unfolded.
//
// The loop adds little-endian 64-bit words with carry: a ones' complement
// sum does not care about byte order as long as the result is swapped back
// (RFC 1071, section 2), and add-with-carry makes it one load and one add
// per eight bytes, with no shuffling of halves.
func sum(b []byte, acc uint64) uint64 {
	var s, c uint64
	for len(b) >= 32 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[0:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[8:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[16:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	if len(b) >= 16 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[0:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[8:]), c)
		b = b[16:]
	}
	if len(b) >= 8 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		b = b[8:]
	}
	// The tail: at most seven bytes, which cannot overflow the two 32-bit
	// halves folded in with them.
	t := c
	if len(b) >= 4 {
		t += uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		t += uint64(binary.LittleEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		t += uint64(b[0]) // the low byte of a little-endian word
	}
	return acc + uint64(bits.ReverseBytes16(fold(s>>32+s&0xffffffff+t)))
}

// fold reduces a partial sum to 16 bits with end-around carries.
func fold(acc uint64) uint16 {
	acc = acc&0xffffffff + acc>>32 // < 2^33
	acc = acc&0xffffffff + acc>>32 // < 2^32
	acc = acc&0xffff + acc>>16     // < 2^17
	acc = acc&0xffff + acc>>16     // <= 0xffff
	return uint16(acc)
}

// update returns a checksum field's new value after words whose partial sum
// was old were replaced by words whose partial sum is new: RFC 1624's
// equation 3, HC' = ~(~HC + ~m + m'), summed over every changed word at
// once. The ones' complement of old is taken as negCarrier - old:
// negCarrier is a multiple of 0xffff, so the difference is congruent to -old
// modulo 0xffff, which is all a ones' complement sum sees, and it stays
// positive for any old a 64 KiB frame can produce. That leaves a single fold,
// cheap enough to inline, and the result equals a full recomputation
// exactly, the representation of zero included.
func update(hc uint16, old, new uint64) uint16 {
	const negCarrier = 0xffff << 40
	return ^fold(uint64(^hc) + negCarrier - old + new)
}

// PseudoHeaderSum returns the partial sum of the IPv4 or IPv6 pseudo-header
// for an upper-layer checksum: the source and destination addresses (4 or 16
// bytes each, both the same length), the protocol and the upper-layer length.
// The zero and padding bytes of the pseudo-header add nothing to the sum.
func PseudoHeaderSum(src, dst []byte, proto uint8, length int) uint64 {
	return sum(dst, sum(src, 0)) + uint64(proto) + uint64(length)&0xffff + uint64(length)>>16
}
