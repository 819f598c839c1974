package wire_test

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
)

// edit classifies a valid frame to learn its offsets, then lets f change it
// (f may return a new slice; nil keeps the frame).
func edit(frame []byte, f func(b []byte, r *wire.Result) []byte) []byte {
	r := classify(frame)
	if out := f(frame, &r); out != nil {
		return out
	}
	return frame
}

type classifyCase struct {
	name  string
	frame func(t testing.TB) []byte
	kind  wire.Kind
	drop  wire.DropReason
}

func classifyCases() []classifyCase {
	udp4 := func(t testing.TB) []byte { return build(t, false) }
	udp6 := func(t testing.TB) []byte { return build(t, true) }
	q := wire.VLANTag{TPID: wire.EtherTypeVLAN, TCI: 0x2064}
	s := wire.VLANTag{TPID: wire.EtherTypeQinQ, TCI: 0xa00a}
	return []classifyCase{
		// Valid frames of every kind.
		{"udp4", udp4, wire.KindPoolUDP4, wire.DropNone},
		{"udp6", udp6, wire.KindPoolUDP6, wire.DropNone},
		{"ip4", func(t testing.TB) []byte { return build(t, false, withEncapIP) }, wire.KindPoolIP4, wire.DropNone},
		{"ip6", func(t testing.TB) []byte { return build(t, true, withEncapIP) }, wire.KindPoolIP6, wire.DropNone},
		{"udp4/pool port", func(t testing.TB) []byte {
			return build(t, false, func(s *wire.FrameSpec) { s.DstPort = wire.PoolPort })
		}, wire.KindPoolUDP4, wire.DropNone},
		{"udp4/configured port", func(t testing.TB) []byte {
			return build(t, false, func(s *wire.FrameSpec) { s.DstPort = extraPort })
		}, wire.KindPoolUDP4, wire.DropNone},
		{"udp4/no checksum", func(t testing.TB) []byte {
			return build(t, false, func(s *wire.FrameSpec) { s.NoUDPChecksum = true })
		}, wire.KindPoolUDP4, wire.DropNone},
		{"udp4/802.1Q", func(t testing.TB) []byte { return build(t, false, withVLANs(q)) }, wire.KindPoolUDP4, wire.DropNone},
		{"udp6/Q-in-Q", func(t testing.TB) []byte { return build(t, true, withVLANs(s, q)) }, wire.KindPoolUDP6, wire.DropNone},
		{"ip4/802.1ad", func(t testing.TB) []byte { return build(t, false, withEncapIP, withVLANs(s)) }, wire.KindPoolIP4, wire.DropNone},
		{"udp4/options", func(t testing.TB) []byte {
			return withIPv4Options(udp4(t), 14, []byte{0x94, 4, 0, 0, 1, 1, 1, 0}) // router alert, NOPs, EOL
		}, wire.KindPoolUDP4, wire.DropNone},
		{"udp4/padded", func(t testing.TB) []byte { return append(udp4(t), make([]byte, 7)...) }, wire.KindPoolUDP4, wire.DropNone},
		{"udp6/padded", func(t testing.TB) []byte { return append(udp6(t), 0xee) }, wire.KindPoolUDP6, wire.DropNone},
		{"udp6/extensions", func(t testing.TB) []byte {
			return withIPv6Ext(udp6(t), 14, extHdr(wire.ProtoHopByHop, 1, 0), extHdr(wire.ProtoDestOpts, 2, 0),
				extHdr(wire.ProtoRouting, 3, 0), extHdr(wire.ProtoDestOpts, 1, 0))
		}, wire.KindPoolUDP6, wire.DropNone},
		{"ip6/routing done", func(t testing.TB) []byte {
			return withIPv6Ext(build(t, true, withEncapIP), 14, extHdr(wire.ProtoRouting, 1, 0))
		}, wire.KindPoolIP6, wire.DropNone},
		{"udp4/empty payload", func(t testing.TB) []byte {
			return build(t, false, func(s *wire.FrameSpec) { s.Payload = nil })
		}, wire.KindPoolUDP4, wire.DropNone},
		{"arp/request", func(t testing.TB) []byte { return arpRequest(t) }, wire.KindARP, wire.DropNone},
		{"arp/request tagged", func(t testing.TB) []byte { return arpRequest(t, q) }, wire.KindARP, wire.DropNone},
		{"arp/reply", func(t testing.TB) []byte {
			f := arpRequest(t)
			r := classify(f)
			wire.AnswerARP(f, &r, wiretest.RelayMAC)
			return f
		}, wire.KindARP, wire.DropNone},
		{"nd/solicit", func(t testing.TB) []byte { return solicit(t) }, wire.KindND, wire.DropNone},
		{"nd/advert", func(t testing.TB) []byte {
			f := solicit(t, s, q)
			r := classify(f)
			n, ok := wire.AnswerND(f, &r, wiretest.RelayMAC)
			if !ok {
				t.Fatal("AnswerND refused a valid solicitation")
			}
			return f[:n]
		}, wire.KindND, wire.DropNone},
		{"nd/dad", func(t testing.TB) []byte {
			return edit(solicit(t), func(b []byte, r *wire.Result) []byte {
				ip := wire.IPv6(b[r.L3Off:])
				ip.SetSrc([16]byte{})
				b = b[:int(r.L4Off)+wire.NDLen] // no source link-layer option from ::
				ip.SetPayloadLen(wire.NDLen)
				r.L4Len = wire.NDLen
				fixND(b, r)
				return b
			})
		}, wire.KindND, wire.DropNone},

		// Truncation, layer by layer.
		{"empty", func(t testing.TB) []byte { return nil }, wire.KindOther, wire.DropTruncated},
		{"13 bytes", func(t testing.TB) []byte { return udp4(t)[:13] }, wire.KindOther, wire.DropTruncated},
		{"truncated tag", func(t testing.TB) []byte { return build(t, false, withVLANs(q))[:17] }, wire.KindOther, wire.DropTruncated},
		{"truncated ipv4 header", func(t testing.TB) []byte { return udp4(t)[:33] }, wire.KindOther, wire.DropTruncated},
		{"truncated ipv4 datagram", func(t testing.TB) []byte { f := udp4(t); return f[:len(f)-1] }, wire.KindOther, wire.DropTruncated},
		{"truncated ipv6 header", func(t testing.TB) []byte { return udp6(t)[:53] }, wire.KindOther, wire.DropTruncated},
		{"truncated ipv6 datagram", func(t testing.TB) []byte { f := udp6(t); return f[:len(f)-1] }, wire.KindOther, wire.DropTruncated},
		{"truncated udp header", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte {
				ip := wire.IPv4(b[r.L3Off:])
				ip.SetTotalLen(wire.IPv4MinLen + 7)
				fixIPv4(b, int(r.L3Off))
				return b[:int(r.L3Off)+wire.IPv4MinLen+7]
			})
		}, wire.KindOther, wire.DropTruncated},
		{"truncated pool header", func(t testing.TB) []byte {
			return edit(build(t, true, withEncapIP), func(b []byte, r *wire.Result) []byte {
				wire.IPv6(b[r.L3Off:]).SetPayloadLen(wire.HeaderLen - 1)
				return b[:int(r.PoolOff)+wire.HeaderLen-1]
			})
		}, wire.KindPoolIP6, wire.DropTruncated},
		{"truncated extension", func(t testing.TB) []byte {
			return edit(withIPv6Ext(udp6(t), 14, extHdr(wire.ProtoDestOpts, 1, 0)), func(b []byte, r *wire.Result) []byte {
				b[14+wire.IPv6Len+1] = 200 // claims 1608 bytes
				return nil
			})
		}, wire.KindOther, wire.DropTruncated},
		{"truncated arp", func(t testing.TB) []byte { return arpRequest(t)[:14+27] }, wire.KindARP, wire.DropTruncated},
		{"truncated icmpv6", func(t testing.TB) []byte {
			return edit(solicit(t), func(b []byte, r *wire.Result) []byte {
				wire.IPv6(b[r.L3Off:]).SetPayloadLen(3)
				return nil
			})
		}, wire.KindOther, wire.DropTruncated},

		{"three tags", func(t testing.TB) []byte {
			f := build(t, false, withVLANs(s, q))
			return insert(f, 12, []byte{0x81, 0x00, 0x00, 0x07})
		}, wire.KindOther, wire.DropTooManyVLANs},
		{"lldp", func(t testing.TB) []byte {
			f := udp4(t)
			binary.BigEndian.PutUint16(f[12:], 0x88cc)
			return f
		}, wire.KindOther, wire.DropUnknownEtherType},
		{"ipv4 version 5", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte { b[r.L3Off] = 0x55; fixIPv4(b, int(r.L3Off)); return nil })
		}, wire.KindOther, wire.DropBadIPv4Header},
		{"ipv4 ihl 4", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte { b[r.L3Off] = 0x44; return nil })
		}, wire.KindOther, wire.DropBadIPv4Header},
		{"ipv4 total below ihl", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte {
				wire.IPv4(b[r.L3Off:]).SetTotalLen(19)
				fixIPv4(b, int(r.L3Off))
				return nil
			})
		}, wire.KindOther, wire.DropBadIPv4Header},
		{"ipv4 checksum", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte { b[r.L3Off+10] ^= 1; return nil })
		}, wire.KindOther, wire.DropBadIPv4Checksum},
		{"ipv6 version 4", func(t testing.TB) []byte {
			return edit(udp6(t), func(b []byte, r *wire.Result) []byte { b[r.L3Off] = 0x40; return nil })
		}, wire.KindOther, wire.DropBadIPv6Header},
		{"ipv6 ah", func(t testing.TB) []byte { return withIPv6Ext(udp6(t), 14, extHdr(51, 2, 0)) }, wire.KindOther, wire.DropIPv6Extension},
		{"ipv6 late hop-by-hop", func(t testing.TB) []byte {
			return withIPv6Ext(udp6(t), 14, extHdr(wire.ProtoDestOpts, 1, 0), extHdr(wire.ProtoHopByHop, 1, 0))
		}, wire.KindOther, wire.DropIPv6Extension},
		{"ipv6 five extensions", func(t testing.TB) []byte {
			d := extHdr(wire.ProtoDestOpts, 1, 0)
			return withIPv6Ext(udp6(t), 14, d, d, d, d, d)
		}, wire.KindOther, wire.DropIPv6Extension},
		{"ipv6 routing segments left", func(t testing.TB) []byte {
			return withIPv6Ext(udp6(t), 14, extHdr(wire.ProtoRouting, 3, 1))
		}, wire.KindOther, wire.DropIPv6Extension},
		{"ipv4 more fragments", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte {
				wire.IPv4(b[r.L3Off:]).SetFragment(false, true, 0)
				fixIPv4(b, int(r.L3Off))
				return nil
			})
		}, wire.KindOther, wire.DropFragment},
		{"ipv4 fragment offset", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte {
				wire.IPv4(b[r.L3Off:]).SetFragment(true, false, 185)
				fixIPv4(b, int(r.L3Off))
				return nil
			})
		}, wire.KindOther, wire.DropFragment},
		{"ipv6 fragment header", func(t testing.TB) []byte {
			return withIPv6Ext(udp6(t), 14, extHdr(wire.ProtoFragment, 1, 0))
		}, wire.KindOther, wire.DropFragment},
		{"udp other port", func(t testing.TB) []byte {
			return build(t, false, func(s *wire.FrameSpec) { s.DstPort = 53 })
		}, wire.KindOther, wire.DropNotPool},
		{"udp source port only", func(t testing.TB) []byte {
			return build(t, true, func(s *wire.FrameSpec) { s.SrcPort, s.DstPort = wire.RelayPort, 40000 })
		}, wire.KindOther, wire.DropNotPool},
		{"tcp", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte {
				wire.IPv4(b[r.L3Off:]).SetProtocol(6)
				fixIPv4(b, int(r.L3Off))
				return nil
			})
		}, wire.KindOther, wire.DropNotPool},
		{"icmpv6 echo", func(t testing.TB) []byte {
			return edit(solicit(t), func(b []byte, r *wire.Result) []byte { b[r.L4Off] = 128; fixND(b, r); return nil })
		}, wire.KindOther, wire.DropNotPool},
		{"ipv6 no next header", func(t testing.TB) []byte {
			return edit(udp6(t), func(b []byte, r *wire.Result) []byte { wire.IPv6(b[r.L3Off:]).SetNextHeader(59); return nil })
		}, wire.KindOther, wire.DropNotPool},
		{"udp length short", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte { wire.UDP(b[r.L4Off:]).SetLength(r.L4Len - 1); return nil })
		}, wire.KindPoolUDP4, wire.DropBadUDPLength},
		{"udp length long", func(t testing.TB) []byte {
			return edit(udp6(t), func(b []byte, r *wire.Result) []byte { wire.UDP(b[r.L4Off:]).SetLength(r.L4Len + 1); return nil })
		}, wire.KindPoolUDP6, wire.DropBadUDPLength},
		{"udp6 zero checksum", func(t testing.TB) []byte {
			return edit(udp6(t), func(b []byte, r *wire.Result) []byte { wire.UDP(b[r.L4Off:]).SetChecksum(0); return nil })
		}, wire.KindPoolUDP6, wire.DropUDPZeroChecksum},
		{"pool version 2", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte {
				r.Pool(b).SetVersionType(2, wire.TypeData)
				fixUDP(b, r)
				return nil
			})
		}, wire.KindPoolUDP4, wire.DropBadVersion},
		{"pool version 0", func(t testing.TB) []byte {
			return edit(build(t, false, withEncapIP), func(b []byte, r *wire.Result) []byte {
				r.Pool(b).SetVersionType(0, wire.TypeData)
				return nil
			})
		}, wire.KindPoolIP4, wire.DropBadVersion},
		{"pool type 12", func(t testing.TB) []byte {
			return edit(udp6(t), func(b []byte, r *wire.Result) []byte { r.Pool(b).SetType(12); fixUDP(b, r); return nil })
		}, wire.KindPoolUDP6, wire.DropUnknownType},
		{"pool type 15", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte { r.Pool(b).SetType(15); return nil })
		}, wire.KindPoolUDP4, wire.DropUnknownType},
		{"pool reserved byte 1", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte { r.Pool(b).SetReserved(1, 0); return nil })
		}, wire.KindPoolUDP4, wire.DropReservedBits},
		{"pool reserved byte 47", func(t testing.TB) []byte {
			return edit(build(t, true, withEncapIP), func(b []byte, r *wire.Result) []byte { r.Pool(b).SetReserved(0, 0x80); return nil })
		}, wire.KindPoolIP6, wire.DropReservedBits},
		{"pool flag bit 11", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte { r.Pool(b).SetFlags(1 << 11); return nil })
		}, wire.KindPoolUDP4, wire.DropReservedBits},
		{"pool deprioritised mark (bit 10) is no reserved bit", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte { r.Pool(b).SetFlags(wire.FlagDeprioritised); return nil })
		}, wire.KindPoolUDP4, wire.DropNone},
		{"pool flag bit 15", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte { r.Pool(b).SetFlags(wire.FlagEncrypted | 1<<15); return nil })
		}, wire.KindPoolUDP4, wire.DropReservedBits},
		{"pool payload longer", func(t testing.TB) []byte {
			return edit(udp4(t), func(b []byte, r *wire.Result) []byte { r.Pool(b).SetPayloadLen(r.PayloadLen + 1); return nil })
		}, wire.KindPoolUDP4, wire.DropPayloadLength},
		{"pool payload shorter", func(t testing.TB) []byte {
			return edit(build(t, false, withEncapIP), func(b []byte, r *wire.Result) []byte { r.Pool(b).SetPayloadLen(0); return nil })
		}, wire.KindPoolIP4, wire.DropPayloadLength},
		{"arp hardware type", func(t testing.TB) []byte {
			return edit(arpRequest(t), func(b []byte, r *wire.Result) []byte { b[r.L3Off+1] = 6; return nil })
		}, wire.KindARP, wire.DropBadARP},
		{"arp op 3", func(t testing.TB) []byte {
			return edit(arpRequest(t), func(b []byte, r *wire.Result) []byte { b[r.L3Off+7] = 3; return nil })
		}, wire.KindARP, wire.DropBadARP},
		{"arp ipv6", func(t testing.TB) []byte {
			return edit(arpRequest(t), func(b []byte, r *wire.Result) []byte { b[r.L3Off+2] = 0x86; return nil })
		}, wire.KindARP, wire.DropBadARP},
		{"nd hop limit", func(t testing.TB) []byte {
			return edit(solicit(t), func(b []byte, r *wire.Result) []byte { wire.IPv6(b[r.L3Off:]).SetHopLimit(64); return nil })
		}, wire.KindND, wire.DropBadND},
		{"nd checksum", func(t testing.TB) []byte {
			return edit(solicit(t), func(b []byte, r *wire.Result) []byte { b[r.L4Off+3] ^= 0x10; return nil })
		}, wire.KindND, wire.DropBadND},
		{"nd code", func(t testing.TB) []byte {
			return edit(solicit(t), func(b []byte, r *wire.Result) []byte { b[r.L4Off+1] = 1; fixND(b, r); return nil })
		}, wire.KindND, wire.DropBadND},
		{"nd short", func(t testing.TB) []byte {
			return edit(solicit(t), func(b []byte, r *wire.Result) []byte {
				wire.IPv6(b[r.L3Off:]).SetPayloadLen(20)
				r.L4Len = 20
				fixND(b, r)
				return nil
			})
		}, wire.KindND, wire.DropBadND},
		{"nd multicast target", func(t testing.TB) []byte {
			return edit(solicit(t), func(b []byte, r *wire.Result) []byte { b[r.L4Off+8] = 0xff; fixND(b, r); return nil })
		}, wire.KindND, wire.DropBadND},
		{"nd multicast source", func(t testing.TB) []byte {
			return edit(solicit(t), func(b []byte, r *wire.Result) []byte {
				wire.IPv6(b[r.L3Off:]).SetSrc([16]byte{0xff, 0x02, 15: 1})
				fixND(b, r)
				return nil
			})
		}, wire.KindND, wire.DropBadND},
		{"nd zero-length option", func(t testing.TB) []byte {
			return edit(solicit(t), func(b []byte, r *wire.Result) []byte { b[r.L4Off+25] = 0; fixND(b, r); return nil })
		}, wire.KindND, wire.DropBadND},
		{"nd dad with source link-layer option", func(t testing.TB) []byte {
			return edit(solicit(t), func(b []byte, r *wire.Result) []byte {
				wire.IPv6(b[r.L3Off:]).SetSrc([16]byte{})
				fixND(b, r)
				return nil
			})
		}, wire.KindND, wire.DropBadND},
		{"nd advert solicited to multicast", func(t testing.TB) []byte {
			f := solicit(t)
			r := classify(f)
			n, _ := wire.AnswerND(f, &r, wiretest.RelayMAC)
			f = f[:n]
			r = classify(f)
			wire.IPv6(f[r.L3Off:]).SetDst([16]byte{0xff, 0x02, 15: 1})
			fixND(f, &r)
			return f
		}, wire.KindND, wire.DropBadND},
	}
}

