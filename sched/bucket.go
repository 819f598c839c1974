package sched

import "math/bits"

// bucket is a token bucket counted in bytes and refilled from the caller's
// ticks. A frame may start while tokens > 0 and is charged in full, so the
// tokens dip below zero by at most one frame: frames larger than the burst
// still pass, and the long-run rate is exact because the debt is repaid
// before the next frame starts.
//
// The refill multiplies elapsed ticks by a 32.32 fixed-point bytes-per-tick
// factor and carries the fraction over, so there is no division on the hot
// path and no drift however often it is called.
type bucket struct {
	tokens  int64
	burst   int64
	last    int64  // ticks at the previous refill
	perTick uint64 // bytes per tick, 32.32 fixed point
	frac    uint64 // fraction of a byte carried to the next refill, low 32 bits
	hz      uint64 // ticks per second
	rate    uint64 // bytes per second
	// fullAfter is a number of whole seconds after which the bucket is
	// full from any level it can be at (at worst one maximal frame below
	// zero), which also bounds the multiplication in refill.
	fullAfter uint64
}

// maxFrameDebt is the deepest the tokens can go: one frame charged at
// tokens == 1; frame lengths are uint32.
const maxFrameDebt = 1 << 32

func newBucket(rate, hz uint64, burst int64, now int64) bucket {
	perTick, _ := bits.Div64(rate>>32, rate<<32, hz)
	return bucket{
		tokens:    burst,
		burst:     burst,
		last:      now,
		perTick:   perTick,
		hz:        hz,
		rate:      rate,
		fullAfter: (uint64(burst)+maxFrameDebt)/rate + 1,
	}
}

// refill adds the tokens earned since the previous refill. A now that did not
// advance earns nothing; one that went backwards (a clock stepped back)
// earns nothing and becomes the new reference, so the bucket never stalls.
func (b *bucket) refill(now int64) {
	d := now - b.last
	b.last = now
	if d <= 0 {
		return
	}
	if uint64(d) >= b.hz {
		secs := uint64(d) / b.hz
		if secs >= b.fullAfter {
			b.tokens, b.frac = b.burst, 0
			return
		}
		b.tokens += int64(secs * b.rate)
		d = int64(uint64(d) % b.hz)
	}
	// d < hz, so d*perTick < rate<<32 + hz: the whole bytes fit in 64 bits.
	hi, lo := bits.Mul64(uint64(d), b.perTick)
	lo, carry := bits.Add64(lo, b.frac, 0)
	hi += carry
	b.frac = lo & (1<<32 - 1)
	b.tokens += int64(hi<<32 | lo>>32)
	if b.tokens >= b.burst {
		b.tokens, b.frac = b.burst, 0
	}
}
