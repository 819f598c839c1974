package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// NextHop is where Rewrite sends a frame: the outer Ethernet addresses, IP
// addresses and UDP ports of the next hop. It is a value without pointers
// (route and neighbour tables can hold millions without the garbage
// collector scanning them) and carries the checksum sums of its addresses
// and ports, computed once by NewNextHop rather than per frame.
type NextHop struct {
	dstMAC, srcMAC MAC
	srcPort        uint16
	dstPort        uint16
	// src and dst hold IPv4 addresses in their first four bytes.
	src, dst [16]byte
	v6       bool
	addrSum  uint64 // partial checksum sum of src and dst
	portSum  uint64 // partial checksum sum of srcPort and dstPort
}

// NewNextHop returns the next hop that sends from srcMAC and src to dstMAC
// and dst. Both addresses must be of one family (IPv4-mapped IPv6 addresses
// are refused); the ports matter only for POOL over UDP.
func NewNextHop(srcMAC, dstMAC MAC, src, dst netip.AddrPort) (NextHop, error) {
	s, d := src.Addr(), dst.Addr()
	if !s.IsValid() || !d.IsValid() || s.Is6() != d.Is6() || s.Is4In6() || d.Is4In6() {
		return NextHop{}, ErrAddrFamily
	}
	nh := NextHop{dstMAC: dstMAC, srcMAC: srcMAC, srcPort: src.Port(), dstPort: dst.Port(), v6: s.Is6()}
	if nh.v6 {
		nh.src, nh.dst = s.As16(), d.As16()
		nh.addrSum = sum(nh.dst[:], sum(nh.src[:], 0))
	} else {
		*(*[4]byte)(nh.src[:]), *(*[4]byte)(nh.dst[:]) = s.As4(), d.As4()
		nh.addrSum = sum(nh.dst[:4], sum(nh.src[:4], 0))
	}
	nh.portSum = uint64(nh.srcPort) + uint64(nh.dstPort)
	return nh, nil
}

// SrcMAC returns the Ethernet source address.
func (nh *NextHop) SrcMAC() MAC { return nh.srcMAC }

// DstMAC returns the Ethernet destination address.
func (nh *NextHop) DstMAC() MAC { return nh.dstMAC }

// Src returns the source address and port.
func (nh *NextHop) Src() netip.AddrPort { return netip.AddrPortFrom(nh.addr(nh.src), nh.srcPort) }

// Dst returns the destination address and port.
func (nh *NextHop) Dst() netip.AddrPort { return netip.AddrPortFrom(nh.addr(nh.dst), nh.dstPort) }

// IsIPv6 reports whether the next hop is reached over IPv6.
func (nh *NextHop) IsIPv6() bool { return nh.v6 }

func (nh *NextHop) addr(a [16]byte) netip.Addr {
	if nh.v6 {
		return netip.AddrFrom16(a)
	}
	return netip.AddrFrom4([4]byte(a[:4]))
}

// Rewrite readies a POOL frame that Classify accepted for its next hop, in
// place: Ethernet destination and source, IP source and destination, UDP
// ports (POOL over UDP), TTL or hop limit decremented. The IPv4 header
// checksum and a UDP checksum in use are updated incrementally (RFC 1624),
// so a checksum that was wrong stays wrong. VLAN tags, the POOL header and
// the payload are left alone; r stays valid for the frame (no offset moves).
//
// It returns DropTTLExpired if the TTL or hop limit is 1 or less, and
// DropAddrFamily if the frame is not POOL or the next hop is of the other IP
// family; the frame is then untouched.
func Rewrite(frame []byte, r *Result, nh *NextHop) DropReason {
	return rewrite(frame, r, nh, nil)
}

