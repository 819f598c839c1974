package wire_test

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
)

func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{wire.TypeInit.String(), "INIT"},
		{wire.TypeData.String(), "DATA"},
		{wire.TypeDiscover.String(), "DISCOVER"},
		{wire.TypeJournal.String(), "JOURNAL"},
		{wire.Type(12).String(), "TYPE(12)"},
		{wire.Flags(0).String(), "0"},
		{(wire.FlagEncrypted | wire.FlagPriority).String(), "ENCRYPTED|PRIORITY"},
		{(wire.FlagJournalSync | 0x8000).String(), "JOURNAL_SYNC|0x8000"},
		{wire.Flags(0x0800).String(), "0x800"},
		{(wire.FlagDeprioritised | wire.FlagEncrypted).String(), "ENCRYPTED|DEPRIORITISED"},
		{wire.KindPoolUDP6.String(), "pool/udp6"},
		{wire.Kind(200).String(), "kind(200)"},
		{wire.DropNone.String(), "none"},
		{wire.DropPayloadLength.String(), "payload length mismatch"},
		{wire.DropReason(200).String(), "drop(200)"},
		{wire.MAC{0x02, 0, 0xab, 0xcd, 0xef, 0xff}.String(), "02:00:ab:cd:ef:ff"},
		{wire.SessionID{0: 0xde, 15: 0x01}.String(), "de000000000000000000000000000001"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	// Every type, flag, kind and reason has a name of its own.
	names := map[string]bool{}
	for i := 0; i < wire.NumTypes; i++ {
		names[wire.Type(i).String()] = true
	}
	for i := 0; i < 10; i++ {
		names[wire.Flags(1<<i).String()] = true
	}
	for k := wire.Kind(0); k < wire.NumKinds; k++ {
		names[k.String()] = true
	}
	for d := wire.DropReason(0); d < wire.NumDropReasons; d++ {
		if s := d.String(); s == "" || strings.HasPrefix(s, "drop(") {
			t.Errorf("reason %d has no name", d)
		}
		names[d.String()] = true
	}
	if want := wire.NumTypes + 10 + int(wire.NumKinds) + int(wire.NumDropReasons); len(names) != want {
		t.Errorf("%d distinct names, want %d", len(names), want)
	}
	if !(wire.FlagEncrypted | wire.FlagFragment).Has(wire.FlagFragment) || wire.FlagEncrypted.Has(wire.FlagFragment) {
		t.Error("Flags.Has")
	}
	if !wire.TypeJournal.Valid() || wire.Type(12).Valid() {
		t.Error("Type.Valid")
	}
}

func TestKinds(t *testing.T) {
	for k := wire.Kind(0); k < wire.NumKinds; k++ {
		pool := k == wire.KindPoolUDP4 || k == wire.KindPoolUDP6 || k == wire.KindPoolIP4 || k == wire.KindPoolIP6
		if k.IsPool() != pool {
			t.Errorf("%v.IsPool() = %v", k, !pool)
		}
	}
	if wire.Kind(255).IsPool() {
		t.Error("kind 255 is POOL")
	}
}

