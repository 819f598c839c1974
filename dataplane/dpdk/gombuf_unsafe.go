package dpdk

import (
	"fmt"
	"unsafe"
)

// GoMbufs are mbufs whose headers and data rooms are Go memory, laid out
// as DPDK's (the offsets above), so that every Mbuf accessor works on them
// unchanged: what an in-memory packet I/O (dpdk/bursttest) hands a worker
// in place of a PMD's frames, in builds without cgo and as any user.
//
// They belong to the GoMbufs, which must outlive every use of them and of
// their Handles (the garbage collector sees neither the headers' buffer
// pointers nor a Handle, only the GoMbufs' own slices). They must never
// reach DPDK: not FreeBulk, Free, a Ring or a real Burst, which would
// hand Go memory to rte_pktmbuf_free. Their owner (the fake Burst) frees
// them by Reset.
type GoMbufs struct {
	// hdr holds the headers, mbufSize bytes each; uint64 words keep the
	// buffer pointer at offset 0 aligned.
	hdr      []uint64
	room     []byte
	dataRoom int
}

// NewGoMbufs returns n mbufs of dataRoom bytes each (Headroom included,
// as in a mempool; DefaultDataRoom when 0), all Reset.
func NewGoMbufs(n, dataRoom int) (*GoMbufs, error) {
	if dataRoom == 0 {
		dataRoom = DefaultDataRoom
	}
	if n < 1 || dataRoom <= Headroom || dataRoom > 1<<16-1 {
		return nil, fmt.Errorf("dpdk: %d Go mbufs of %d bytes: want at least one, of more than %d and less than 65536 bytes", n, dataRoom, Headroom)
	}
	g := &GoMbufs{
		hdr:      make([]uint64, n*mbufSize/8),
		room:     make([]byte, n*dataRoom),
		dataRoom: dataRoom,
	}
	for i := range n {
		m := g.At(i)
		*(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(m), offBufAddr)) = unsafe.Pointer(&g.room[i*dataRoom])
		*m.u16(offBufLen) = uint16(dataRoom)
		g.Reset(m)
	}
	return g, nil
}

// Len returns the number of mbufs.
func (g *GoMbufs) Len() int { return len(g.hdr) * 8 / mbufSize }

// DataRoom returns each mbuf's data room, Headroom included.
func (g *GoMbufs) DataRoom() int { return g.dataRoom }

// At returns mbuf i, 0 <= i < Len.
func (g *GoMbufs) At(i int) *Mbuf {
	return (*Mbuf)(unsafe.Pointer(&g.hdr[i*mbufSize/8]))
}

// Index returns m's place among the GoMbufs (At(Index(m)) == m), or -1
// when m is not one of them.
func (g *GoMbufs) Index(m *Mbuf) int {
	base := uintptr(unsafe.Pointer(&g.hdr[0]))
	off := uintptr(unsafe.Pointer(m)) - base // wraps for m below base
	if off >= uintptr(len(g.hdr)*8) || off%mbufSize != 0 {
		return -1
	}
	return int(off / mbufSize)
}

// Reset makes m a fresh single-segment mbuf, as a mempool hands out: no
// data, Headroom bytes before it, port 0. m must be one of the GoMbufs.
func (g *GoMbufs) Reset(m *Mbuf) {
	*m.u16(offDataOff) = Headroom
	*m.u16(offDataLen) = 0
	*m.u32(offPktLen) = 0
	*m.u16(offNbSegs) = 1
	*m.u16(offRefcnt) = 1
	*m.u16(offPort) = 0
}

// SetSegments records n segments in m's header: a fake's way of handing a
// worker the multi-segment frame its PMD might (the views still cover the
// first segment, which is all there is).
func (g *GoMbufs) SetSegments(m *Mbuf, n int) { *m.u16(offNbSegs) = uint16(n) }
