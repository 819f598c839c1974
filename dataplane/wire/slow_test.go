package wire_test

// This file holds a reference classifier: slow, written for the reader
// rather than the CPU, sharing no code with the package (not even its
// checksum), so that fuzzing it against Classify finds bugs in either. It
// follows the package documentation step by step.

import (
	"github.com/poolrelay/poolrelay/dataplane/wire"
)

func be16(b []byte, i int) int { return int(b[i])<<8 | int(b[i+1]) }

func be64(b []byte, i int) uint64 {
	var v uint64
	for k := 0; k < 8; k++ {
		v = v<<8 | uint64(b[i+k])
	}
	return v
}

// slowSum is the RFC 1071 sum of b: 16-bit big-endian words, an odd byte
// padded with zero, carries folded back in after every addition.
func slowSum(b []byte) int {
	s := 0
	for i := 0; i < len(b); i += 2 {
		w := int(b[i]) << 8
		if i+1 < len(b) {
			w |= int(b[i+1])
		}
		s += w
		if s > 0xffff {
			s = s&0xffff + 1
		}
	}
	return s
}

// slowChecksumOK reports whether data with its checksum in place verifies.
func slowChecksumOK(b []byte) bool { return slowSum(b) == 0xffff }

func slowClassify(frame []byte, ports map[int]bool) wire.Result {
	var r wire.Result
	if len(frame) < 14 {
		r.Drop = wire.DropTruncated
		return r
	}
	etype := be16(frame, 12)
	pos := 14
	for etype == 0x8100 || etype == 0x88a8 {
		if r.VLANs == 2 {
			r.Drop = wire.DropTooManyVLANs
			return r
		}
		if len(frame) < pos+4 {
			r.Drop = wire.DropTruncated
			return r
		}
		r.TCI[r.VLANs] = uint16(be16(frame, pos))
		r.VLANs++
		etype = be16(frame, pos+2)
		pos += 4
	}
	r.EtherType = uint16(etype)
	r.L3Off = uint16(pos)
	switch etype {
	case 0x0800:
		slowIPv4(frame, pos, ports, &r)
	case 0x86dd:
		slowIPv6(frame, pos, ports, &r)
	case 0x0806:
		r.Kind = wire.KindARP
		a := frame[pos:]
		if len(a) < 28 {
			r.Drop = wire.DropTruncated
			return r
		}
		r.L3Len = 28
		op := be16(a, 6)
		if be16(a, 0) != 1 || be16(a, 2) != 0x0800 || a[4] != 6 || a[5] != 4 || (op != 1 && op != 2) {
			r.Drop = wire.DropBadARP
		}
	default:
		r.Drop = wire.DropUnknownEtherType
	}
	return r
}

func slowIPv4(frame []byte, pos int, ports map[int]bool, r *wire.Result) {
	ip := frame[pos:]
	if len(ip) < 20 {
		r.Drop = wire.DropTruncated
		return
	}
	version, ihl, total := int(ip[0]>>4), int(ip[0]&15), be16(ip, 2)
	if version != 4 || ihl < 5 || total < ihl*4 {
		r.Drop = wire.DropBadIPv4Header
		return
	}
	if total > len(ip) {
		r.Drop = wire.DropTruncated
		return
	}
	hlen := ihl * 4
	r.L3Len = uint32(total)
	r.TTL = ip[8]
	r.Proto = ip[9]
	r.L4Off = uint16(pos + hlen)
	r.L4Len = uint16(total - hlen)
	if !slowChecksumOK(ip[:hlen]) {
		r.Drop = wire.DropBadIPv4Checksum
		return
	}
	moreFragments := ip[6]&0x20 != 0
	fragOffset := be16(ip, 6) & 0x1fff
	if moreFragments || fragOffset != 0 {
		r.Drop = wire.DropFragment
		return
	}
	payload := ip[hlen:total]
	switch ip[9] {
	case 17:
		slowUDP(payload, pos+hlen, false, ports, r)
	case 253:
		r.Kind = wire.KindPoolIP4
		slowPool(payload, pos+hlen, r)
	default:
		r.Drop = wire.DropNotPool
	}
}

