package hopmac

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/poolrelay/poolrelay/internal/cputime"
)

// testFrame builds a DATA frame of size bytes (outer header + inner payload)
// with the given seq.
func testFrame(size int, seq uint64) []byte {
	f := make([]byte, size)
	f[0] = 1<<4 | 3 // version 1, DATA
	SetSeq(f, seq)
	copy(f[20:36], "route-0123456789")
	binary.BigEndian.PutUint16(f[44:], uint16(size-HeaderSize))
	for i := HeaderSize; i < size; i++ {
		f[i] = byte(i * 7)
	}
	return f
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

// referenceMAC computes the tag the slow, obvious way: copy the frame, zero
// the MAC field, AES-256-GCM seal an empty plaintext with the frame as AD.
func referenceMAC(key, frame []byte) []byte {
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	ad := bytes.Clone(frame)
	clear(ad[MACOffset : MACOffset+MACSize])
	return gcm.Seal(nil, frame[:12], nil, ad)
}

func TestSignMatchesReference(t *testing.T) {
	k := New(testKey(1))
	for _, size := range []int{HeaderSize, 81, 128, 1500, 9000} {
		f := testFrame(size, uint64(size)*3)
		copy(f[MACOffset:], bytes.Repeat([]byte{0xee}, MACSize)) // stale MAC
		k.Sign(f)
		want := referenceMAC(testKey(1), f)
		if !bytes.Equal(f[MACOffset:MACOffset+TagSize], want) {
			t.Fatalf("size %d: tag %x, reference %x", size, f[MACOffset:MACOffset+TagSize], want)
		}
		if !bytes.Equal(f[MACOffset+TagSize:MACOffset+MACSize], make([]byte, MACSize-TagSize)) {
			t.Fatalf("size %d: second half of the MAC field not zero", size)
		}
	}
}

func TestVerify(t *testing.T) {
	k := New(testKey(2))
	f := testFrame(200, 77)
	k.Sign(f)
	signed := bytes.Clone(f)
	if !k.Verify(f) {
		t.Fatal("signed frame rejected")
	}
	if !bytes.Equal(f, signed) {
		t.Fatal("Verify modified the frame")
	}
	// Every bit of the frame is covered: header, MAC field, payload.
	for i := range f {
		for bit := 0; bit < 8; bit++ {
			f[i] ^= 1 << bit
			if k.Verify(f) {
				t.Fatalf("flipping byte %d bit %d went unnoticed", i, bit)
			}
			f[i] ^= 1 << bit
		}
	}
	if !bytes.Equal(f, signed) {
		t.Fatal("failed Verify calls modified the frame")
	}
	if k.Verify(f[:len(f)-1]) || k.Verify(f[:HeaderSize]) || k.Verify(f[:HeaderSize-1]) {
		t.Fatal("truncated frame accepted")
	}
	if k.Verify(append(bytes.Clone(f), 0)) {
		t.Fatal("extended frame accepted")
	}
	if New(testKey(3)).Verify(f) {
		t.Fatal("frame accepted under another key")
	}
}

func TestNewPanicsOnBadKey(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New with a %d-byte key did not panic", n)
				}
			}()
			New(make([]byte, n))
		}()
	}
}

func TestAccept(t *testing.T) {
	tx, rx := New(testKey(4)), New(testKey(4))
	var seq Sequence
	var w Window
	frames := make([][]byte, 5)
	for i := range frames {
		s, ok := seq.Next()
		if !ok || s != uint64(i) {
			t.Fatalf("seq %d, %v", s, ok)
		}
		frames[i] = testFrame(128, s)
		tx.Sign(frames[i])
	}
	// Out of order, each accepted once.
	for _, i := range []int{1, 0, 4, 2, 3} {
		if !rx.Accept(frames[i], &w) {
			t.Fatalf("frame %d rejected", i)
		}
	}
	for i := range frames {
		if rx.Accept(frames[i], &w) {
			t.Fatalf("replay of frame %d accepted", i)
		}
	}
	// A forged frame with a far-future seq must not move the window: the
	// genuine frame that follows is still accepted.
	forged := testFrame(128, 1<<40)
	if rx.Accept(forged, &w) {
		t.Fatal("forged frame accepted")
	}
	genuine := testFrame(128, 5)
	tx.Sign(genuine)
	if !rx.Accept(genuine, &w) {
		t.Fatal("genuine frame rejected after a forged one")
	}
	if rx.Accept(frames[0][:HeaderSize-1], &w) {
		t.Fatal("short frame accepted")
	}
}

func TestNoAllocs(t *testing.T) {
	k := New(testKey(5))
	f := testFrame(1500, 1)
	var w Window
	var seq Sequence
	cases := map[string]func(){
		"Sign":   func() { k.Sign(f) },
		"Verify": func() { k.Sign(f); k.Verify(f) },
		"Accept": func() {
			s, _ := seq.Next()
			SetSeq(f, s)
			k.Sign(f)
			if !k.Accept(f, &w) {
				panic("rejected")
			}
		},
		"Window": func() { s, _ := seq.Next(); w.Accept(s) },
	}
	for name, fn := range cases {
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Errorf("%s: %v allocations per call", name, n)
		}
	}
}

