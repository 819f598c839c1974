package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
)

// seedFrames adds every frame of the classify table to f's corpus.
func seedFrames(f *testing.F) {
	for _, tc := range classifyCases() {
		f.Add(tc.frame(f))
	}
}

func nextHop(tb testing.TB, v6 bool) wire.NextHop {
	src, dst := wiretest.Relay4, wiretest.Next4
	if v6 {
		src, dst = wiretest.Relay6, wiretest.Next6
	}
	nh, err := wire.NewNextHop(wiretest.RelayMAC, wiretest.NextMAC,
		netip.AddrPortFrom(src, wire.RelayPort), netip.AddrPortFrom(dst, wire.RelayPort))
	if err != nil {
		tb.Fatal(err)
	}
	return nh
}

// FuzzClassify checks Classify against the reference classifier on any
// bytes, and exercises what the data plane does next with what it accepts:
// ARP and ND answers, and the rewrite for the next hop.
func FuzzClassify(f *testing.F) {
	seedFrames(f)
	nh4, nh6 := nextHop(f, false), nextHop(f, true)
	f.Fuzz(func(t *testing.T, frame []byte) {
		r := classify(frame)
		if want := slowClassify(frame, testPorts); r != want {
			t.Fatalf("fast and reference classifiers disagree:\n fast %+v\n slow %+v", r, want)
		}
		checkBounds(t, frame, &r)
		if r.Drop == wire.DropNone && r.Kind == wire.KindOther {
			t.Fatalf("kind %v with drop %q", r.Kind, r.Drop)
		}
		// Room to grow, as an mbuf has.
		buf := make([]byte, len(frame), len(frame)+wiretest.BufLen)
		copy(buf, frame)
		switch {
		case r.Drop != wire.DropNone:
		case r.Kind == wire.KindARP:
			checkAnswerARP(t, buf, &r)
		case r.Kind == wire.KindND:
			checkAnswerND(t, buf, &r)
		case r.Kind.IsIPv6():
			checkRewrite(t, buf, &r, &nh6)
		default:
			checkRewrite(t, buf, &r, &nh4)
		}
	})
}

func checkAnswerARP(t *testing.T, frame []byte, r *wire.Result) {
	req := wire.ARP(bytes.Clone(frame[r.L3Off:]))
	if !wire.AnswerARP(frame, r, wiretest.RelayMAC) {
		if req.Op() == wire.ARPOpRequest {
			t.Fatal("AnswerARP refused a valid request")
		}
		return
	}
	if req.Op() != wire.ARPOpRequest {
		t.Fatal("AnswerARP answered a reply")
	}
	a := classify(frame)
	if a.Kind != wire.KindARP || a.Drop != wire.DropNone || a.L3Off != r.L3Off || a.TCI != r.TCI {
		t.Fatalf("answer classifies as %+v", a)
	}
	rep := wire.ARP(frame[r.L3Off:])
	e := wire.Ethernet(frame)
	if rep.Op() != wire.ARPOpReply || rep.SenderMAC() != wiretest.RelayMAC || rep.SenderIP() != req.TargetIP() ||
		rep.TargetMAC() != req.SenderMAC() || rep.TargetIP() != req.SenderIP() ||
		e.Dst() != req.SenderMAC() || e.Src() != wiretest.RelayMAC {
		t.Fatalf("bad reply % x to request % x", frame[r.L3Off:int(r.L3Off)+wire.ARPLen], req[:wire.ARPLen])
	}
}

func checkAnswerND(t *testing.T, frame []byte, r *wire.Result) {
	orig := bytes.Clone(frame)
	ns := wire.ND(orig[r.L4Off : int(r.L4Off)+int(r.L4Len)])
	n, ok := wire.AnswerND(frame, r, wiretest.RelayMAC)
	if !ok {
		if ns.Type() == wire.ICMPv6NeighborSolicit {
			t.Fatal("AnswerND refused a valid solicitation")
		}
		if !bytes.Equal(frame, orig) {
			t.Fatal("AnswerND changed a frame it refused")
		}
		return
	}
	frame = frame[:n]
	a := classify(frame)
	if a.Kind != wire.KindND || a.Drop != wire.DropNone || a.TCI != r.TCI || a.VLANs != r.VLANs {
		t.Fatalf("answer classifies as %+v", a)
	}
	na := wire.ND(frame[a.L4Off : int(a.L4Off)+int(a.L4Len)])
	ip := wire.IPv6(frame[a.L3Off:])
	lla, _ := na.LinkAddr()
	if na.Type() != wire.ICMPv6NeighborAdvert || na.Target() != ns.Target() || lla != wiretest.RelayMAC ||
		ip.Src() != ns.Target() || wire.Ethernet(frame).Src() != wiretest.RelayMAC {
		t.Fatalf("bad advertisement % x", frame)
	}
	if fromUnspecified := wire.IPv6(orig[r.L3Off:]).Src() == [16]byte{}; fromUnspecified != (na.Flags()&wire.NDFlagSolicited == 0) {
		t.Fatalf("solicited flag %#x for a solicitation from %v", na.Flags(), wire.IPv6(orig[r.L3Off:]).SrcAddr())
	}
}

