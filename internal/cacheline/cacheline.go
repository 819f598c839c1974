// Package cacheline keeps memory written by different cores off each
// other's cache lines (false sharing), one way for the whole data plane: a
// Pad between what one core writes and what another does, and Isolated for
// slices of per-core state.
package cacheline

import "reflect"

// Size is the padding between memory written by different cores: 128
// bytes, not 64, because Intel's spatial prefetcher fetches lines in
// aligned pairs, so two cores writing neighbouring 64-byte lines still
// contend (sync.Pool pads the same way for the same reason).
const Size = 128

// Pad is a blank field's type: `_ cacheline.Pad` before and after the
// fields of a struct (or after each element of an array) that one core
// writes keeps other cores' data Size bytes away from them.
type Pad [Size]byte

// Isolated returns n zero elements in an allocation with at least Size
// bytes of unused memory before and after them, so no other allocation, such
// as another core's counters, can share a cache line with them. The result's
// capacity is n: appending beyond it reallocates rather than running into
// the padding.
func Isolated[T any](n int) []T {
	size := int(reflect.TypeFor[T]().Size())
	if size == 0 {
		return make([]T, n)
	}
	pad := (Size + size - 1) / size
	s := make([]T, pad+n+pad)
	return s[pad : pad+n : pad+n]
}
