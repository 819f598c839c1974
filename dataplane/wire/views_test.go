package wire_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
)

// The view fuzzers read arbitrary bytes through each view, compare every
// accessor with a direct big-endian read, and write every field back through
// the setters to check the round trip.

func FuzzEthernet(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < wire.EthernetLen+2*wire.VLANTagLen {
			return
		}
		e := wire.Ethernet(b)
		if !bytes.Equal(mac(e.Dst()), b[0:6]) || !bytes.Equal(mac(e.Src()), b[6:12]) || int(e.EtherType()) != be16(b, 12) {
			t.Fatal("accessors")
		}
		for i := 0; i < 2; i++ {
			tag := e.Tag(i)
			if int(tag.TPID) != be16(b, 12+4*i) || int(tag.TCI) != be16(b, 14+4*i) ||
				tag.ID() != tag.TCI&0xfff || tag.Priority() != b[14+4*i]>>5 || tag.DropEligible() != (b[14+4*i]&0x10 != 0) {
				t.Fatalf("tag %d", i)
			}
		}
		out := wire.Ethernet(make([]byte, len(b)))
		out.SetDst(e.Dst())
		out.SetSrc(e.Src())
		out.SetTag(0, e.Tag(0))
		out.SetTag(1, e.Tag(1))
		if !bytes.Equal(out[:12+2*wire.VLANTagLen], b[:12+2*wire.VLANTagLen]) {
			t.Fatal("setters")
		}
		out.SetEtherType(e.EtherType())
		if out.EtherType() != e.EtherType() {
			t.Fatal("SetEtherType")
		}
	})
}

func mac(m wire.MAC) []byte { return m[:] }

func FuzzIPv4(f *testing.F) {
	f.Add(build(f, false)[14:])
	f.Add(withIPv4Options(build(f, false), 14, []byte{1, 1, 1, 0})[14:])
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < wire.IPv4MinLen {
			return
		}
		h := wire.IPv4(b)
		ff := be16(b, 6)
		if h.Version() != b[0]>>4 || h.HeaderLen() != int(b[0]&15)*4 || h.TOS() != b[1] || int(h.TotalLen()) != be16(b, 2) ||
			int(h.ID()) != be16(b, 4) || h.DontFragment() != (ff&0x4000 != 0) || h.MoreFragments() != (ff&0x2000 != 0) ||
			int(h.FragmentOffset()) != ff&0x1fff || h.IsFragment() != (ff&0x3fff != 0) || h.TTL() != b[8] ||
			h.Protocol() != b[9] || int(h.Checksum()) != be16(b, 10) ||
			h.SrcAddr().As4() != [4]byte(b[12:16]) || h.DstAddr().As4() != [4]byte(b[16:20]) {
			t.Fatal("accessors")
		}
		if hl := h.HeaderLen(); hl >= wire.IPv4MinLen && hl <= len(b) {
			if h.ChecksumValid() != slowChecksumOK(b[:hl]) {
				t.Fatal("ChecksumValid disagrees with the reference")
			}
			if !bytes.Equal(h.Options(), b[20:hl]) {
				t.Fatal("Options")
			}
			c := bytes.Clone(b)
			wire.IPv4(c).UpdateChecksum()
			if !wire.IPv4(c).ChecksumValid() || !slowChecksumOK(c[:hl]) {
				t.Fatal("UpdateChecksum")
			}
		}
		out := wire.IPv4(make([]byte, wire.IPv4MinLen))
		out.SetVersionIHL(h.HeaderLen())
		out.SetTOS(h.TOS())
		out.SetTotalLen(h.TotalLen())
		out.SetID(h.ID())
		out.SetFragment(h.DontFragment(), h.MoreFragments(), h.FragmentOffset())
		out.SetTTL(h.TTL())
		out.SetProtocol(h.Protocol())
		out.SetChecksum(h.Checksum())
		out.SetSrc(h.Src())
		out.SetDst(h.Dst())
		want := bytes.Clone(b[:wire.IPv4MinLen])
		want[0] = 0x40 | want[0]&15
		want[6] &^= 0x80 // the reserved flag is not kept
		if !bytes.Equal(out, want) {
			t.Fatalf("setters\n got % x\nwant % x", out, want)
		}
	})
}

func FuzzIPv6(f *testing.F) {
	f.Add(build(f, true)[14:])
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < wire.IPv6Len {
			return
		}
		h := wire.IPv6(b)
		if h.Version() != b[0]>>4 || h.TrafficClass() != b[0]<<4|b[1]>>4 ||
			h.FlowLabel() != binary.BigEndian.Uint32(b)&0xfffff || int(h.PayloadLen()) != be16(b, 4) ||
			h.NextHeader() != b[6] || h.HopLimit() != b[7] ||
			h.SrcAddr().As16() != [16]byte(b[8:24]) || h.DstAddr().As16() != [16]byte(b[24:40]) {
			t.Fatal("accessors")
		}
		out := wire.IPv6(make([]byte, wire.IPv6Len))
		out.SetVersionClassFlow(h.TrafficClass(), h.FlowLabel()|0xfff00000) // top bits ignored
		out.SetPayloadLen(h.PayloadLen())
		out.SetNextHeader(h.NextHeader())
		out.SetHopLimit(h.HopLimit())
		out.SetSrc(h.Src())
		out.SetDst(h.Dst())
		want := bytes.Clone(b[:wire.IPv6Len])
		want[0] = 0x60 | want[0]&15
		if !bytes.Equal(out, want) {
			t.Fatalf("setters\n got % x\nwant % x", out, want)
		}
	})
}