// RewriteHeld is Rewrite that leaves the UDP checksum field alone and holds
// its update in u instead, for a caller that changes more UDP-covered bytes
// afterwards (a relay's new seq and MAC): it adds their sums (UDPHeld.Add)
// and stores the checksum once (UDPHeld.Apply), where Rewrite and a second
// incremental update would read, fold and store it twice. It also tells,
// from the address sums it computes anyway, whether the checksum the frame
// came with was left to offload (UDPChecksumNotReady, on the frame as
// received), in which case Apply completes it over the final bytes. u is
// reset first; after a drop it holds nothing to apply.
func RewriteHeld(frame []byte, r *Result, nh *NextHop, u *UDPHeld) DropReason {
	*u = UDPHeld{}
	return rewrite(frame, r, nh, u)
}

// UDPHeld is a UDP checksum update held back by RewriteHeld: the sums of
// the words replaced and of their replacements, and the offset of the
// field. Keep it in the caller's per-frame state; its methods work in
// place.
type UDPHeld struct {
	// csum is the offset of the checksum field, 0 when there is none to
	// update (POOL over IP, UDP over IPv4 without a checksum, a drop).
	csum     int
	old, new uint64
	notReady bool
}

// Add folds the change of UDP-covered bytes starting at frame offset off
// into the held update: old and new are the sums (Sum) of the bytes before
// and after, as UpdateUDP takes them. Nothing is read or written.
func (u *UDPHeld) Add(off int, old, new uint64) {
	if u.csum == 0 {
		return
	}
	if (u.csum-6-off)&1 != 0 {
		old, new = uint64(bits.ReverseBytes16(fold(old))), uint64(bits.ReverseBytes16(fold(new)))
	}
	u.old += old
	u.new += new
}

// Pending returns the held update for a caller that completes it
// elsewhere (the hop MAC leaf in C, which writes a tag and then the
// checksum): csum is the checksum field's offset in the frame, old and new
// the sums so far, to which the caller adds the sum of the words it still
// changes, at an even distance from off, and stores the result as Apply
// does; csum 0 means there is nothing to store (POOL over IP, UDP over
// IPv4 without a checksum, a drop). ok is false when Apply must store it
// instead: a checksum left to offload (NotReady), or the field an odd
// distance from off (the words would count byte-swapped).
func (u *UDPHeld) Pending(off int) (csum int, old, new uint64, ok bool) {
	switch {
	case u.notReady || u.csum != 0 && (u.csum-6-off)&1 != 0:
		return 0, 0, 0, false
	case u.csum == 0:
		return 0, 0, 0, true
	}
	return u.csum, u.old, u.new, true
}

// NotReady reports whether the frame came with a UDP checksum left to
// offload (see UDPChecksumNotReady), which Apply completes.
func (u *UDPHeld) NotReady() bool { return u.notReady }

// Apply stores the held update in frame's UDP checksum: one incremental
// update (RFC 1624) for all the changes, or, for a checksum left to
// offload, the full checksum over the datagram's final bytes
// (CompleteUDPChecksum). Call it once, after the last change.
func (u *UDPHeld) Apply(frame []byte, r *Result) {
	switch {
	case u.csum == 0:
	case u.notReady:
		CompleteUDPChecksum(frame, r)
	default:
		f := frame[u.csum : u.csum+2]
		c := update(binary.BigEndian.Uint16(f), u.old, u.new)
		if c == 0 {
			c = 0xffff // zero would mean "no checksum"
		}
		binary.BigEndian.PutUint16(f, c)
	}
	u.csum = 0
}