func TestSequence(t *testing.T) {
	var s Sequence
	const workers, each = 4, 10000
	seen := make([][]uint64, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				n, ok := s.Next()
				if !ok {
					panic("exhausted")
				}
				seen[i] = append(seen[i], n)
			}
		}()
	}
	wg.Wait()
	all := map[uint64]bool{}
	for _, l := range seen {
		for _, n := range l {
			if all[n] {
				t.Fatalf("seq %d handed out twice", n)
			}
			all[n] = true
		}
	}
	if len(all) != workers*each || s.Sent() != workers*each {
		t.Fatalf("%d distinct, Sent %d", len(all), s.Sent())
	}
	s.next.Store(MaxSeq - 1)
	if n, ok := s.Next(); !ok || n != MaxSeq-1 {
		t.Fatalf("last seq: %d %v", n, ok)
	}
	for range 3 {
		if _, ok := s.Next(); ok {
			t.Fatal("Sequence went past MaxSeq")
		}
	}
	if s.Sent() != MaxSeq {
		t.Fatalf("Sent %d after exhaustion", s.Sent())
	}
}

// TestSequenceReserve: reservations are disjoint with Next's seqs and each
// other, consecutive, cut short at MaxSeq and empty beyond it.
func TestSequenceReserve(t *testing.T) {
	var s Sequence
	if n, _ := s.Next(); n != 0 {
		t.Fatalf("first seq %d", n)
	}
	first, got := s.Reserve(32)
	if first != 1 || got != 32 {
		t.Fatalf("Reserve(32) = %d, %d; want 1, 32", first, got)
	}
	if n, _ := s.Next(); n != 33 {
		t.Fatalf("seq after the reservation %d, want 33", n)
	}
	if _, got := s.Reserve(0); got != 0 {
		t.Fatalf("Reserve(0) reserved %d", got)
	}
	s.next.Store(MaxSeq - 3)
	if first, got := s.Reserve(8); first != MaxSeq-3 || got != 3 {
		t.Fatalf("Reserve at the end = %d, %d; want %d, 3", first, got, uint64(MaxSeq-3))
	}
	if _, got := s.Reserve(8); got != 0 {
		t.Fatalf("Reserve past MaxSeq reserved %d", got)
	}
	if _, ok := s.Next(); ok || s.Sent() != MaxSeq {
		t.Fatalf("Next after exhaustion ok=%v, Sent %d", ok, s.Sent())
	}
}

// Clones share the expanded key; used from several goroutines at once they
// must agree with each other (run with -race to check the sharing).
func TestCloneConcurrent(t *testing.T) {
	k := New(testKey(6))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		c := k.Clone()
		go func() {
			defer wg.Done()
			for i := range 200 {
				f := testFrame(128+g*100+i, uint64(g<<20|i))
				c.Sign(f)
				if !c.Verify(f) {
					panic("clone rejected its own frame")
				}
				if !bytes.Equal(f[MACOffset:MACOffset+TagSize], referenceMAC(testKey(6), f)) {
					panic("clone disagrees with the reference")
				}
			}
		}()
	}
	wg.Wait()
}

// refWindow is the obviously correct window: a set of everything seen.
type refWindow struct {
	top  uint64
	seen map[uint64]bool
}

func (r *refWindow) accept(seq uint64) bool {
	if r.seen[seq] || (seq < r.top && r.top-seq >= WindowSize) {
		return false
	}
	r.seen[seq] = true
	r.top = max(r.top, seq)
	return true
}

func checkWindow(t *testing.T, seqs []uint64) {
	t.Helper()
	// w takes Accept alone, w2 AcceptInOrder then Accept when it says
	// false (the data plane's order).
	var w, w2 Window
	ref := &refWindow{seen: map[uint64]bool{}}
	for i, s := range seqs {
		want := ref.accept(s)
		if got := w.Check(s); got != want {
			t.Fatalf("step %d seq %d: Check %v, reference %v", i, s, got, want)
		}
		if got := w.Accept(s); got != want {
			t.Fatalf("step %d seq %d: Accept %v, reference %v", i, s, got, want)
		}
		inOrder := w2.AcceptInOrder(s)
		if inOrder && !want {
			t.Fatalf("step %d seq %d: AcceptInOrder true, reference false", i, s)
		}
		if got := inOrder || w2.Accept(s); got != want {
			t.Fatalf("step %d seq %d: AcceptInOrder then Accept %v, reference %v", i, s, got, want)
		}
	}
	if w != w2 {
		t.Fatal("the windows through Accept and through AcceptInOrder differ")
	}
}

