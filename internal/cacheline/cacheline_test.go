package cacheline

import (
	"reflect"
	"testing"
)

func TestIsolated(t *testing.T) {
	type acc struct{ a, b, c uint64 }
	p := Isolated[acc](10)
	if len(p) != 10 || cap(p) != 10 {
		t.Fatalf("len %d cap %d", len(p), cap(p))
	}
	// Appending past the capacity must reallocate, never write the padding.
	d := Isolated[uint32](3)[:0]
	for i := range uint32(3) {
		d = append(d, i)
	}
	before := &d[0]
	if d = append(d, 3); &d[0] == before {
		t.Fatal("append past the capacity wrote into the padding")
	}
	if z := Isolated[struct{}](4); len(z) != 4 {
		t.Fatalf("zero-size elements: len %d", len(z))
	}
}

func TestPadSize(t *testing.T) {
	if got := reflect.TypeFor[Pad]().Size(); got != Size {
		t.Fatalf("Pad is %d bytes, want %d", got, Size)
	}
}