// TestSessionHash checks that the hash depends on every byte and on the
// seed, and spreads sequential ids (what a control core that numbers
// sessions would hand out) evenly over buckets.
func TestSessionHash(t *testing.T) {
	base := wiretest.Session
	h := base.Hash(1)
	if base.Hash(2) == h {
		t.Error("seed does not change the hash")
	}
	for i := 0; i < 16; i++ {
		for bit := 0; bit < 8; bit++ {
			s := base
			s[i] ^= 1 << bit
			if s.Hash(1) == h {
				t.Errorf("flipping byte %d bit %d does not change the hash", i, bit)
			}
		}
	}
	const buckets, n = 1024, 1 << 16
	var count [buckets]int
	for i := 0; i < n; i++ {
		var s wire.SessionID
		s[14], s[15] = byte(i>>8), byte(i)
		count[s.Hash(0x1234)%buckets]++
	}
	for b, c := range count {
		// 64 expected per bucket; a fair hash stays well within 2x.
		if c < 32 || c > 128 {
			t.Fatalf("bucket %d holds %d of %d sequential ids", b, c, n)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	buf := make([]byte, wiretest.BufLen)
	for _, tc := range []struct {
		name string
		mod  func(*wire.FrameSpec)
		buf  []byte
		want error
	}{
		{"mixed families", func(s *wire.FrameSpec) { s.DstIP = wiretest.Relay6 }, buf, wire.ErrAddrFamily},
		{"no source", func(s *wire.FrameSpec) { s.SrcIP = netip.Addr{} }, buf, wire.ErrAddrFamily},
		{"mapped", func(s *wire.FrameSpec) {
			s.SrcIP, s.DstIP = netip.AddrFrom16(wiretest.Peer4.As16()), netip.AddrFrom16(wiretest.Relay4.As16())
		}, buf, wire.ErrAddrFamily},
		{"three tags", withVLANs(wire.VLANTag{}, wire.VLANTag{}, wire.VLANTag{}), buf, wire.ErrTooManyVLANs},
		{"bad tpid", withVLANs(wire.VLANTag{TPID: 0x9100}), buf, wire.ErrBadVLANTag},
		{"payload too long", func(s *wire.FrameSpec) { s.Payload = make([]byte, 0x10000) }, make([]byte, 0x20000), wire.ErrTooLong},
		{"ipv4 datagram too long", func(s *wire.FrameSpec) { s.Payload = make([]byte, 0xffff-wire.HeaderLen-20) }, make([]byte, 0x20000), wire.ErrTooLong},
		{"short buffer", nil, buf[:100], wire.ErrShortBuffer},
	} {
		s := wiretest.Spec(false)
		if tc.mod != nil {
			tc.mod(&s)
		}
		if _, err := wire.Build(tc.buf, &s); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// The largest datagrams that do fit.
	s := wiretest.Spec(false)
	s.Encap = wire.EncapIP
	s.Payload = make([]byte, 0xffff-wire.HeaderLen-wire.IPv4MinLen)
	big := make([]byte, 0x20000)
	if n, err := wire.Build(big, &s); err != nil || classify(big[:n]).Drop != wire.DropNone {
		t.Errorf("largest IPv4 datagram: %v", err)
	}
	s = wiretest.Spec(true)
	s.Payload = make([]byte, 0xffff-wire.HeaderLen-wire.UDPLen)
	if n, err := wire.Build(big, &s); err != nil || classify(big[:n]).Drop != wire.DropNone {
		t.Errorf("largest IPv6 datagram: %v", err)
	}
	if _, err := wire.BuildARPRequest(buf, nil, wiretest.RelayMAC, wiretest.Relay6, wiretest.Next4); !errors.Is(err, wire.ErrAddrFamily) {
		t.Errorf("ARP for IPv6: %v", err)
	}
	if _, err := wire.BuildNeighborSolicit(buf, nil, wiretest.RelayMAC, wiretest.Relay6, wiretest.Next4); !errors.Is(err, wire.ErrAddrFamily) {
		t.Errorf("ND for IPv4: %v", err)
	}
	if _, err := wire.BuildARPRequest(buf[:59], nil, wiretest.RelayMAC, wiretest.Relay4, wiretest.Next4); !errors.Is(err, wire.ErrShortBuffer) {
		t.Errorf("ARP into 59 bytes: %v", err)
	}
}

func TestBuildARPRequest(t *testing.T) {
	tag := wire.VLANTag{TPID: wire.EtherTypeQinQ, TCI: 42}
	buf := bytes.Repeat([]byte{0xee}, 100)
	n, err := wire.BuildARPRequest(buf, []wire.VLANTag{tag}, wiretest.RelayMAC, wiretest.Relay4, wiretest.Next4)
	if err != nil || n != wire.MinFrameLen {
		t.Fatalf("n %d, err %v", n, err)
	}
	f := buf[:n]
	r := classify(f)
	a := wire.ARP(f[r.L3Off:])
	e := wire.Ethernet(f)
	if r.Kind != wire.KindARP || r.Drop != wire.DropNone || r.VLANs != 1 || r.TCI[0] != 42 ||
		e.Dst() != wire.BroadcastMAC || e.Src() != wiretest.RelayMAC || a.Op() != wire.ARPOpRequest ||
		a.SenderMAC() != wiretest.RelayMAC || a.SenderIP() != wiretest.Relay4.As4() ||
		a.TargetMAC() != (wire.MAC{}) || a.TargetIP() != wiretest.Next4.As4() {
		t.Fatalf("request % x", f)
	}
	if !bytes.Equal(f[int(r.L3Off)+wire.ARPLen:], make([]byte, n-int(r.L3Off)-wire.ARPLen)) {
		t.Error("padding not zeroed")
	}
	// The next hop answers; the answer is parsed as the control core would.
	if !wire.AnswerARP(f, &r, wiretest.NextMAC) {
		t.Fatal("no answer")
	}
	r = classify(f)
	a = wire.ARP(f[r.L3Off:])
	if r.Drop != wire.DropNone || a.Op() != wire.ARPOpReply || a.SenderMAC() != wiretest.NextMAC ||
		a.SenderIP() != wiretest.Next4.As4() || wire.Ethernet(f).Dst() != wiretest.RelayMAC {
		t.Fatalf("reply % x", f)
	}
	if wire.AnswerARP(f, &r, wiretest.NextMAC) {
		t.Error("answered a reply")
	}
}

func TestBuildNeighborSolicit(t *testing.T) {
	buf := make([]byte, 200)
	n, err := wire.BuildNeighborSolicit(buf, nil, wiretest.RelayMAC, wiretest.Relay6, wiretest.Next6)
	if err != nil {
		t.Fatal(err)
	}
	f := buf[:n]
	r := classify(f)
	ip := wire.IPv6(f[r.L3Off:])
	m := wire.ND(f[r.L4Off : int(r.L4Off)+int(r.L4Len)])
	sn := netip.MustParseAddr("ff02::1:ff00:3")
	ll, ok := m.LinkAddr()
	if r.Kind != wire.KindND || r.Drop != wire.DropNone || m.Type() != wire.ICMPv6NeighborSolicit ||
		m.TargetAddr() != wiretest.Next6 || ip.DstAddr() != sn || ip.SrcAddr() != wiretest.Relay6 ||
		wire.Ethernet(f).Dst() != (wire.MAC{0x33, 0x33, 0xff, 0, 0, 3}) || !ok || ll != wiretest.RelayMAC {
		t.Fatalf("solicitation % x", f)
	}
	// The next hop answers.
	n, ok = wire.AnswerND(f, &r, wiretest.NextMAC)
	if !ok {
		t.Fatal("no answer")
	}
	f = f[:n]
	r = classify(f)
	ip = wire.IPv6(f[r.L3Off:])
	m = wire.ND(f[r.L4Off : int(r.L4Off)+int(r.L4Len)])
	ll, ok = m.LinkAddr()
	if r.Drop != wire.DropNone || m.Type() != wire.ICMPv6NeighborAdvert || m.TargetAddr() != wiretest.Next6 ||
		m.Flags() != wire.NDFlagSolicited|wire.NDFlagOverride || ip.SrcAddr() != wiretest.Next6 ||
		ip.DstAddr() != wiretest.Relay6 || !ok || ll != wiretest.NextMAC || wire.Ethernet(f).Dst() != wiretest.RelayMAC {
		t.Fatalf("advertisement % x", f)
	}
	if _, ok := wire.AnswerND(f, &r, wiretest.NextMAC); ok {
		t.Error("answered an advertisement")
	}
}

func TestAnswerNDCapacity(t *testing.T) {
	ns := solicit(t)
	r := classify(ns)
	// A solicitation without options is 8 bytes shorter than the answer.
	wire.IPv6(ns[r.L3Off:]).SetPayloadLen(wire.NDLen)
	ns = ns[:int(r.L4Off)+wire.NDLen]
	r = classify(ns)
	fixND(ns, &r)
	r = classify(ns)
	if r.Drop != wire.DropNone {
		t.Fatal(r.Drop)
	}
	tight := bytes.Clone(ns)[:len(ns):len(ns)]
	if _, ok := wire.AnswerND(tight, &r, wiretest.RelayMAC); ok {
		t.Error("answered beyond the buffer's capacity")
	}
	if !bytes.Equal(tight, ns) {
		t.Error("refused answer changed the frame")
	}
	roomy := append(make([]byte, 0, len(ns)+8), ns...)
	n, ok := wire.AnswerND(roomy, &r, wiretest.RelayMAC)
	if !ok || n != len(ns)+8 {
		t.Fatalf("answer with room: %d %v", n, ok)
	}
	// The answer goes back to the ethernet source: no option said otherwise.
	if wire.Ethernet(roomy[:n]).Dst() != wiretest.PeerMAC {
		t.Error("answer not sent to the solicitation's source")
	}
}

func TestRewrite(t *testing.T) {
	nh4, nh6 := nextHop(t, false), nextHop(t, true)
	for _, tc := range []struct {
		name  string
		frame []byte
		nh    *wire.NextHop
		want  wire.DropReason
	}{
		{"ipv4 ttl 2", build(t, false, func(s *wire.FrameSpec) { s.TTL = 2 }), &nh4, wire.DropNone},
		{"ipv4 ttl 1", build(t, false, func(s *wire.FrameSpec) { s.TTL = 1 }), &nh4, wire.DropTTLExpired},
		{"ipv6 hop limit 1", build(t, true, func(s *wire.FrameSpec) { s.TTL = 1 }), &nh6, wire.DropTTLExpired},
		{"ipv6 hop limit 255", build(t, true, withEncapIP, func(s *wire.FrameSpec) { s.TTL = 255 }), &nh6, wire.DropNone},
		{"ipv4 to ipv6", build(t, false), &nh6, wire.DropAddrFamily},
		{"ipv6 to ipv4", build(t, true, withEncapIP), &nh4, wire.DropAddrFamily},
		{"arp", arpRequest(t), &nh4, wire.DropAddrFamily},
	} {
		r := classify(tc.frame)
		orig := bytes.Clone(tc.frame)
		if got := wire.Rewrite(tc.frame, &r, tc.nh); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		if tc.want != wire.DropNone && !bytes.Equal(orig, tc.frame) {
			t.Errorf("%s: refused rewrite changed the frame", tc.name)
		}
	}
	// TTL 0 as received: also refused (a relay must not forward it).
	f := build(t, false)
	r := classify(f)
	ip := wire.IPv4(f[r.L3Off:])
	ip.SetTTL(0)
	ip.UpdateChecksum()
	if r = classify(f); r.Drop != wire.DropNone || wire.Rewrite(f, &r, &nh4) != wire.DropTTLExpired {
		t.Error("TTL 0 forwarded")
	}
	// The fields a rewrite sets, read back through the views.
	f = build(t, false, withVLANs(wire.VLANTag{TCI: 9}))
	r = classify(f)
	if wire.Rewrite(f, &r, &nh4) != wire.DropNone {
		t.Fatal("refused")
	}
	e, ip, u := wire.Ethernet(f), wire.IPv4(f[r.L3Off:]), wire.UDP(f[r.L4Off:])
	if e.Dst() != wiretest.NextMAC || e.Src() != wiretest.RelayMAC || e.Tag(0).TCI != 9 ||
		ip.SrcAddr() != wiretest.Relay4 || ip.DstAddr() != wiretest.Next4 || ip.TTL() != wire.DefaultTTL-1 ||
		!ip.ChecksumValid() || u.SrcPort() != wire.RelayPort || u.DstPort() != wire.RelayPort || !wire.UDPChecksumValid(f, &r) {
		t.Fatalf("rewritten % x", f)
	}
}

func TestNewNextHop(t *testing.T) {
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	for _, tc := range []struct{ src, dst netip.AddrPort }{
		{ap("192.0.2.1:1"), ap("[2001:db8::1]:1")},
		{ap("[::ffff:192.0.2.1]:1"), ap("[::ffff:192.0.2.2]:1")},
		{netip.AddrPort{}, ap("192.0.2.1:1")},
	} {
		if _, err := wire.NewNextHop(wiretest.RelayMAC, wiretest.NextMAC, tc.src, tc.dst); !errors.Is(err, wire.ErrAddrFamily) {
			t.Errorf("%v -> %v: %v", tc.src, tc.dst, err)
		}
	}
	nh, err := wire.NewNextHop(wiretest.RelayMAC, wiretest.NextMAC, ap("192.0.2.2:9254"), ap("198.51.100.3:9253"))
	if err != nil || nh.SrcMAC() != wiretest.RelayMAC || nh.DstMAC() != wiretest.NextMAC || nh.IsIPv6() ||
		nh.Src() != ap("192.0.2.2:9254") || nh.Dst() != ap("198.51.100.3:9253") {
		t.Fatalf("%v: %v -> %v", err, nh.Src(), nh.Dst())
	}
}

func TestPatchUDP(t *testing.T) {
	// The per-hop seq and MAC a relay writes, on every encapsulation.
	for _, v6 := range []bool{false, true} {
		for _, mod := range []func(*wire.FrameSpec){func(*wire.FrameSpec) {}, withEncapIP, func(s *wire.FrameSpec) { s.NoUDPChecksum = true }} {
			f := build(t, v6, mod)
			r := classify(f)
			h := r.Pool(f)
			var seq [8]byte
			seq[7] = 0x42
			mac := bytes.Repeat([]byte{0xa7}, wire.MACLen)
			wire.PatchUDP(f, &r, int(r.PoolOff)+4, seq[:])
			wire.PatchUDP(f, &r, int(r.PoolOff)+48, mac)
			if h.Seq() != 0x42 || !bytes.Equal(h.MACBytes(), mac) {
				t.Fatal("not written")
			}
			if r.Kind.IsUDP() && !wire.UDPChecksumValid(f, &r) {
				t.Errorf("%v: checksum broken", r.Kind)
			}
		}
	}
	f := build(t, false)
	r := classify(f)
	for _, off := range []int{int(r.L4Off) + 6, len(f) - 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("PatchUDP at %d did not panic", off)
				}
			}()
			wire.PatchUDP(f, &r, off, []byte{1, 2})
		}()
	}
}