// checkRewrite rewrites a POOL frame and checks it against the reference
// rewrite: the same bytes, the same checksums where the reference could
// recompute them, and a checksum's validity kept either way.
func checkRewrite(t *testing.T, frame []byte, r *wire.Result, nh *wire.NextHop) {
	want := bytes.Clone(frame)
	validUDP := r.Kind.IsUDP() && wire.UDPChecksumValid(frame, r)
	wantDrop := slowRewrite(want, r, nh)
	if got := wire.Rewrite(frame, r, nh); got != wantDrop {
		t.Fatalf("Rewrite = %q, reference %q", got, wantDrop)
	}
	if wantDrop != wire.DropNone {
		if !bytes.Equal(frame, want) {
			t.Fatal("Rewrite changed a frame it refused")
		}
		return
	}
	// The rewritten frame goes to the next hop's port.
	var a wire.Result
	wire.Classify(frame, wiretest.Matcher(nh.Dst().Port()), &a)
	if a.Kind != r.Kind || a.Drop != wire.DropNone || a.TTL != r.TTL-1 || a.Session != r.Session || a.Seq != r.Seq {
		t.Fatalf("rewritten frame classifies as %+v, was %+v", a, r)
	}
	if r.Kind.IsUDP() {
		if wire.UDPChecksumValid(frame, &a) != validUDP {
			t.Fatalf("UDP checksum validity changed from %v", validUDP)
		}
		if validUDP {
			// Where the reference could recompute, the two agree.
			sameChecksum(t, "UDP", frame, want, int(r.L4Off)+6)
		}
		copy(want[r.L4Off+6:r.L4Off+8], frame[r.L4Off+6:r.L4Off+8])
	}
	if !r.Kind.IsIPv6() {
		sameChecksum(t, "IPv4", frame, want, int(r.L3Off)+10)
		copy(want[r.L3Off+10:r.L3Off+12], frame[r.L3Off+10:r.L3Off+12])
	}
	if !bytes.Equal(frame, want) {
		t.Fatalf("rewrite\n got % x\nwant % x", frame, want)
	}
}

// sameChecksum compares the checksums at off. The incremental update is
// exact (see update): it must equal the reference's recomputation bit for
// bit, the representation of zero included.
func sameChecksum(t *testing.T, what string, got, want []byte, off int) {
	if g, w := binary.BigEndian.Uint16(got[off:]), binary.BigEndian.Uint16(want[off:]); g != w {
		t.Fatalf("%s checksum %#04x, reference %#04x", what, g, w)
	}
}