func TestClassify(t *testing.T) {
	seen := map[wire.DropReason]bool{}
	for _, tc := range classifyCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.frame(t)
			r := classify(f)
			if r.Drop != tc.drop || r.Kind != tc.kind {
				t.Fatalf("got kind %v drop %q, want kind %v drop %q", r.Kind, r.Drop, tc.kind, tc.drop)
			}
			if want := slowClassify(f, testPorts); r != want {
				t.Errorf("fast and reference classifiers disagree:\n fast %+v\n slow %+v", r, want)
			}
			checkBounds(t, f, &r)
			seen[tc.drop] = true
		})
	}
	// Every reason Classify can give has a case; the last two come from
	// Rewrite and are tested there.
	for d := wire.DropNone; d < wire.DropTTLExpired; d++ {
		if !seen[d] {
			t.Errorf("no case for drop reason %q", d)
		}
	}
}

// checkBounds checks the Result's promise that every offset and length lies
// within the frame.
func checkBounds(t *testing.T, f []byte, r *wire.Result) {
	t.Helper()
	for _, span := range [][2]int{
		{int(r.L3Off), int(r.L3Len)}, {int(r.L4Off), int(r.L4Len)}, {int(r.PoolOff), 0}, {int(r.PayloadOff), int(r.PayloadLen)},
	} {
		if span[0]+span[1] > len(f) {
			t.Fatalf("span %d+%d beyond frame of %d bytes: %+v", span[0], span[1], len(f), r)
		}
	}
}

