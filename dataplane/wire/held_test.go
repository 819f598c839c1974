package wire_test

import (
	"bytes"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
)

// heldCase rewrites a copy of frame for nh twice, once with Rewrite and the
// change of data at off patched in with UpdateUDP (or, for a checksum left
// to offload, completed with CompleteUDPChecksum), once with RewriteHeld,
// UDPHeld.Add and Apply, and fails unless both give the same bytes and
// RewriteHeld tells a checksum left to offload as UDPChecksumNotReady does.
func heldCase(t *testing.T, frame []byte, r *wire.Result, nh *wire.NextHop, off int, data []byte) {
	t.Helper()
	want := append([]byte(nil), frame...)
	notReady := wire.UDPChecksumNotReady(want, r)
	dw := wire.Rewrite(want, r, nh)
	got := append([]byte(nil), frame...)
	var u wire.UDPHeld
	dg := wire.RewriteHeld(got, r, nh, &u)
	if dw != dg {
		t.Fatalf("RewriteHeld = %v, Rewrite %v", dg, dw)
	}
	if dw != wire.DropNone {
		if !bytes.Equal(got, frame) {
			t.Fatal("RewriteHeld changed a dropped frame")
		}
		return
	}
	if u.NotReady() != notReady {
		t.Fatalf("RewriteHeld not ready = %v, UDPChecksumNotReady %v", u.NotReady(), notReady)
	}
	oldSum, newSum := wire.Sum(want[off:off+len(data)]), wire.Sum(data)
	copy(want[off:], data)
	if notReady {
		wire.CompleteUDPChecksum(want, r)
	} else {
		wire.UpdateUDP(want, r, off, len(data), oldSum, newSum)
	}
	copy(got[off:], data)
	u.Add(off, oldSum, newSum)
	u.Apply(got, r)
	if !bytes.Equal(got, want) {
		t.Fatalf("held update differs from Rewrite and UpdateUDP:\n got %x\nwant %x", got, want)
	}
}

// RewriteHeld, Add and Apply give what Rewrite and UpdateUDP (or
// CompleteUDPChecksum) give, for both families, POOL over IP, a checksum
// left to offload and changes at odd offsets.
func TestRewriteHeld(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, ip := range []bool{false, true} {
			for _, partial := range []bool{false, true} {
				if ip && partial {
					continue
				}
				var mods []func(*wire.FrameSpec)
				if ip {
					mods = append(mods, withEncapIP)
				}
				frame := build(t, v6, mods...)
				r := classify(frame)
				if partial {
					wire.UDP(frame[r.L4Off:]).SetChecksum(notReady(frame, &r))
				}
				nh := nextHop(t, v6)
				for _, off := range []int{4, 5, 8, 13} {
					heldCase(t, frame, &r, &nh, int(r.PoolOff)+off, []byte{0xde, 0xad, 0xbe, 0xef, 0x01})
				}
				if !ip {
					// The relay's use: the final bytes verify.
					got := append([]byte(nil), frame...)
					var u wire.UDPHeld
					if d := wire.RewriteHeld(got, &r, &nh, &u); d != wire.DropNone {
						t.Fatal(d)
					}
					u.Apply(got, &r)
					if !udpChecksumValid(got, &r) {
						t.Fatalf("v6=%v partial=%v: checksum does not verify", v6, partial)
					}
				}
			}
		}
	}
}

func TestRewriteHeldAllocatesNothing(t *testing.T) {
	frame := build(t, true)
	r := classify(frame)
	nh := nextHop(t, true)
	var u wire.UDPHeld
	if a := testing.AllocsPerRun(100, func() {
		wire.IPv6(frame[r.L3Off:])[7] = 64
		if wire.RewriteHeld(frame, &r, &nh, &u) == wire.DropNone {
			u.Add(int(r.PoolOff)+4, 1, 2)
			u.Apply(frame, &r)
		}
	}); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}

// FuzzRewriteHeld compares the held update with Rewrite and UpdateUDP on
// fuzzed addresses, payloads, checksum values and changed ranges.
func FuzzRewriteHeld(f *testing.F) {
	f.Add(false, []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}, []byte("pool payload"), uint16(0), true, uint8(4), []byte{1, 2, 3})
	f.Add(true, make([]byte, 16), make([]byte, 16), []byte{}, uint16(0xffff), false, uint8(5), []byte{0xff})
	f.Add(false, []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}, []byte("x"), uint16(0), false, uint8(7), []byte{9, 9})
	f.Fuzz(func(t *testing.T, v6 bool, src, dst, payload []byte, csum uint16, setPartial bool, off uint8, data []byte) {
		frame, r, _, ok := fuzzUDPFrame(t, wiretest.Spec(v6), src, dst, payload, csum, setPartial)
		if !ok {
			return
		}
		// The changed range: inside the UDP payload.
		start := int(r.PoolOff) + int(off)%(int(r.L4Off)+int(r.L4Len)-int(r.PoolOff))
		if n := int(r.L4Off) + int(r.L4Len) - start; len(data) > n {
			data = data[:n]
		}
		nh := nextHop(t, v6)
		heldCase(t, frame, &r, &nh, start, data)
	})
}
