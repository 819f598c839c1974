package wire_test

import (
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
)

// notReady puts in frame's UDP checksum what a Linux sender leaves there for
// checksum offload (CHECKSUM_PARTIAL): the folded pseudo-header sum, i.e.
// ~csum_tcpudp_magic(src, dst, len, IPPROTO_UDP, 0), computed here the slow
// way: as the ones' complement of the checksum of the pseudo-header alone.
func notReady(frame []byte, r *wire.Result) uint16 {
	n := int(r.L4Len)
	var pseudo uint64
	if r.Kind.IsIPv6() {
		ip := wire.IPv6(frame[r.L3Off:])
		pseudo = wire.PseudoHeaderSum(ip[8:24], ip[24:40], wire.ProtoUDP, n)
	} else {
		ip := wire.IPv4(frame[r.L3Off:])
		pseudo = wire.PseudoHeaderSum(ip[12:16], ip[16:20], wire.ProtoUDP, n)
	}
	return ^wire.Checksum(nil, pseudo)
}

// fuzzUDPFrame builds the UDP frame of a fuzz case: s with addresses of its
// family from src and dst (wiretest.FuzzAddrs) and at most 1400 bytes of
// payload, its UDP checksum set to csum or, with setPartial, to what a
// sender leaves to offload (notReady). It returns the frame, how it
// classifies and the checksum set; ok is false for a case to skip.
func fuzzUDPFrame(t *testing.T, s wire.FrameSpec, src, dst, payload []byte, csum uint16, setPartial bool) (frame []byte, r wire.Result, set uint16, ok bool) {
	t.Helper()
	v6 := s.SrcIP.Is6()
	if s.SrcIP, s.DstIP, ok = wiretest.FuzzAddrs(v6, src, dst); !ok {
		return nil, r, 0, false
	}
	s.Payload = payload[:min(len(payload), 1400)]
	frame = wiretest.Frame(t, &s)
	r = classify(frame)
	if r.Drop != wire.DropNone || !r.Kind.IsUDP() {
		return nil, r, 0, false
	}
	if setPartial {
		csum = notReady(frame, &r)
	}
	if csum == 0 && v6 {
		return nil, r, 0, false // Classify drops it
	}
	wire.UDP(frame[r.L4Off:]).SetChecksum(csum)
	return frame, r, csum, true
}

// A checksum left to offload is recognised, a real one is not, and the
// relay's steps on such a frame (Rewrite, the seq and MAC patch) followed
// by CompleteUDPChecksum give a frame whose checksum verifies, where the
// incremental updates alone give a wrong one.
func TestUDPChecksumNotReady(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, vlan := range []bool{false, true} {
			var mods []func(*wire.FrameSpec)
			if vlan {
				mods = append(mods, withVLANs(wire.VLANTag{TCI: 5}))
			}
			frame := build(t, v6, mods...)
			r := classify(frame)
			if !udpChecksumValid(frame, &r) || wire.UDPChecksumNotReady(frame, &r) {
				t.Fatalf("v6=%v: a built frame's checksum taken as not ready", v6)
			}
			wire.UDP(frame[r.L4Off:]).SetChecksum(notReady(frame, &r))
			if !wire.UDPChecksumNotReady(frame, &r) {
				t.Fatalf("v6=%v vlan=%v: a checksum left to offload not recognised", v6, vlan)
			}
			plain := append([]byte(nil), frame...)
			relayStep := func(f []byte) {
				nh := nextHop(t, v6)
				if d := wire.Rewrite(f, &r, &nh); d != wire.DropNone {
					t.Fatal(d)
				}
				var p wire.UDPPatch
				p.Begin(f, &r, int(r.PoolOff)+4, wire.HeaderLen-4)
				h := r.Pool(f)
				h.SetSeq(h.Seq() + 1)
				h.SetMAC([wire.MACLen]byte{0xaa, 0x55})
				p.End(f)
			}
			relayStep(plain)
			if udpChecksumValid(plain, &r) {
				t.Fatalf("v6=%v: incremental updates made a not-ready checksum right: the test shows nothing", v6)
			}
			relayStep(frame)
			wire.CompleteUDPChecksum(frame, &r)
			if !udpChecksumValid(frame, &r) || wire.UDPChecksumNotReady(frame, &r) {
				t.Fatalf("v6=%v vlan=%v: completed checksum does not verify", v6, vlan)
			}
		}
	}
	// Not UDP: nothing to recognise or complete.
	frame := build(t, false, withEncapIP)
	r := classify(frame)
	before := append([]byte(nil), frame...)
	if wire.UDPChecksumNotReady(frame, &r) {
		t.Fatal("POOL over IP taken as a UDP checksum not ready")
	}
	wire.CompleteUDPChecksum(frame, &r)
	if string(before) != string(frame) {
		t.Fatal("CompleteUDPChecksum changed a frame without UDP")
	}
}

func TestUDPChecksumNotReadyAllocatesNothing(t *testing.T) {
	frame := build(t, true)
	r := classify(frame)
	if a := testing.AllocsPerRun(100, func() {
		if wire.UDPChecksumNotReady(frame, &r) {
			wire.CompleteUDPChecksum(frame, &r)
		}
	}); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}

// FuzzUDPChecksumNotReady checks the fast test against the slow one on
// fuzzed addresses, ports, payloads and checksum values, and that a
// completed checksum always verifies.
func FuzzUDPChecksumNotReady(f *testing.F) {
	f.Add(false, []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}, uint16(9254), []byte("pool"), uint16(0), true)
	f.Add(true, make([]byte, 16), make([]byte, 16), uint16(1), []byte{}, uint16(0xffff), false)
	f.Fuzz(func(t *testing.T, v6 bool, src, dst []byte, sport uint16, payload []byte, csum uint16, setPartial bool) {
		s := wiretest.Spec(v6)
		s.SrcPort = sport
		frame, r, csum, ok := fuzzUDPFrame(t, s, src, dst, payload, csum, setPartial)
		if !ok {
			return
		}
		want := csum != 0 && csum == notReady(frame, &r)
		if got := wire.UDPChecksumNotReady(frame, &r); got != want {
			t.Fatalf("UDPChecksumNotReady = %v, slow %v (checksum %#04x)", got, want, csum)
		}
		wire.CompleteUDPChecksum(frame, &r)
		if !udpChecksumValid(frame, &r) {
			t.Fatal("completed checksum does not verify")
		}
	})
}