// TestUpdateUDP: the seq and MAC rewritten with sums the caller holds give
// the checksum a full recomputation gives, on every encapsulation, with
// the changed ranges at an even or an odd distance from the checksum.
func TestUpdateUDP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, mod := range []func(*wire.FrameSpec){func(*wire.FrameSpec) {}, withEncapIP, func(s *wire.FrameSpec) { s.NoUDPChecksum = true }} {
			for _, shift := range []int{0, 1} {
				f := build(t, v6, mod)
				r := classify(f)
				po := int(r.PoolOff)
				// Two changed ranges, seq and MAC (and, shifted, from
				// the odd byte before each), one update over the span.
				seqOff, macOff := po+4-shift, po+48-shift
				old := wire.Sum(f[seqOff:seqOff+8]) + wire.Sum(f[macOff:macOff+16])
				seq := []byte{1, 2, 3, 4, 5, 6, 7, 0x42}
				tag := bytes.Repeat([]byte{0xa7, 0x3c}, 8)
				copy(f[seqOff:], seq)
				copy(f[macOff:], tag)
				wire.UpdateUDP(f, &r, seqOff, macOff+16-seqOff, old, wire.Sum(seq)+wire.Sum(tag))
				if r.Kind.IsUDP() && !wire.UDPChecksumValid(f, &r) {
					t.Errorf("%v shift %d: checksum broken", r.Kind, shift)
				}
			}
		}
	}
}