func slowIPv6(frame []byte, pos int, ports map[int]bool, r *wire.Result) {
	ip := frame[pos:]
	if len(ip) < 40 {
		r.Drop = wire.DropTruncated
		return
	}
	if ip[0]>>4 != 6 {
		r.Drop = wire.DropBadIPv6Header
		return
	}
	plen := be16(ip, 4)
	if plen > len(ip)-40 {
		r.Drop = wire.DropTruncated
		return
	}
	r.L3Len = uint32(40 + plen)
	r.TTL = ip[7]
	next, off, end := int(ip[6]), 40, 40+plen
	seen := 0
	for next == 0 || next == 43 || next == 60 {
		if seen == 4 || (next == 0 && seen > 0) {
			r.Drop = wire.DropIPv6Extension
			break
		}
		if end-off < 8 {
			r.Drop = wire.DropTruncated
			break
		}
		hlen := (int(ip[off+1]) + 1) * 8
		if off+hlen > end {
			r.Drop = wire.DropTruncated
			break
		}
		if next == 43 && ip[off+3] != 0 {
			r.Drop = wire.DropIPv6Extension
			break
		}
		next = int(ip[off])
		off += hlen
		seen++
	}
	r.Proto = uint8(next)
	r.L4Off = uint16(pos + off)
	r.L4Len = uint16(end - off)
	if r.Drop != wire.DropNone {
		return
	}
	upper := ip[off:end]
	switch next {
	case 44:
		r.Drop = wire.DropFragment
	case 51, 135, 139, 140:
		r.Drop = wire.DropIPv6Extension
	case 17:
		slowUDP(upper, pos+off, true, ports, r)
	case 253:
		r.Kind = wire.KindPoolIP6
		slowPool(upper, pos+off, r)
	case 58:
		slowND(ip[:40], upper, r)
	default:
		r.Drop = wire.DropNotPool
	}
}

func slowUDP(udp []byte, pos int, v6 bool, ports map[int]bool, r *wire.Result) {
	if len(udp) < 8 {
		r.Drop = wire.DropTruncated
		return
	}
	if !ports[be16(udp, 2)] {
		r.Drop = wire.DropNotPool
		return
	}
	r.Kind = wire.KindPoolUDP4
	if v6 {
		r.Kind = wire.KindPoolUDP6
	}
	if be16(udp, 4) != len(udp) {
		r.Drop = wire.DropBadUDPLength
		return
	}
	if v6 && be16(udp, 6) == 0 {
		r.Drop = wire.DropUDPZeroChecksum
		return
	}
	slowPool(udp[8:], pos+8, r)
}

func slowPool(p []byte, pos int, r *wire.Result) {
	r.PoolOff = uint16(pos)
	if len(p) < 80 {
		r.Drop = wire.DropTruncated
		return
	}
	r.Type = wire.Type(p[0] & 15)
	r.Flags = wire.Flags(be16(p, 2))
	r.Seq = be64(p, 4)
	copy(r.Session[:], p[20:36])
	r.Channel = p[46]
	r.PayloadOff = uint16(pos + 80)
	r.PayloadLen = uint16(len(p) - 80)
	switch {
	case p[0]>>4 != 1:
		r.Drop = wire.DropBadVersion
	case p[0]&15 > 11:
		r.Drop = wire.DropUnknownType
	case p[1] != 0 || p[47] != 0 || be16(p, 2)&0xf800 != 0:
		r.Drop = wire.DropReservedBits
	case be16(p, 44) != len(p)-80:
		r.Drop = wire.DropPayloadLength
	}
}

func slowND(ip, icmp []byte, r *wire.Result) {
	if len(icmp) < 4 {
		r.Drop = wire.DropTruncated
		return
	}
	if icmp[0] != 135 && icmp[0] != 136 {
		r.Drop = wire.DropNotPool
		return
	}
	r.Kind = wire.KindND
	if !slowNDValid(ip, icmp) {
		r.Drop = wire.DropBadND
	}
}

