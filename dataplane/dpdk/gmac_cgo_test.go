//go:build linux && cgo

package dpdk

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"unsafe"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/internal/cputime"
)

// needGMAC skips where intel-ipsec-mb has no AES-NI path: the worker then
// runs crypto/hopmac, which its own tests cover.
func needGMAC(tb testing.TB) {
	tb.Helper()
	name, err := GMACEngine()
	if errors.Is(err, ErrNoGMAC) {
		tb.Skip("this CPU has no AES-NI: hop MACs stay in Go here (", err, ")")
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Log("hop MACs through", name)
}

func unhex(tb testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// The AES-256 GCM vectors with an empty plaintext, where GCM is GMAC: NIST
// CAVP gcmEncryptExtIV256 (PTlen = 0, AADlen = 0, the first case) and test
// case 13 of McGrew and Viega's GCM specification (all-zero key and IV).
func TestGMACNIST(t *testing.T) {
	needGMAC(t)
	for _, v := range []struct{ key, iv, aad, tag string }{
		{"5394e890d37ba55ec9d5f327f15680f6a63ef5279c79331643ad0af6d2623525", "3c819d9a9bed087615030b65", "", "d9b260d4bc4630733ffb642f5ce45726"},
		{"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000", "", "530f8afbc74536b9a963b4f1c4cb738b"},
	} {
		k, err := NewGMACKey(unhex(t, v.key))
		if err != nil {
			t.Fatal(err)
		}
		if got := gmacTag(k, unhex(t, v.iv), unhex(t, v.aad)); hex.EncodeToString(got[:]) != v.tag {
			t.Errorf("key %s: tag %x, want %s", v.key[:8], got, v.tag)
		}
	}
	if _, err := NewGMACKey(make([]byte, 16)); err == nil {
		t.Error("a 16-byte key was expanded")
	}
}

// gmacCase signs frame (a POOL header and payload) through a batch, through
// intel-ipsec-mb's direct GMAC calls and through crypto/hopmac, and checks
// that all three write the same MAC field, that the batch verifies the
// frame hopmac signed, leaving it unchanged, and that it refuses it once
// byte flip is changed (flip < 0: no change) and once the MAC field's
// second half is not zero, as the direct calls do.
func gmacCase(t testing.TB, key, frame []byte, flip int) {
	k, err := NewGMACKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewGMACBatch(4)
	if err != nil {
		t.Fatal(err)
	}
	ref := hopmac.New(key)
	p, view, free := cBytes(frame)
	defer free()
	b.add(p, len(view), k)
	b.Sign()
	b.Reset()
	if len(frame) < hopmac.HeaderSize {
		if !bytes.Equal(view, frame) {
			t.Fatalf("%d-byte frame changed by Sign", len(frame))
		}
		b.add(p, len(view), k)
		if b.Verify(); b.OK(0) {
			t.Fatalf("%d-byte frame verified", len(frame))
		}
		return
	}
	want := bytes.Clone(frame)
	ref.Sign(want)
	if !bytes.Equal(view, want) {
		t.Fatalf("%d B: signed\n%x\nwant\n%x", len(frame), view[hopmac.MACOffset:hopmac.MACOffset+hopmac.MACSize], want[hopmac.MACOffset:hopmac.MACOffset+hopmac.MACSize])
	}
	dp, direct, freeDirect := cBytes(frame)
	defer freeDirect()
	b.add(dp, len(direct), k)
	b.signDirect()
	b.Reset()
	if !bytes.Equal(direct, want) {
		t.Fatalf("%d B: signed by the direct calls\n%x\nwant\n%x", len(frame), direct[hopmac.MACOffset:hopmac.MACOffset+hopmac.MACSize], want[hopmac.MACOffset:hopmac.MACOffset+hopmac.MACSize])
	}
	verify := func() bool {
		b.Reset()
		b.add(p, len(view), k)
		before := bytes.Clone(view)
		b.Verify()
		if !bytes.Equal(before, view) {
			t.Fatalf("%d B: Verify changed the frame", len(frame))
		}
		ok := b.OK(0)
		b.verifyDirect()
		if b.OK(0) != ok {
			t.Fatalf("%d B: verified %v, by the direct calls %v", len(frame), ok, b.OK(0))
		}
		return ok
	}
	if !verify() || !ref.Verify(view) {
		t.Fatalf("%d B: a signed frame does not verify", len(frame))
	}
	if flip >= 0 {
		flip %= len(view)
		view[flip] ^= 1 << (flip % 8)
		if got, ref := verify(), ref.Verify(view); got || ref {
			t.Fatalf("%d B: byte %d changed, verified %v (hopmac %v)", len(frame), flip, got, ref)
		}
		view[flip] ^= 1 << (flip % 8)
	}
	view[hopmac.MACOffset+hopmac.TagSize+flip&15] = 1
	if verify() {
		t.Fatalf("%d B: verified with a non-zero second half of the MAC field", len(frame))
	}
}

// TestGMACDifferential compares the batch with crypto/hopmac, the
// reference, over random keys, frames and lengths, several frames and keys
// to a batch.
func TestGMACDifferential(t *testing.T) {
	needGMAC(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		key := make([]byte, 32)
		for j := range key {
			key[j] = byte(rng.Uint32())
		}
		n := rng.IntN(2100)
		if i < 100 {
			n = hopmac.HeaderSize - 2 + i // around the header's end and the first blocks
		}
		frame := make([]byte, n)
		for j := range frame {
			frame[j] = byte(rng.Uint32())
		}
		gmacCase(t, key, frame, rng.IntN(max(n, 1)))
	}
	// A burst of frames under two keys, signed and verified in one call
	// each.
	keys := [2][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)}
	var ks [2]*GMACKey
	for i := range ks {
		ks[i], _ = NewGMACKey(keys[i])
	}
	b, err := NewGMACBatch(MaxBurst)
	if err != nil {
		t.Fatal(err)
	}
	var views [][]byte
	for i := range MaxBurst {
		f := make([]byte, 80+rng.IntN(1500))
		for j := range f {
			f[j] = byte(rng.Uint32())
		}
		p, view, free := cBytes(f)
		defer free()
		views = append(views, view)
		b.add(p, len(view), ks[i%2])
	}
	b.Sign()
	for i, v := range views {
		if !hopmac.New(keys[i%2]).Verify(v) {
			t.Fatalf("frame %d of the burst: hopmac refuses the batch's MAC", i)
		}
		if i%3 == 0 {
			v[100%len(v)] ^= 0x80
		}
	}
	b.Verify()
	for i := range views {
		if b.OK(i) != (i%3 != 0) {
			t.Errorf("frame %d of the burst: verified %v", i, b.OK(i))
		}
	}
}

// TestGMACBatches runs batches of 1 to 11 jobs of random lengths, three
// keys mixed within a batch and jobs too short for a MAC among them
// (skipped by Sign, failed by Verify, without shifting the others'
// answers), one frame changed before Verify. Each tag must be
// crypto/hopmac's, each answer its Verify's.
func TestGMACBatches(t *testing.T) {
	needGMAC(t)
	rng := rand.New(rand.NewPCG(3, 4))
	var keys [3][]byte
	var ks [3]*GMACKey
	for i := range keys {
		keys[i] = make([]byte, 32)
		for j := range keys[i] {
			keys[i][j] = byte(rng.Uint32())
		}
		var err error
		if ks[i], err = NewGMACKey(keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	b, err := NewGMACBatch(MaxBurst)
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 11; n++ {
		for round := range 20 {
			b.Reset()
			var views, wants [][]byte
			var which []int
			for range n {
				size := hopmac.HeaderSize + rng.IntN(300)
				if rng.IntN(5) == 0 {
					size = rng.IntN(hopmac.HeaderSize) // too short
				}
				f := make([]byte, size)
				for j := range f {
					f[j] = byte(rng.Uint32())
				}
				k := rng.IntN(3)
				want := bytes.Clone(f)
				if size >= hopmac.HeaderSize {
					hopmac.New(keys[k]).Sign(want)
				}
				p, view, free := cBytes(f)
				defer free()
				b.add(p, len(view), ks[k])
				views, wants, which = append(views, view), append(wants, want), append(which, k)
			}
			b.Sign()
			for i := range views {
				if !bytes.Equal(views[i], wants[i]) {
					t.Fatalf("batch of %d, round %d, job %d (%d B, key %d): signed\n%x\nwant\n%x",
						n, round, i, len(views[i]), which[i], views[i], wants[i])
				}
			}
			bad := rng.IntN(n)
			if len(views[bad]) > 0 {
				views[bad][rng.IntN(len(views[bad]))] ^= 1
			}
			b.Verify()
			for i := range views {
				ok := len(views[i]) >= hopmac.HeaderSize && (i != bad || len(views[i]) == 0)
				if i == bad && len(views[i]) >= hopmac.HeaderSize {
					ok = hopmac.New(keys[which[i]]).Verify(views[i])
				}
				if b.OK(i) != ok {
					t.Fatalf("batch of %d, round %d, job %d (%d B, changed %v): verified %v, want %v",
						n, round, i, len(views[i]), i == bad, b.OK(i), ok)
				}
			}
		}
	}
}

// FuzzGMAC compares tags with crypto/hopmac for any key, frame and change.
func FuzzGMAC(f *testing.F) {
	needGMAC(f)
	f.Add(bytes.Repeat([]byte{7}, 32), make([]byte, 128), 5)
	f.Add(bytes.Repeat([]byte{9}, 32), make([]byte, 79), 0)
	f.Add(make([]byte, 32), make([]byte, 1500), -1)
	f.Fuzz(func(t *testing.T, key, frame []byte, flip int) {
		if len(key) < 32 {
			key = append(key, make([]byte, 32-len(key))...)
		}
		if flip < -1 {
			flip = -flip
		}
		gmacCase(t, key[:32], frame, flip)
	})
}

func TestGMACNoAllocs(t *testing.T) {
	needGMAC(t)
	k, _ := NewGMACKey(make([]byte, 32))
	b, _ := NewGMACBatch(32)
	p, view, free := cBytes(make([]byte, 1500))
	defer free()
	if n := testing.AllocsPerRun(100, func() {
		for range 32 {
			b.add(p, len(view), k)
		}
		b.Sign()
		b.Reset()
		for range 32 {
			b.add(p, len(view), k)
		}
		b.Verify()
		b.Reset()
	}); n != 0 {
		t.Errorf("%v allocations per burst", n)
	}
}

// BenchmarkGMAC is the cost per frame of a verify and a sign, through a
// burst of 32 in C (batch: GMACBatch's Verify and Sign; direct:
// intel-ipsec-mb's GMAC calls per frame, what they replaced) and through
// crypto/hopmac (Go's GCM), side by side; ns/op (and cpu-ns/op, the
// thread's CPU time) is per frame.
func BenchmarkGMAC(b *testing.B) {
	needGMAC(b)
	key := bytes.Repeat([]byte{3}, 32)
	for _, size := range []int{128, 1500} {
		frames := make([][]byte, 32)
		ptrs := make([]func(), 32)
		for _, mode := range []string{"batch", "direct"} {
			b.Run(mode+"/"+strconv.Itoa(size), func(b *testing.B) {
				k, _ := NewGMACKey(key)
				batch, _ := NewGMACBatch(32)
				var ps [32]struct {
					p unsafe.Pointer
					n int
				}
				for i := range frames {
					p, view, free := cBytes(make([]byte, size))
					frames[i], ptrs[i] = view, free
					ps[i].p, ps[i].n = p, len(view)
				}
				verify, sign := batch.Verify, batch.Sign
				if mode != "batch" {
					verify, sign = batch.verifyDirect, batch.signDirect
				}
				b.SetBytes(int64(size))
				b.ResetTimer()
				cpu := cputime.Start()
				for i := 0; i < b.N; i += 32 {
					for _, op := range [...]func(){verify, sign} {
						for j := range ps {
							batch.add(ps[j].p, ps[j].n, k)
						}
						op()
						batch.Reset()
					}
				}
				cpu.Report(b)
				for _, f := range ptrs {
					f()
				}
			})
		}
		b.Run("go/"+strconv.Itoa(size), func(b *testing.B) {
			k := hopmac.New(key)
			f := make([]byte, size)
			b.SetBytes(int64(size))
			cpu := cputime.Start()
			for range b.N {
				k.Verify(f)
				k.Sign(f)
			}
			cpu.Report(b)
		})
	}
}