// rewrite is Rewrite, holding the UDP checksum's update in held when it is
// not nil.
func rewrite(frame []byte, r *Result, nh *NextHop, held *UDPHeld) DropReason {
	k := r.Kind
	if !k.IsPool() || k.IsIPv6() != nh.v6 {
		return DropAddrFamily
	}
	// old collects the partial sum of the replaced words the UDP checksum
	// covers: the addresses (through the pseudo-header), then the ports.
	var old uint64
	if nh.v6 {
		h := (*[IPv6Len]byte)(frame[r.L3Off:])
		if h[7] <= 1 {
			return DropTTLExpired
		}
		// The hop limit is not covered by any checksum.
		h[7]--
		old = sum32((*[32]byte)(h[8:]))
		*(*[16]byte)(h[8:24]) = nh.src
		*(*[16]byte)(h[24:40]) = nh.dst
	} else {
		h := (*[IPv4MinLen]byte)(frame[r.L3Off:])
		if h[8] <= 1 {
			return DropTTLExpired
		}
		a := binary.BigEndian.Uint64(h[12:])
		old = a>>32 + a&0xffffffff
		// The TTL is the high byte of the TTL/protocol word: decrementing
		// it takes 0x0100 off that word (never below zero, TTL >= 2).
		ttlWord := uint64(binary.BigEndian.Uint16(h[8:]))
		h[8]--
		*(*[4]byte)(h[12:16]) = [4]byte(nh.src[:4])
		*(*[4]byte)(h[16:20]) = [4]byte(nh.dst[:4])
		c := binary.BigEndian.Uint16(h[10:])
		binary.BigEndian.PutUint16(h[10:], update(c, old+ttlWord, nh.addrSum+ttlWord-0x0100))
	}
	if k.IsUDP() {
		u := (*[UDPLen]byte)(frame[r.L4Off:])
		addrs := old
		old += uint64(binary.BigEndian.Uint16(u[0:])) + uint64(binary.BigEndian.Uint16(u[2:]))
		binary.BigEndian.PutUint32(u[0:], uint32(nh.srcPort)<<16|uint32(nh.dstPort))
		if held != nil {
			if c := binary.BigEndian.Uint16(u[6:]); c != 0 {
				// What UDPChecksumNotReady tests, from the old addresses'
				// sum at hand: the field holds the pseudo-header's sum.
				n := uint64(r.L4Len)
				held.notReady = fold(addrs+ProtoUDP+n&0xffff+n>>16) == c
				held.csum, held.old, held.new = int(r.L4Off)+6, old, nh.addrSum+nh.portSum
			}
		} else if c := binary.BigEndian.Uint16(u[6:]); c != 0 {
			// Zero means "no checksum" over IPv4 and is illegal over IPv6
			// (Classify drops it): a computed zero goes out as 0xffff.
			if c = update(c, old, nh.addrSum+nh.portSum); c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(u[6:], c)
		}
	}
	e := (*[12]byte)(frame)
	*(*MAC)(e[0:6]) = nh.dstMAC
	*(*MAC)(e[6:12]) = nh.srcMAC
	return DropNone
}

// sum32 is sum over 32 bytes (two IPv6 addresses), unrolled.
func sum32(a *[32]byte) uint64 {
	v0 := binary.BigEndian.Uint64(a[0:])
	v1 := binary.BigEndian.Uint64(a[8:])
	v2 := binary.BigEndian.Uint64(a[16:])
	v3 := binary.BigEndian.Uint64(a[24:])
	return v0>>32 + v0&0xffffffff + v1>>32 + v1&0xffffffff + v2>>32 + v2&0xffffffff + v3>>32 + v3&0xffffffff
}

// UDPPatch is an incremental UDP checksum update in progress, for changes
// to UDP-covered bytes after Classify: the per-hop seq and MAC of the POOL
// header, for instance. Begin records the sum of a byte range before the
// caller changes it; End folds the change into the checksum. In between the
// caller may write the range as often as it likes (a new seq, a zeroed MAC
// field, the MAC computed over the frame) and pays for one update. Keep it
// on the stack: its methods fill it in place, since a returned struct costs
// store-forwarding stalls on the packet path.
type UDPPatch struct {
	csum     int // offset of the checksum field; -1 if there is none to update
	off, end int
	old      uint64
	odd      bool // the range starts at an odd offset in the datagram
}