func TestWindow(t *testing.T) {
	checkWindow(t, []uint64{0, 0, 1, 63, 64, 65, 64, 2047, 2048, 2049, 100, 66, 5000, 3017, 3016, 3015})
	// Exactly at the edge of the window.
	checkWindow(t, []uint64{WindowSize, 0, 1, WindowSize - 1})
	checkWindow(t, []uint64{10 * WindowSize, 9*WindowSize + 1, 9 * WindowSize, 10*WindowSize - 1})
	// Random walks with reordering, duplicates and jumps.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		var seqs []uint64
		var base uint64
		for range 5000 {
			switch r := rng.IntN(100); {
			case r < 70:
				base++
				seqs = append(seqs, base+uint64(rng.IntN(64)))
			case r < 90:
				seqs = append(seqs, base-min(base, uint64(rng.IntN(2*WindowSize))))
			case r < 98:
				seqs = append(seqs, base)
			default:
				base += uint64(rng.IntN(5 * WindowSize))
				seqs = append(seqs, base)
			}
		}
		checkWindow(t, seqs)
	}
}

func FuzzWindow(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3})
	f.Add([]byte{255, 255, 0, 0, 7, 200})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Each pair of bytes is a signed step from the current position,
		// scaled so that steps cross word and window boundaries.
		var seqs []uint64
		var pos uint64 = 1 << 32
		for len(data) >= 2 {
			step := int64(int16(binary.BigEndian.Uint16(data))) * 3
			data = data[2:]
			pos = uint64(int64(pos) + step)
			seqs = append(seqs, pos)
		}
		checkWindow(t, seqs)
	})
}

// FuzzVerify feeds arbitrary bytes to Verify and Accept: they must not
// panic, must not change the frame, and must reject anything not signed.
func FuzzVerify(f *testing.F) {
	k := New(testKey(7))
	signed := testFrame(128, 3)
	k.Sign(signed)
	f.Add(signed)
	f.Add(make([]byte, HeaderSize))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		var w Window
		ok := k.Verify(data)
		if !bytes.Equal(in, data) {
			t.Fatal("Verify modified its input")
		}
		if ok != k.Accept(data, &w) {
			t.Fatal("Verify and Accept disagree on a fresh window")
		}
		if ok && !bytes.Equal(data[MACOffset:MACOffset+TagSize], referenceMAC(testKey(7), data)) {
			t.Fatal("accepted a frame whose tag is not its MAC")
		}
	})
}

func BenchmarkSign(b *testing.B) {
	for _, size := range []int{128, 1500} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			k := New(testKey(8))
			f := testFrame(size, 1)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			m := cputime.Start()
			for b.Loop() {
				k.Sign(f)
			}
			m.Report(b)
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, size := range []int{128, 1500} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			k := New(testKey(8))
			f := testFrame(size, 1)
			k.Sign(f)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			m := cputime.Start()
			for b.Loop() {
				if !k.Verify(f) {
					b.Fatal("rejected")
				}
			}
			m.Report(b)
		})
	}
}

// BenchmarkRelayHop is the relay's per-frame cryptography: accept at
// ingress (window, MAC), then number and sign for the next hop. Frames are
// signed by the previous hop beforehand, a ring of 1024 of them (the window
// is reset when the ring wraps, so each is fresh), so the figure is the
// relay's own work.
func BenchmarkRelayHop(b *testing.B) {
	for _, size := range []int{128, 1500} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			in, out := New(testKey(8)), New(testKey(9))
			var outSeq Sequence
			var w Window
			ring := make([][]byte, 1024)
			type sent struct{ seq, mac []byte }
			orig := make([]sent, len(ring))
			for i := range ring {
				ring[i] = testFrame(size, uint64(i))
				in.Sign(ring[i])
				orig[i] = sent{bytes.Clone(ring[i][seqOffset : seqOffset+8]), bytes.Clone(ring[i][MACOffset : MACOffset+MACSize])}
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			m := cputime.Start()
			for i := 0; b.Loop(); i++ {
				f := ring[i%len(ring)]
				if i%len(ring) == 0 {
					w.Reset()
				}
				if !in.Accept(f, &w) {
					b.Fatal("rejected")
				}
				s, _ := outSeq.Next()
				SetSeq(f, s)
				out.Sign(f)
				// Put back what the previous hop sent (40 bytes), for the
				// next lap.
				copy(f[seqOffset:], orig[i%len(ring)].seq)
				copy(f[MACOffset:], orig[i%len(ring)].mac)
			}
			m.Report(b)
		})
	}
}

// TestSignTag: SignTag leaves the MAC field zero and returns the tag Sign
// writes; written in, it verifies.
func TestSignTag(t *testing.T) {
	k := New(bytes.Repeat([]byte{7}, KeySize))
	a := make([]byte, HeaderSize+37)
	for i := range a {
		a[i] = byte(i * 13)
	}
	b := bytes.Clone(a)
	k.Sign(a)
	tag := *k.SignTag(b)
	if !bytes.Equal(b[MACOffset:MACOffset+MACSize], make([]byte, MACSize)) {
		t.Fatal("SignTag left the MAC field non-zero")
	}
	if !bytes.Equal(tag[:], a[MACOffset:MACOffset+TagSize]) {
		t.Fatalf("SignTag %x, Sign wrote %x", tag, a[MACOffset:MACOffset+TagSize])
	}
	copy(b[MACOffset:], tag[:])
	if !bytes.Equal(a, b) || !k.Verify(b) {
		t.Fatal("the tag written in does not verify")
	}
}
