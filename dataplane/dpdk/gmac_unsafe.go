//go:build linux && cgo

package dpdk

// #cgo LDFLAGS: -lIPSec_MB
// #include <stdlib.h>
// #include <intel-ipsec-mb.h>
// #include "hopmac.h"
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// The hop MAC's layout (crypto/hopmac's constants, repeated here because
// this leaf package imports nothing of the project's crypto; TestGMAC*
// compare the two).
const (
	gmacHeader = C.PR_HOP_HEADER
	gmacKey    = C.PR_HOP_KEY
)

var gmacInit = sync.OnceValues(func() (string, error) {
	a := C.pr_gmac_init()
	if a < 0 {
		return "", fmt.Errorf("dpdk: intel-ipsec-mb: no memory for its manager")
	}
	name, ok := map[C.int]string{C.IMB_ARCH_SSE: "sse", C.IMB_ARCH_AVX: "avx", C.IMB_ARCH_AVX2: "avx2", C.IMB_ARCH_AVX512: "avx512"}[a]
	if !ok {
		return "", ErrNoGMAC
	}
	return fmt.Sprintf("intel-ipsec-mb %s (%s)", C.GoString(C.pr_gmac_version()), name), nil
})

// GMACEngine sets up intel-ipsec-mb once per process and names the code
// path it picked for this CPU, e.g. "intel-ipsec-mb 1.3.0 (avx512)". It
// returns ErrNoGMAC when the CPU has no AES-NI path (the library's
// software fallback is slower than Go's own GCM): the caller then keeps
// to crypto/hopmac.
func GMACEngine() (string, error) { return gmacInit() }

// GMACKey is a hop key (AES-256) expanded once in C memory: by
// intel-ipsec-mb (IMB_AES256_GCM_PRE), and the powers of its GHASH key. It is only read afterwards, so any
// number of workers may use one GMACKey at once. Its memory is wiped and
// freed when the GMACKey becomes unreachable: a worker that still holds it
// in a burst keeps it alive.
type GMACKey struct {
	p unsafe.Pointer
}

// NewGMACKey expands key, which must be 32 bytes. It returns ErrNoGMAC
// where GMACEngine does.
func NewGMACKey(key []byte) (*GMACKey, error) {
	if _, err := GMACEngine(); err != nil {
		return nil, err
	}
	if len(key) != gmacKey {
		return nil, fmt.Errorf("dpdk: hop key is %d bytes, want %d", len(key), gmacKey)
	}
	p := C.pr_gmac_key_new((*C.uint8_t)(unsafe.Pointer(&key[0])))
	if p == nil {
		return nil, fmt.Errorf("dpdk: expanding a hop key: out of memory")
	}
	k := &GMACKey{p: p}
	runtime.AddCleanup(k, func(p unsafe.Pointer) { C.pr_gmac_key_free(p) }, p)
	return k, nil
}

// GMACBatch is one worker's hop MAC jobs for a burst, in C memory: Add
// records a frame (a pointer, a length, a key: plain stores), and Verify
// or Sign computes the MACs of all of them in one cgo call, which loops
// over the frames in C (hopmac.c: AES-NI and carry-less multiplies on the
// library's expanded key, its GHASH for the middle of long frames). A
// GMACBatch belongs to one goroutine.
type GMACBatch struct {
	c    *C.struct_pr_gmac_batch
	addr C.uintptr_t // c as an integer: no cgo pointer check per call
	jobs []C.struct_pr_gmac_job
	keys []*GMACKey // keep the jobs' keys alive until Reset
	n    int
}

// NewGMACBatch returns a batch of up to size jobs, 1 to MaxBurst. It
// returns ErrNoGMAC where GMACEngine does.
func NewGMACBatch(size int) (*GMACBatch, error) {
	if _, err := GMACEngine(); err != nil {
		return nil, err
	}
	if size < 1 || size > MaxBurst {
		return nil, fmt.Errorf("dpdk: hop MAC batch of %d: use 1 to %d", size, MaxBurst)
	}
	c := C.pr_gmac_batch_new(C.uint32_t(size))
	if c == nil {
		return nil, fmt.Errorf("dpdk: hop MAC batch of %d: out of memory", size)
	}
	b := &GMACBatch{
		c:    c,
		addr: C.uintptr_t(uintptr(unsafe.Pointer(c))),
		jobs: unsafe.Slice((*C.struct_pr_gmac_job)(unsafe.Add(unsafe.Pointer(c), unsafe.Sizeof(*c))), size),
		keys: make([]*GMACKey, size),
	}
	runtime.AddCleanup(b, func(c *C.struct_pr_gmac_batch) { C.pr_gmac_batch_free(c) }, c)
	return b, nil
}