func TestClassifyFields(t *testing.T) {
	q := wire.VLANTag{TPID: wire.EtherTypeQinQ, TCI: 0x3123}
	c := wire.VLANTag{TPID: wire.EtherTypeVLAN, TCI: 0xe456}
	payload := wiretest.Inner([]byte("end to end"))
	f := build(t, true, withVLANs(q, c), func(s *wire.FrameSpec) {
		s.TTL = 17
		s.Payload = payload
		s.Pool = wire.Fields{
			Type: wire.TypeHeartbeat, Flags: wire.FlagPriority | wire.FlagJournalSync,
			Seq: 0x0102030405060708, Session: wire.SessionID{15: 0xaa}, Channel: wire.ChannelRelayControl,
		}
	})
	r := classify(f)
	want := wire.Result{
		Session: wire.SessionID{15: 0xaa}, Seq: 0x0102030405060708,
		TCI: [2]uint16{0x3123, 0xe456}, VLANs: 2, EtherType: wire.EtherTypeIPv6,
		L3Off: 22, L3Len: uint32(40 + 8 + 80 + len(payload)),
		L4Off: 62, L4Len: uint16(8 + 80 + len(payload)),
		PoolOff: 70, PayloadOff: 150, PayloadLen: uint16(len(payload)),
		Flags: wire.FlagPriority | wire.FlagJournalSync,
		Kind:  wire.KindPoolUDP6, Type: wire.TypeHeartbeat, Channel: wire.ChannelRelayControl,
		TTL: 17, Proto: wire.ProtoUDP,
	}
	if r != want {
		t.Fatalf("got  %+v\nwant %+v", r, want)
	}
	if r.VLANID(0) != 0x123 || r.VLANID(1) != 0x456 {
		t.Errorf("VLAN ids %#x %#x", r.VLANID(0), r.VLANID(1))
	}
	if string(r.Payload(f)) != string(payload) {
		t.Errorf("payload %q", r.Payload(f))
	}
	if got := r.Pool(f).Fields().Seq; got != want.Seq {
		t.Errorf("Pool(f).Seq = %#x", got)
	}
}

// The data plane keeps a Result per frame of a burst: it must stay within a
// cache line and hold no pointers.
func TestResultSize(t *testing.T) {
	typ := reflect.TypeFor[wire.Result]()
	if typ.Size() > 64 {
		t.Errorf("Result is %d bytes", typ.Size())
	}
	for i := 0; i < typ.NumField(); i++ {
		switch typ.Field(i).Type.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.String, reflect.Map, reflect.Interface, reflect.Func, reflect.Chan:
			t.Errorf("Result.%s holds a pointer", typ.Field(i).Name)
		}
	}
	t.Logf("Result: %d bytes", typ.Size())
}