// FuzzBuild builds frames from fuzzed specs and checks that Classify and
// the views read back every field, with valid checksums.
func FuzzBuild(f *testing.F) {
	f.Add(false, false, uint8(0), uint16(0), uint16(0), uint8(64), uint8(0), uint16(1), uint32(0), uint16(40000), uint16(9254), false,
		uint8(3), uint16(0), uint64(1), uint64(0), uint64(0), uint8(0), []byte("session"), []byte("payload"), []byte("mac"))
	f.Add(true, true, uint8(2), uint16(0xffff), uint16(1), uint8(1), uint8(0xb8), uint16(0), uint32(0xfffff), uint16(9254), uint16(9253), true,
		uint8(11), uint16(0x3ff), ^uint64(0), uint64(7), uint64(1<<62), uint8(2), []byte{}, make([]byte, 1400), []byte{1, 2, 3})
	f.Add(false, true, uint8(1), uint16(5), uint16(6), uint8(0), uint8(0), uint16(0), uint32(0), uint16(1), uint16(2), false,
		uint8(0), uint16(0), uint64(0), uint64(0), uint64(0), uint8(0), []byte{}, make([]byte, 0xffff-wire.HeaderLen-wire.IPv4MinLen+1), []byte{})
	f.Fuzz(func(t *testing.T, v6, encapIP bool, nvlan uint8, tci0, tci1 uint16, ttl, tos uint8, id uint16, flow uint32,
		sport, dport uint16, noCsum bool, typ uint8, flags uint16, seq, ack, ts uint64, channel uint8, session, payload, mac []byte) {
		s := wiretest.Spec(v6)
		tags := []wire.VLANTag{{TPID: wire.EtherTypeQinQ, TCI: tci0}, {TPID: wire.EtherTypeVLAN, TCI: tci1}}
		s.VLANs = tags[:nvlan%3]
		if nvlan%3 == 1 && nvlan&4 != 0 {
			s.VLANs = []wire.VLANTag{{TCI: tci1}} // zero TPID: 802.1Q
		}
		if encapIP {
			s.Encap = wire.EncapIP
		}
		s.TTL, s.TOS, s.ID, s.FlowLabel = ttl, tos, id, flow&0xfffff
		s.SrcPort, s.DstPort = sport, []uint16{wire.PoolPort, wire.RelayPort, extraPort}[dport%3]
		s.NoUDPChecksum = noCsum
		s.Pool = wire.Fields{
			Type: wire.Type(typ % wire.NumTypes), Flags: wire.Flags(flags) &^ wire.FlagsReserved,
			Seq: seq, Ack: ack, Timestamp: ts, Channel: channel,
		}
		copy(s.Pool.Session[:], session)
		copy(s.Pool.MAC[:], mac)
		s.Payload = payload

		buf := make([]byte, wiretest.BufLen+len(payload))
		n, err := wire.Build(buf, &s)
		ipPayload := wire.HeaderLen + len(payload)
		if !encapIP {
			ipPayload += wire.UDPLen
		}
		if tooLong := ipPayload > 0xffff || !v6 && ipPayload+wire.IPv4MinLen > 0xffff; tooLong || err != nil {
			if !tooLong || !errors.Is(err, wire.ErrTooLong) {
				t.Fatalf("%d-byte IP payload: %v", ipPayload, err)
			}
			return
		}
		frame := buf[:n]
		r := classify(frame)
		if r != slowClassify(frame, testPorts) {
			t.Fatalf("fast and reference classifiers disagree on a built frame: %+v", r)
		}
		kind := map[[2]bool]wire.Kind{
			{false, false}: wire.KindPoolUDP4, {true, false}: wire.KindPoolUDP6,
			{false, true}: wire.KindPoolIP4, {true, true}: wire.KindPoolIP6,
		}[[2]bool{v6, encapIP}]
		if r.Drop != wire.DropNone || r.Kind != kind {
			t.Fatalf("built frame classifies as %v, drop %q", r.Kind, r.Drop)
		}
		wantTTL := ttl
		if ttl == 0 {
			wantTTL = wire.DefaultTTL
		}
		if int(r.VLANs) != len(s.VLANs) || r.TTL != wantTTL || r.PayloadLen != uint16(len(payload)) ||
			!bytes.Equal(r.Payload(frame), payload) || int(r.PayloadOff)+len(payload) != n {
			t.Fatalf("result %+v", r)
		}
		e := wire.Ethernet(frame)
		if e.Dst() != s.Dst || e.Src() != s.Src {
			t.Fatal("MACs")
		}
		for i, tag := range s.VLANs {
			if tag.TPID == 0 {
				tag.TPID = wire.EtherTypeVLAN
			}
			if e.Tag(i) != tag || r.TCI[i] != tag.TCI {
				t.Fatalf("tag %d: %+v, want %+v", i, e.Tag(i), tag)
			}
		}
		if v6 {
			ip := wire.IPv6(frame[r.L3Off:])
			if ip.SrcAddr() != s.SrcIP || ip.DstAddr() != s.DstIP || ip.TrafficClass() != tos || ip.FlowLabel() != s.FlowLabel ||
				ip.HopLimit() != wantTTL || int(ip.PayloadLen())+wire.IPv6Len != int(r.L3Len) {
				t.Fatalf("IPv6 header % x", ip[:wire.IPv6Len])
			}
		} else {
			ip := wire.IPv4(frame[r.L3Off:])
			if ip.SrcAddr() != s.SrcIP || ip.DstAddr() != s.DstIP || ip.TOS() != tos || ip.ID() != id || ip.TTL() != wantTTL ||
				ip.DontFragment() || ip.IsFragment() || !ip.ChecksumValid() || !slowChecksumOK(ip[:20]) {
				t.Fatalf("IPv4 header % x", ip[:wire.IPv4MinLen])
			}
		}
		if !encapIP {
			u := wire.UDP(frame[r.L4Off:])
			if u.SrcPort() != s.SrcPort || u.DstPort() != s.DstPort || int(u.Length()) != int(r.L4Len) {
				t.Fatalf("UDP header % x", u[:wire.UDPLen])
			}
			if (u.Checksum() == 0) != (noCsum && !v6) || !wire.UDPChecksumValid(frame, &r) || !slowUDPChecksumOK(frame, &r) {
				t.Fatalf("UDP checksum %#04x (no checksum asked: %v)", u.Checksum(), noCsum)
			}
		}
		h := r.Pool(frame)
		if h.Fields() != s.Pool || h.Version() != wire.Version || h.PayloadLen() != uint16(len(payload)) ||
			r.Type != s.Pool.Type || r.Flags != s.Pool.Flags || r.Seq != seq || r.Session != s.Pool.Session || r.Channel != channel {
			t.Fatalf("POOL header %+v, want %+v", h.Fields(), s.Pool)
		}
	})
}