func FuzzUDP(f *testing.F) {
	f.Add(build(f, false)[34:])
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < wire.UDPLen {
			return
		}
		u := wire.UDP(b)
		if int(u.SrcPort()) != be16(b, 0) || int(u.DstPort()) != be16(b, 2) || int(u.Length()) != be16(b, 4) || int(u.Checksum()) != be16(b, 6) {
			t.Fatal("accessors")
		}
		out := wire.UDP(make([]byte, wire.UDPLen))
		out.SetSrcPort(u.SrcPort())
		out.SetDstPort(u.DstPort())
		out.SetLength(u.Length())
		out.SetChecksum(u.Checksum())
		if !bytes.Equal(out, b[:wire.UDPLen]) {
			t.Fatal("setters")
		}
		m := wire.NewMatcher(u.SrcPort())
		if !m.Has(u.SrcPort()) || m.Has(u.SrcPort()+1) || m.Has(u.SrcPort()-1) {
			t.Fatalf("matcher for port %d", u.SrcPort())
		}
	})
}

func FuzzARP(f *testing.F) {
	f.Add(arpRequest(f)[14:])
	f.Fuzz(func(t *testing.T, b []byte) {
		a := wire.ARP(b)
		if len(b) < wire.ARPLen {
			if a.Check() != wire.DropTruncated {
				t.Fatal("short packet not truncated")
			}
			return
		}
		valid := be16(b, 0) == 1 && be16(b, 2) == 0x0800 && b[4] == 6 && b[5] == 4 && (be16(b, 6) == 1 || be16(b, 6) == 2)
		if (a.Check() == wire.DropNone) != valid || !valid && a.Check() != wire.DropBadARP {
			t.Fatalf("Check = %q for % x", a.Check(), b[:wire.ARPLen])
		}
		if int(a.HardwareType()) != be16(b, 0) || int(a.ProtocolType()) != be16(b, 2) || a.HardwareLen() != b[4] ||
			a.ProtocolLen() != b[5] || int(a.Op()) != be16(b, 6) ||
			!bytes.Equal(mac(a.SenderMAC()), b[8:14]) || a.SenderIP() != [4]byte(b[14:18]) ||
			!bytes.Equal(mac(a.TargetMAC()), b[18:24]) || a.TargetIP() != [4]byte(b[24:28]) {
			t.Fatal("accessors")
		}
		out := wire.ARP(make([]byte, wire.ARPLen))
		out.SetHeader(a.Op())
		out.SetSender(a.SenderMAC(), a.SenderIP())
		out.SetTarget(a.TargetMAC(), a.TargetIP())
		if !bytes.Equal(out[8:], b[8:wire.ARPLen]) || out.Op() != a.Op() || (out.Check() == wire.DropNone) != (a.Op() == 1 || a.Op() == 2) {
			t.Fatal("setters")
		}
	})
}

func FuzzND(f *testing.F) {
	ns := solicit(f)
	f.Add(ns[14:54], ns[54:])
	f.Add(ns[14:54], ns[54:78])
	f.Fuzz(func(t *testing.T, ip, msg []byte) {
		if len(ip) < wire.IPv6Len {
			if len(msg) >= wire.NDLen && wire.ND(msg).Check(ip) != wire.DropTruncated {
				t.Fatal("short IPv6 header not truncated")
			}
			return
		}
		m := wire.ND(msg)
		got := m.Check(wire.IPv6(ip))
		want := len(msg) >= 4 && (msg[0] == 135 || msg[0] == 136) && slowNDValid(ip, msg)
		if (got == wire.DropNone) != want || !want && got != wire.DropBadND {
			t.Fatalf("Check = %q, reference valid %v", got, want)
		}
		if len(msg) < wire.NDLen {
			return
		}
		if m.Type() != msg[0] || m.Code() != msg[1] || int(m.Checksum()) != be16(msg, 2) || m.Flags() != msg[4] ||
			m.TargetAddr().As16() != [16]byte(msg[8:24]) || !bytes.Equal(m.Options(), msg[24:]) {
			t.Fatal("accessors")
		}
		// LinkAddr: the first well-formed one-unit option of the right
		// type, before any malformed option.
		wantType := byte(1)
		if msg[0] == 136 {
			wantType = 2
		}
		var wantLL []byte
		for o := msg[24:]; len(o) >= 2 && o[1] != 0 && int(o[1])*8 <= len(o); o = o[int(o[1])*8:] {
			if o[0] == wantType && o[1] == 1 {
				wantLL = o[2:8]
				break
			}
		}
		ll, ok := m.LinkAddr()
		if ok != (wantLL != nil) || ok && !bytes.Equal(mac(ll), wantLL) {
			t.Fatalf("LinkAddr = %v %v, want % x", ll, ok, wantLL)
		}
	})
}

func TestMatcher(t *testing.T) {
	m := wiretest.Matcher(0, 63, 64, 65535)
	for p := 0; p <= 0xffff; p++ {
		want := p == 0 || p == 63 || p == 64 || p == 65535 || p == wire.PoolPort || p == wire.RelayPort
		if m.Has(uint16(p)) != want {
			t.Fatalf("Has(%d) = %v", p, !want)
		}
	}
}
