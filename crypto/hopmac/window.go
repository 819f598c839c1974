package hopmac

const (
	wordBits  = 64
	ringWords = 32 // a 2048-bit ring, 256 bytes: four cache lines per hop
	ringMask  = ringWords - 1
	// WindowSize is how far behind the highest accepted seq a frame may
	// arrive and still be accepted once. The ring holds 2048 bits, but the
	// word holding the newest seq is only partly in the past, so one word of
	// the ring is the price of never clearing bits one by one (RFC 6479).
	WindowSize = (ringWords - 1) * wordBits
)

// Window is a sliding anti-replay bitmap over 64-bit sequence numbers, after
// RFC 6479: a ring of 64-bit words in which advancing the window clears whole
// words, so an update costs O(1) however far the window jumps. It accepts
// each seq at most once, tolerates reordering up to WindowSize, and rejects
// anything older. The zero value is an empty window. A Window has one
// writer; it takes no lock and never allocates.
type Window struct {
	top  uint64 // the highest seq accepted so far (0 while empty)
	ring [ringWords]uint64
}

// Check reports whether seq would be accepted, without recording it.
func (w *Window) Check(seq uint64) bool {
	if seq > w.top {
		return true
	}
	if w.top-seq >= WindowSize {
		return false
	}
	return w.ring[(seq/wordBits)&ringMask]&(1<<(seq%wordBits)) == 0
}

// AcceptInOrder records seq and returns true when it is above the highest
// seq accepted and in that seq's 64-bit word, as most frames in order are
// (nothing to clear); otherwise it records nothing and returns false, and
// Accept decides. It is small enough for the compiler to inline in a data
// plane's per-frame pass, where Accept is a call.
func (w *Window) AcceptInOrder(seq uint64) bool {
	if top := w.top; seq <= top || seq^top >= wordBits {
		return false
	}
	w.top = seq
	w.ring[(seq/wordBits)&ringMask] |= 1 << (seq % wordBits)
	return true
}

// Accept records seq and reports whether it was fresh: false for a seq seen
// before or too old for the window.
func (w *Window) Accept(seq uint64) bool {
	if !w.Check(seq) {
		return false
	}
	if seq > w.top {
		// Clear the words between the old top's word (exclusive) and seq's
		// word (inclusive); after a jump of a whole ring, all of them.
		// seq in the old top's own word clears nothing.
		from, to := w.top/wordBits+1, seq/wordBits
		switch {
		case to < from:
		case to-from >= ringWords:
			clear(w.ring[:])
		default:
			for i := from; i <= to; i++ {
				w.ring[i&ringMask] = 0
			}
		}
		w.top = seq
	}
	w.ring[(seq/wordBits)&ringMask] |= 1 << (seq % wordBits)
	return true
}

// Reset empties the window, for a new key.
func (w *Window) Reset() { *w = Window{} }