// slowUDPChecksumOK verifies a UDP checksum with the reference sum and a
// pseudo-header spelled out byte by byte.
func slowUDPChecksumOK(frame []byte, r *wire.Result) bool {
	d := frame[r.L4Off : int(r.L4Off)+int(r.L4Len)]
	var pseudo []byte
	if r.Kind.IsIPv6() {
		pseudo = append(pseudo, frame[r.L3Off+8:r.L3Off+40]...)
	} else {
		if be16(d, 6) == 0 {
			return true
		}
		pseudo = append(pseudo, frame[r.L3Off+12:r.L3Off+20]...)
	}
	pseudo = append(pseudo, 0, 0, byte(len(d)>>8), byte(len(d)), 0, 0, 0, 17)
	return slowChecksumOK(append(pseudo, d...))
}

// FuzzRewrite rewrites built frames for fuzzed next hops, with the UDP
// checksum possibly corrupted, against the reference rewrite.
func FuzzRewrite(f *testing.F) {
	f.Add(false, false, uint8(64), []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}, uint16(1), uint16(2), uint16(0), false)
	f.Add(true, true, uint8(1), make([]byte, 16), bytes.Repeat([]byte{0xff}, 16), uint16(0), uint16(0xffff), uint16(0x8000), false)
	f.Add(false, false, uint8(2), []byte{0, 0, 0, 0}, []byte{0, 0, 0, 0}, uint16(0), uint16(0), uint16(1), true)
	f.Fuzz(func(t *testing.T, v6, vlan bool, ttl uint8, src, dst []byte, sport, dport, corrupt uint16, noCsum bool) {
		s := wiretest.Spec(v6)
		s.TTL = ttl
		s.NoUDPChecksum = noCsum
		if vlan {
			s.VLANs = []wire.VLANTag{{TCI: 7}}
		}
		frame := wiretest.Frame(t, &s)
		r := classify(frame)
		if ttl == 0 {
			// Build's default; set the byte directly to reach TTL 0.
			if v6 {
				wire.IPv6(frame[r.L3Off:]).SetHopLimit(0)
			} else {
				ip := wire.IPv4(frame[r.L3Off:])
				ip.SetTTL(0)
				ip.UpdateChecksum()
			}
			r = classify(frame)
		}
		if c := wire.UDP(frame[r.L4Off:]).Checksum(); c != 0 && corrupt != 0 {
			wire.UDP(frame[r.L4Off:]).SetChecksum(c ^ corrupt)
			r = classify(frame)
		}
		if r.Drop != wire.DropNone {
			return // a corrupted IPv6 checksum may have become zero
		}
		sa, da, ok := wiretest.FuzzAddrs(v6, src, dst)
		if !ok {
			return
		}
		nh, err := wire.NewNextHop(wiretest.RelayMAC, wiretest.NextMAC, netip.AddrPortFrom(sa, sport), netip.AddrPortFrom(da, dport))
		if err != nil {
			t.Fatal(err)
		}
		if nh.Src() != netip.AddrPortFrom(sa, sport) || nh.Dst() != netip.AddrPortFrom(da, dport) || nh.IsIPv6() != v6 {
			t.Fatalf("next hop reads back %v -> %v", nh.Src(), nh.Dst())
		}
		checkRewrite(t, frame, &r, &nh)
		other := nextHop(t, !v6)
		if got := wire.Rewrite(frame, &r, &other); got != wire.DropAddrFamily {
			t.Fatalf("Rewrite with a next hop of the other family: %q", got)
		}
	})
}

