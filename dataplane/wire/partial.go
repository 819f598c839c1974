package wire

import "encoding/binary"

// Checksums a sender left to offload.
//
// A Linux sender whose interface offers TX checksum offload (a veth does
// by default) hands the device a UDP datagram whose checksum field holds
// only the pseudo-header's folded sum (CHECKSUM_PARTIAL: "the device adds
// the rest"). A veth never adds it: the stack on its other end trusts the
// skb's flag, but a DPDK port on that end (AF_PACKET, AF_XDP) reads the
// bytes alone and DPDK 22.11's PMDs do not pass on the kernel's "checksum
// not ready" status (TP_STATUS_CSUMNOTREADY), so the frame looks like one
// with a wrong checksum. A relay that updated such a checksum incrementally
// would forward a wrong one, which the next kernel drops (InCsumErrors).
//
// UDPChecksumNotReady recognises the field by its value, a few additions
// per frame; CompleteUDPChecksum then does what the device would have
// done, over the frame as it leaves. A datagram with a real checksum that
// happens to equal its pseudo-header sum (one in 65536 at random) is
// recomputed too, which leaves it right: the test has no false result that
// forwards a wrong checksum.

// UDPChecksumNotReady reports whether the UDP checksum of a frame that
// Classify found to be POOL over UDP holds only its pseudo-header's sum,
// as a sender's stack leaves it for checksum offload. A zero checksum
// (none, over IPv4) is not one. Cheap enough for the packet path: it sums
// the two addresses, not the datagram.
func UDPChecksumNotReady(frame []byte, r *Result) bool {
	if !r.Kind.IsUDP() {
		return false
	}
	l4 := int(r.L4Off)
	c := binary.BigEndian.Uint16(frame[l4+6:])
	if c == 0 {
		return false
	}
	n := uint64(r.L4Len)
	var pseudo uint64
	if r.Kind.IsIPv6() {
		pseudo = sum32((*[32]byte)(frame[int(r.L3Off)+8:]))
	} else {
		a := binary.BigEndian.Uint64(frame[int(r.L3Off)+12:])
		pseudo = a>>48 + a>>32&0xffff + a>>16&0xffff + a&0xffff
	}
	return fold(pseudo+ProtoUDP+n&0xffff+n>>16) == c
}

// CompleteUDPChecksum computes the UDP checksum of a frame that Classify
// found to be POOL over UDP over the datagram's current bytes and headers
// (after Rewrite and any patching) and stores it: what the sender's device
// would have stored for a checksum left to offload. It reads the whole
// datagram.
func CompleteUDPChecksum(frame []byte, r *Result) {
	if !r.Kind.IsUDP() {
		return
	}
	d := frame[r.L4Off : int(r.L4Off)+int(r.L4Len)]
	u := UDP(d)
	u.SetChecksum(0)
	u.SetChecksum(udpChecksum(d, udpPseudoSum(frame, r)))
}