func slowNDValid(ip, icmp []byte) bool {
	if len(icmp) < 24 || ip[7] != 255 || icmp[1] != 0 {
		return false
	}
	// The pseudo-header, spelled out (RFC 8200, section 8.1).
	pseudo := append([]byte{}, ip[8:40]...)
	pseudo = append(pseudo, byte(len(icmp)>>24), byte(len(icmp)>>16), byte(len(icmp)>>8), byte(len(icmp)), 0, 0, 0, 58)
	if !slowChecksumOK(append(pseudo, icmp...)) {
		return false
	}
	if icmp[8] == 0xff || ip[8] == 0xff {
		return false
	}
	hasSourceLL := false
	for o := icmp[24:]; len(o) > 0; {
		if len(o) < 2 || o[1] == 0 || int(o[1])*8 > len(o) {
			return false
		}
		if o[0] == 1 {
			hasSourceLL = true
		}
		o = o[int(o[1])*8:]
	}
	unspecified := true
	for _, b := range ip[8:24] {
		unspecified = unspecified && b == 0
	}
	dst := ip[24:40]
	solicitedNode := dst[0] == 0xff && dst[1] == 0x02 && dst[11] == 1 && dst[12] == 0xff
	for _, b := range dst[2:11] {
		solicitedNode = solicitedNode && b == 0
	}
	if icmp[0] == 135 {
		return !unspecified || (solicitedNode && !hasSourceLL)
	}
	return !(dst[0] == 0xff && icmp[4]&0x40 != 0)
}

// slowRewrite is the reference rewrite: every field written byte by byte,
// the IPv4 header checksum and a UDP checksum in use recomputed from
// scratch.
func slowRewrite(frame []byte, r *wire.Result, nh *wire.NextHop) wire.DropReason {
	v6 := r.Kind == wire.KindPoolUDP6 || r.Kind == wire.KindPoolIP6
	switch {
	case r.Kind != wire.KindPoolUDP4 && r.Kind != wire.KindPoolIP4 && !v6, v6 != nh.IsIPv6():
		return wire.DropAddrFamily
	}
	l3 := int(r.L3Off)
	ttl := l3 + 8
	if v6 {
		ttl = l3 + 7
	}
	if frame[ttl] <= 1 {
		return wire.DropTTLExpired
	}
	frame[ttl]--
	dstMAC, srcMAC := nh.DstMAC(), nh.SrcMAC()
	copy(frame[0:6], dstMAC[:])
	copy(frame[6:12], srcMAC[:])
	src, dst := nh.Src(), nh.Dst()
	var pseudo []byte
	if v6 {
		copy(frame[l3+8:l3+24], src.Addr().AsSlice())
		copy(frame[l3+24:l3+40], dst.Addr().AsSlice())
		pseudo = append(pseudo, frame[l3+8:l3+40]...)
	} else {
		copy(frame[l3+12:l3+16], src.Addr().AsSlice())
		copy(frame[l3+16:l3+20], dst.Addr().AsSlice())
		hlen := int(frame[l3]&15) * 4
		frame[l3+10], frame[l3+11] = 0, 0
		c := ^slowSum(frame[l3:l3+hlen]) & 0xffff
		frame[l3+10], frame[l3+11] = byte(c>>8), byte(c)
		pseudo = append(pseudo, frame[l3+12:l3+20]...)
	}
	if r.Kind != wire.KindPoolUDP4 && r.Kind != wire.KindPoolUDP6 {
		return wire.DropNone
	}
	u := frame[r.L4Off : int(r.L4Off)+int(r.L4Len)]
	u[0], u[1] = byte(src.Port()>>8), byte(src.Port())
	u[2], u[3] = byte(dst.Port()>>8), byte(dst.Port())
	if u[6] == 0 && u[7] == 0 {
		return wire.DropNone
	}
	u[6], u[7] = 0, 0
	pseudo = append(pseudo, 0, 0, byte(len(u)>>8), byte(len(u)), 0, 0, 0, 17)
	c := ^slowSum(append(pseudo, u...)) & 0xffff
	if c == 0 {
		c = 0xffff
	}
	u[6], u[7] = byte(c>>8), byte(c)
	return wire.DropNone
}