// A solicitation as large as IPv6 allows: offsets plus lengths pass 65535,
// which 16-bit arithmetic would wrap.
func TestAnswerNDHuge(t *testing.T) {
	ns := solicit(t)
	r := classify(ns)
	const icmpLen = 65504 // NDLen plus whole 8-byte option units
	f := make([]byte, int(r.L4Off)+icmpLen, int(r.L4Off)+icmpLen+64)
	copy(f, ns)
	wire.IPv6(f[r.L3Off:]).SetPayloadLen(icmpLen)
	for o := int(r.L4Off) + wire.NDLen + 8; o < len(f); o += 8 { // after the source link-layer option
		f[o], f[o+1] = 99, 1 // unknown option, one unit
	}
	r = classify(f)
	fixND(f, &r)
	if r = classify(f); r.Kind != wire.KindND || r.Drop != wire.DropNone || int(r.L4Off)+int(r.L4Len) <= 0xffff {
		t.Fatalf("%+v", r)
	}
	n, ok := wire.AnswerND(f, &r, wiretest.RelayMAC)
	if !ok || classify(f[:n]).Drop != wire.DropNone {
		t.Fatalf("answer: %d %v", n, ok)
	}
}

func TestChecksum(t *testing.T) {
	// RFC 1071, section 3: the sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if c := wire.Checksum(b, 0); c != ^uint16(0xddf2) {
		t.Errorf("RFC 1071 example: %#04x", c)
	}
	// An odd byte is the high half of a zero-padded word.
	if c := wire.Checksum([]byte{0x12}, 0); c != ^uint16(0x1200) {
		t.Errorf("odd byte: %#04x", c)
	}
	if c := wire.Checksum(nil, 0); c != 0xffff {
		t.Errorf("empty: %#04x", c)
	}
}

// FuzzChecksum checks Checksum against the reference sum at every length
// and alignment the unrolled loop distinguishes, seeded with a partial sum.
func FuzzChecksum(f *testing.F) {
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, uint16(0))
	f.Add(bytes.Repeat([]byte{0xff}, 33), uint16(0xffff))
	f.Fuzz(func(t *testing.T, b []byte, seed uint16) {
		want := slowSum(append([]byte{byte(seed >> 8), byte(seed)}, b...))
		if got := ^wire.Checksum(b, uint64(seed)); int(got) != want && !(got == 0xffff && want == 0) {
			t.Fatalf("sum %#04x, reference %#04x", got, want)
		}
	})
}