// FuzzPatchUDP patches fuzzed bytes into the POOL part of a built frame,
// with PatchUDP and with UDPPatch's Begin and End, and checks that the UDP checksum
// stays valid (or stays invalid).
func FuzzPatchUDP(f *testing.F) {
	f.Add(false, uint16(4), []byte{1, 2, 3, 4, 5, 6, 7, 8}, uint16(0))
	f.Add(true, uint16(48), bytes.Repeat([]byte{0xa5}, 32), uint16(0))
	f.Add(false, uint16(7), []byte{0xff, 0, 0xff}, uint16(0x1234))
	f.Fuzz(func(t *testing.T, v6 bool, off uint16, data []byte, corrupt uint16) {
		frame := build(t, v6)
		r := classify(frame)
		u := wire.UDP(frame[r.L4Off:])
		u.SetChecksum(u.Checksum() ^ corrupt)
		if u.Checksum() == 0 {
			return
		}
		valid := wire.UDPChecksumValid(frame, &r)
		start := int(r.PoolOff) + int(off)%(int(r.L4Len)-wire.UDPLen)
		end := min(start+len(data), int(r.L4Off)+int(r.L4Len))
		data = data[:end-start]
		wire.PatchUDP(frame, &r, start, data)
		if !bytes.Equal(frame[start:end], data) {
			t.Fatal("PatchUDP did not copy")
		}
		if wire.UDPChecksumValid(frame, &r) != valid || valid && !slowUDPChecksumOK(frame, &r) {
			t.Fatalf("checksum validity changed from %v", valid)
		}
		// The same range again in two phases, written twice in between:
		// only what it holds at End counts.
		var p wire.UDPPatch
		p.Begin(frame, &r, start, len(data))
		for i := range data {
			frame[start+i] = ^data[i]
		}
		copy(frame[start:], bytes.Repeat([]byte{0x5a}, len(data)))
		p.End(frame)
		if wire.UDPChecksumValid(frame, &r) != valid || valid && !slowUDPChecksumOK(frame, &r) {
			t.Fatalf("checksum validity changed from %v after a two-phase patch", valid)
		}
	})
}

// FuzzHeader checks the POOL header view against direct byte reads, its
// setters against its getters, and Check against the reference.
func FuzzHeader(f *testing.F) {
	f.Add(make([]byte, wire.HeaderLen), uint16(0))
	f.Add(wiretest.Inner([]byte("x"))[:wire.HeaderLen], uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, n uint16) {
		h := wire.Header(b)
		if len(b) < wire.HeaderLen {
			if h.Check(int(n)) != wire.DropTruncated {
				t.Fatal("short header not truncated")
			}
			return
		}
		// The reference checks a whole POOL frame: give it n payload bytes.
		var r wire.Result
		slowPool(append(bytes.Clone(b[:wire.HeaderLen]), make([]byte, n)...), 0, &r)
		if got := h.Check(int(n)); got != r.Drop {
			t.Fatalf("Check(%d) = %q, reference %q", n, got, r.Drop)
		}
		session := h.Session()
		if h.Version() != b[0]>>4 || h.Type() != wire.Type(b[0]&15) || h.Flags() != wire.Flags(be16(b, 2)) ||
			h.Seq() != be64(b, 4) || h.Ack() != be64(b, 12) || !bytes.Equal(session[:], b[20:36]) ||
			h.Timestamp() != be64(b, 36) || int(h.PayloadLen()) != be16(b, 44) || h.Channel() != b[46] ||
			!bytes.Equal(h.MACBytes(), b[48:80]) {
			t.Fatalf("accessors disagree with the bytes % x", b[:wire.HeaderLen])
		}
		fl := h.Fields()
		out := wire.Header(make([]byte, wire.HeaderLen))
		out.Put(&fl, h.PayloadLen())
		if out.Fields() != fl || out.PayloadLen() != h.PayloadLen() || out.Version() != wire.Version {
			t.Fatal("Put/Fields round trip")
		}
		r1, r2 := out.Reserved()
		if r1 != 0 || r2 != 0 {
			t.Fatal("Put left reserved bytes set")
		}
		if c := out.Check(int(h.PayloadLen())); c != wire.DropNone && fl.Type.Valid() && fl.Flags&wire.FlagsReserved == 0 {
			t.Fatalf("a header Put from valid fields fails Check: %q", c)
		}
	})
}
