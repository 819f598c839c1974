package main

import (
	"encoding/binary"

	"github.com/poolrelay/poolrelay/dataplane/dpdk"
)

// A Processor is the per-burst work the driver measures on the binding,
// and the slot the relay worker plugs into (wire codec, route lookup,
// counters): add it to processors with the testpmd mode it is judged
// against (macswap, which also rewrites every frame).
type Processor struct {
	// Name names the table row.
	Name string
	// Testpmd is the dpdk-testpmd forwarding mode measured alongside.
	Testpmd string
	// Frame, when set, is written into every mbuf of the pool before the
	// run. net_null hands out its mbufs without touching their bytes, so
	// every frame the worker receives is this one: the relay needs valid
	// POOL frames for the benchmark's routes here.
	Frame func(size int) []byte
	// Process handles one burst on the worker: rx are the frames just
	// received on port in (0 or 1), and each must go to exactly one of
	// b.Send (the TX index is the port index), b.Drop or b.Punt. It runs
	// once per burst, so it must not allocate, lock, log or block.
	Process func(b *dpdk.Burst, in int, rx []*dpdk.Mbuf)
	// Egress, when set, runs the processor through egress class queues:
	// the worker's Burst is made with KeepRefused and CollectInject, Attach
	// is called with it before the first Cycle, Drain before every Cycle
	// and Detach when the worker stops (before the Burst's Close).
	Egress *EgressHooks
}

// EgressHooks are a Processor's egress steps (see Processor.Egress).
type EgressHooks struct {
	Attach func(e *dpdk.EAL, b *dpdk.Burst, ports []*dpdk.Port) error
	Drain  func(b *dpdk.Burst)
	Detach func(b *dpdk.Burst)
}

// processors are the binding's runs, in table order.
var processors = []Processor{
	{Name: "binding io", Testpmd: "io", Frame: udpFrame, Process: ioForward},
	{Name: "binding io per-frame", Testpmd: "io", Frame: udpFrame, Process: ioPerFrame},
	{Name: "binding macswap", Testpmd: "macswap", Frame: udpFrame, Process: macSwap},
}

// ioForward sends the whole burst out of the other port untouched, as
// testpmd's io mode does: no per-frame work, so this is the binding's own
// cost (one cgo call per burst, the Go loop, the C arrays).
func ioForward(b *dpdk.Burst, in int, rx []*dpdk.Mbuf) {
	b.SendBurst(in^1, rx)
}

// ioPerFrame is ioForward with a Send per frame, the relay's way (each
// frame has its own egress): the cost of the per-frame hand-over.
func ioPerFrame(b *dpdk.Burst, in int, rx []*dpdk.Mbuf) {
	out := in ^ 1
	for _, m := range rx {
		b.Send(out, m)
	}
}

// macSwap swaps the Ethernet source and destination of every frame and
// sends it out of the other port, as testpmd's macswap mode does: the
// cost of touching each frame through Mbuf.Data.
func macSwap(b *dpdk.Burst, in int, rx []*dpdk.Mbuf) {
	out := in ^ 1
	for _, m := range rx {
		swapMAC(m.Data())
		b.Send(out, m)
	}
}

// swapMAC swaps the destination and source addresses of an Ethernet frame
// in place, in four loads and four stores (copy through a temporary would
// call memmove three times per frame). Shorter frames are left alone.
func swapMAC(d []byte) {
	if len(d) < 12 {
		return
	}
	le := binary.LittleEndian
	dst0, dst1 := le.Uint32(d[0:]), le.Uint16(d[4:])
	le.PutUint32(d[0:], le.Uint32(d[6:]))
	le.PutUint16(d[4:], le.Uint16(d[10:]))
	le.PutUint32(d[6:], dst0)
	le.PutUint16(d[10:], dst1)
}

// udpFrame returns an Ethernet/IPv4/UDP frame of size bytes (at least 42)
// to the relay port, zero payload, with a valid IPv4 checksum.
func udpFrame(size int) []byte {
	f := make([]byte, max(size, 42))
	copy(f[0:], []byte{0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00})
	ip := f[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(len(f)-14))
	copy(ip[12:], []byte{198, 51, 100, 1, 198, 51, 100, 2})
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := f[34:42]
	binary.BigEndian.PutUint16(udp[0:], 9254)
	binary.BigEndian.PutUint16(udp[2:], 9254)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(f)-34))
	return f
}