// Begin starts a change to frame[off:off+n], which must lie inside the UDP
// payload of a frame Classify accepted as POOL over UDP. Any offset and
// length are fine, odd ones included. For POOL over IP, or UDP over IPv4
// without a checksum, End has nothing to do.
//
// Begin panics if the range is outside the UDP payload: that is a bug in
// the caller, not a property of the frame.
func (p *UDPPatch) Begin(frame []byte, r *Result, off, n int) {
	p.csum, p.off, p.end = patchTarget(frame, r, off, n), off, off+n
	if p.csum >= 0 {
		p.old, p.odd = sum(frame[off:off+n], 0), (p.csum-6-off)&1 != 0
	}
}

// End updates the UDP checksum for what the range holds now.
func (p *UDPPatch) End(frame []byte) {
	if p.csum >= 0 {
		setPatched(frame, p.csum, p.odd, p.old, sum(frame[p.off:p.end], 0))
	}
}

// PatchUDP copies data into frame at off and updates the UDP checksum, if
// any, for the change. It panics like UDPPatch.Begin. It sums data where it
// is rather than reading the frame back after the copy: a load that
// straddles stores still in flight waits for them to reach the cache.
func PatchUDP(frame []byte, r *Result, off int, data []byte) {
	if c := patchTarget(frame, r, off, len(data)); c >= 0 {
		setPatched(frame, c, (c-6-off)&1 != 0, sum(frame[off:off+len(data)], 0), sum(data, 0))
	}
	copy(frame[off:], data)
}

// Sum returns the partial ones' complement sum of b read as big-endian
// 16-bit words (an odd last byte is the high half of a word): the old and
// new of UpdateUDP.
func Sum(b []byte) uint64 { return sum(b, 0) }

// UpdateUDP folds a change of bytes inside frame[off:off+n] into the UDP
// checksum, if any, given old and new: the sums (Sum, or the caller's own
// sum of the same 16-bit words) of the changed bytes before and after,
// every changed byte at an even distance from off counted as a high half.
// It is UDPPatch for a caller that has both sums at hand: it reads nothing
// of the frame back but the checksum, where End would re-read bytes the
// caller has just written (a load of bytes still in the store queue can
// wait for them; wire.sum after a MAC write measured 6% of a relayed
// frame). It panics like UDPPatch.Begin.
func UpdateUDP(frame []byte, r *Result, off, n int, old, new uint64) {
	if c := patchTarget(frame, r, off, n); c >= 0 {
		setPatched(frame, c, (c-6-off)&1 != 0, old, new)
	}
}

// patchTarget checks a patch range and returns the offset of the UDP
// checksum it must update, or -1 if there is none.
func patchTarget(frame []byte, r *Result, off, n int) int {
	if off < 0 || n < 0 || off+n > len(frame) {
		panic("wire: UDP patch range outside the frame")
	}
	if !r.Kind.IsUDP() {
		return -1
	}
	l4 := int(r.L4Off)
	if off < l4+UDPLen || off+n > l4+int(r.L4Len) {
		panic("wire: UDP patch range outside the UDP payload")
	}
	if UDP(frame[l4:l4+UDPLen]).Checksum() == 0 {
		return -1
	}
	return l4 + 6
}

// setPatched updates the UDP checksum at csum for a range whose contents
// summed to old and now sum to new; odd says the range starts at an odd
// offset in the datagram.
func setPatched(frame []byte, csum int, odd bool, old, new uint64) {
	if odd {
		// Summed from an odd offset, the bytes sit in the other halves of
		// the datagram's 16-bit words; a ones' complement sum is
		// byte-order independent, so swapping it puts it right.
		old, new = uint64(bits.ReverseBytes16(fold(old))), uint64(bits.ReverseBytes16(fold(new)))
	}
	c := binary.BigEndian.Uint16(frame[csum:])
	if c = update(c, old, new); c == 0 {
		c = 0xffff // zero would mean "no checksum"
	}
	binary.BigEndian.PutUint16(frame[csum:], c)
}