// Add records the frame of n bytes at off in m's data (a POOL header and
// its payload) under k: job Len()-1, for OK. It panics when the
// batch is full or the bytes are not within m's first segment: both are
// the caller's bugs. It is a few plain stores into the job in C memory,
// small enough for the compiler to inline into the worker's pass (a call
// per frame measured ~2 ns of the hop-auth path).
func (b *GMACBatch) Add(m *Mbuf, off, n uint16, k *GMACKey) {
	if int(off)+int(n) > m.Len() {
		panic("dpdk: hop MAC job outside the mbuf's data")
	}
	i := b.n
	j := &b.jobs[i] // full: index out of range
	// data_off+off fits in 16 bits: data_off+data_len <= buf_len.
	j.data = C.uintptr_t(uintptr(m.bufAddr()) + uintptr(*m.u16(offDataOff)+off))
	// csum is 0 already: Sign and Reset clear it.
	j.key, j.len = C.uintptr_t(uintptr(k.p)), C.uint32_t(n)
	b.keys[i] = k
	b.n = i + 1
}

// AddSign is Add for a frame to sign whose UDP checksum field, at csum in
// m's data, Sign then stores too: old and new are the partial sums of the
// words replaced so far and of their replacements (wire.UDPHeld.Pending),
// to which Sign adds the new tag's, at an even distance from the field.
// It panics where Add does, and when the field is not within m's data.
func (b *GMACBatch) AddSign(m *Mbuf, off, n uint16, k *GMACKey, csum int, old, new uint64) {
	b.Add(m, off, n, k)
	b.SetChecksum(m, csum, old, new)
}

// SetChecksum gives the job added last, a frame in m to sign, the UDP
// checksum field at csum in m's data for Sign to store, as AddSign does:
// Add then SetChecksum are each inlined where AddSign is a call. It panics
// when the field is not within m's data or the batch is empty.
func (b *GMACBatch) SetChecksum(m *Mbuf, csum int, old, new uint64) {
	if l := uint(m.Len()); uint(csum) >= l || l-uint(csum) < 2 {
		panic("dpdk: UDP checksum outside the mbuf's data")
	}
	j := &b.jobs[b.n-1]
	j.csum = C.uintptr_t(uintptr(m.bufAddr()) + uintptr(*m.u16(offDataOff)) + uintptr(csum))
	j.old, j.new = C.uint64_t(old), C.uint64_t(new)
}

// add records n bytes at p, which must be C memory.
func (b *GMACBatch) add(p unsafe.Pointer, n int, k *GMACKey) {
	j := &b.jobs[b.n]
	j.data, j.key, j.len, j.csum = C.uintptr_t(uintptr(p)), C.uintptr_t(uintptr(k.p)), C.uint32_t(n), 0
	b.keys[b.n] = k
	b.n++
}

// Len returns the number of jobs added since Reset.
func (b *GMACBatch) Len() int { return b.n }

// Verify checks every job's frame in one cgo call: OK(i) then reports
// whether frame i's MAC field holds its tag followed by 16 zero bytes. The
// frames are left unchanged; the tag comparison takes the same time
// wherever the tags differ.
func (b *GMACBatch) Verify() {
	if b.n == 0 {
		return
	}
	b.c.n = C.uint32_t(b.n)
	C.pr_gmac_verify(b.addr)
}

// OK reports Verify's answer for job i.
func (b *GMACBatch) OK(i int) bool { return b.jobs[i].ok != 0 }

// Sign writes every job's MAC in one cgo call: the MAC field is zeroed and
// the tag written into its first 16 bytes, over the seq already in the
// header; then, for a job added with AddSign, the UDP checksum.
func (b *GMACBatch) Sign() {
	if b.n == 0 {
		return
	}
	b.c.n = C.uint32_t(b.n)
	C.pr_gmac_sign(b.addr)
}

// verifyDirect and signDirect are Verify and Sign through
// intel-ipsec-mb's direct GMAC calls per frame (INIT, UPDATE, FINALIZE):
// the tests' second reference and the benchmarks' in-run one.
func (b *GMACBatch) verifyDirect() {
	b.c.n = C.uint32_t(b.n)
	C.pr_gmac_verify_direct(b.addr)
}

func (b *GMACBatch) signDirect() {
	b.c.n = C.uint32_t(b.n)
	C.pr_gmac_sign_direct(b.addr)
}

// Reset empties the batch for the next burst.
func (b *GMACBatch) Reset() {
	clear(b.keys[:b.n])
	// Sign clears the checksum fields it stored; a batch reset unsigned
	// may hold some, which Add does not overwrite.
	for i := range b.jobs[:b.n] {
		b.jobs[i].csum = 0
	}
	b.n = 0
}

// cBytes copies data into C memory for the tests (frames outside mbufs);
// free releases it.
func cBytes(data []byte) (p unsafe.Pointer, view []byte, free func()) {
	p = C.malloc(C.size_t(max(len(data), 1)))
	view = unsafe.Slice((*byte)(p), len(data))
	copy(view, data)
	return p, view, func() { C.free(p) }
}

// gmacTag computes the tag of data under k with the 12-byte iv, as is (no
// MAC field): the tests' NIST vectors.
func gmacTag(k *GMACKey, iv, data []byte) [16]byte {
	var tag [16]byte
	p, _, free := cBytes(data)
	defer free()
	q, _, freeIV := cBytes(iv)
	defer freeIV()
	t, _, freeT := cBytes(tag[:])
	defer freeT()
	C.pr_gmac_tag(k.p, (*C.uint8_t)(q), (*C.uint8_t)(p), C.uint64_t(len(data)), (*C.uint8_t)(t))
	copy(tag[:], unsafe.Slice((*byte)(t), 16))
	return tag
}
