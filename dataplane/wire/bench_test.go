package wire_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
	"github.com/poolrelay/poolrelay/internal/cputime"
)

// benchFrame is a frame of the shape the data plane sees most, by name.
type benchFrame struct {
	name string
	v6   bool
	mods []func(*wire.FrameSpec)
}

var benchFrames = []benchFrame{
	{"ipv4-udp", false, nil},
	{"ipv4-253", false, []func(*wire.FrameSpec){withEncapIP}},
	{"ipv6-udp", true, nil},
	{"ipv6-253", true, []func(*wire.FrameSpec){withEncapIP}},
	{"vlan-ipv4-udp", false, []func(*wire.FrameSpec){withVLANs(wire.VLANTag{TCI: 100})}},
	{"qinq-ipv6-udp", true, []func(*wire.FrameSpec){withVLANs(wire.VLANTag{TPID: wire.EtherTypeQinQ, TCI: 10}, wire.VLANTag{TCI: 100})}},
}

func (bf benchFrame) build(tb testing.TB, ttl uint8) []byte {
	return build(tb, bf.v6, append(bf.mods, func(s *wire.FrameSpec) { s.TTL = ttl })...)
}

func TestNoAllocs(t *testing.T) {
	m := testMatcher
	var r wire.Result
	for _, bf := range benchFrames {
		orig := bf.build(t, 64)
		f := bytes.Clone(orig)
		nh := nextHop(t, bf.v6)
		check(t, bf.name+"/Classify", func() { wire.Classify(f, m, &r) })
		check(t, bf.name+"/Classify+Rewrite", func() {
			copy(f, orig)
			wire.Classify(f, m, &r)
			if d := wire.Rewrite(f, &r, &nh); d != wire.DropNone {
				t.Fatal(d)
			}
		})
		var seq [8]byte
		check(t, bf.name+"/PatchUDP", func() { wire.PatchUDP(f, &r, int(r.PoolOff)+4, seq[:]) })
		check(t, bf.name+"/UDPPatch", func() {
			var p wire.UDPPatch
			p.Begin(f, &r, int(r.PoolOff)+4, wire.HeaderLen-4)
			r.Pool(f).SetSeq(7)
			p.End(f)
		})
		s := wiretest.Spec(bf.v6)
		for _, mod := range bf.mods {
			mod(&s)
		}
		buf := make([]byte, wiretest.BufLen)
		check(t, bf.name+"/Build", func() {
			if _, err := wire.Build(buf, &s); err != nil {
				t.Fatal(err)
			}
		})
	}
	arp := arpRequest(t)
	f := bytes.Clone(arp)
	check(t, "AnswerARP", func() {
		copy(f, arp)
		wire.Classify(f, m, &r)
		if !wire.AnswerARP(f, &r, wiretest.RelayMAC) {
			t.Fatal("no answer")
		}
	})
	ns := solicit(t)
	f = make([]byte, len(ns), wiretest.BufLen)
	check(t, "AnswerND", func() {
		f = f[:copy(f[:len(ns)], ns)]
		wire.Classify(f, m, &r)
		if _, ok := wire.AnswerND(f, &r, wiretest.RelayMAC); !ok {
			t.Fatal("no answer")
		}
	})
	buf := make([]byte, wiretest.BufLen)
	check(t, "BuildARPRequest", func() {
		if _, err := wire.BuildARPRequest(buf, nil, wiretest.RelayMAC, wiretest.Relay4, wiretest.Next4); err != nil {
			t.Fatal(err)
		}
	})
	check(t, "BuildNeighborSolicit", func() {
		if _, err := wire.BuildNeighborSolicit(buf, nil, wiretest.RelayMAC, wiretest.Relay6, wiretest.Next6); err != nil {
			t.Fatal(err)
		}
	})
	var h uint64
	check(t, "SessionID.Hash", func() { h += wiretest.Session.Hash(h) })
}

func check(t *testing.T, name string, f func()) {
	t.Helper()
	if n := testing.AllocsPerRun(100, f); n != 0 {
		t.Errorf("%s: %v allocations per run", name, n)
	}
}

func BenchmarkClassify(b *testing.B) {
	for _, bf := range benchFrames {
		b.Run(bf.name, func(b *testing.B) {
			f := bf.build(b, 64)
			var r wire.Result
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			cpu := cputime.Start()
			for b.Loop() {
				wire.Classify(f, testMatcher, &r)
			}
			cpu.Report(b)
			if r.Drop != wire.DropNone {
				b.Fatal(r.Drop)
			}
		})
	}
}

// BenchmarkClassifyRewrite is the per-frame work of a relay's worker: classify
// and rewrite for the next hop, over a burst of frames as the data plane
// handles them. The frames start with TTL 255 and are rebuilt, off the
// clock, before it runs out.
func BenchmarkClassifyRewrite(b *testing.B) {
	const burst = 32
	for _, bf := range benchFrames {
		b.Run(bf.name, func(b *testing.B) {
			orig := bf.build(b, 255)
			var frames [burst][]byte
			for i := range frames {
				frames[i] = bytes.Clone(orig)
			}
			nh := nextHop(b, bf.v6)
			var r wire.Result
			b.SetBytes(int64(len(orig)))
			b.ReportAllocs()
			i, pass := 0, 0
			cpu := cputime.Start()
			for b.Loop() {
				f := frames[i]
				wire.Classify(f, testMatcher, &r)
				if wire.Rewrite(f, &r, &nh) != wire.DropNone {
					b.Fatal(r.Drop)
				}
				if i++; i == burst {
					i = 0
					if pass++; pass == 250 {
						// StopTimer and StartTimer read the memory
						// statistics, a stop-the-world: keep them off
						// both clocks.
						cpu.Pause()
						b.StopTimer()
						for k := range frames {
							copy(frames[k], orig)
						}
						pass = 0
						b.StartTimer()
						cpu.Resume()
					}
				}
			}
			cpu.Report(b)
		})
	}
}

// patchBurst is a burst of POOL-over-UDP frames, IPv4 and IPv6 in turn, for
// the per-hop seq and MAC benchmarks: round-robin over it, one frame's
// checksum update does not wait for the last one's.
func patchBurst(b *testing.B) ([32][]byte, [32]wire.Result) {
	var frames [32][]byte
	var rs [32]wire.Result
	for i := range frames {
		frames[i] = build(b, i%2 == 0)
		rs[i] = classify(frames[i])
	}
	return frames, rs
}

// BenchmarkPatchUDP writes a per-hop seq and MAC with two PatchUDP calls.
func BenchmarkPatchUDP(b *testing.B) {
	frames, rs := patchBurst(b)
	mac := bytes.Repeat([]byte{0x5a}, wire.MACLen)
	var seq [8]byte
	var n uint64
	b.ReportAllocs()
	i := 0
	cpu := cputime.Start()
	for b.Loop() {
		f, r := frames[i], &rs[i]
		n++
		binary.BigEndian.PutUint64(seq[:], n)
		wire.PatchUDP(f, r, int(r.PoolOff)+4, seq[:])
		wire.PatchUDP(f, r, int(r.PoolOff)+48, mac)
		i = (i + 1) % len(frames)
	}
	cpu.Report(b)
}

// BenchmarkUDPPatchSeqMAC is the relay's per-hop write as the data plane
// would do it: one patch over seq to MAC, the seq set, the MAC field zeroed
// (the MAC is computed over the header with it zero) and then written, one
// checksum update.
func BenchmarkUDPPatchSeqMAC(b *testing.B) {
	frames, rs := patchBurst(b)
	var mac [wire.MACLen]byte
	mac[0] = 0x5a
	var n uint64
	b.ReportAllocs()
	i := 0
	cpu := cputime.Start()
	for b.Loop() {
		f, r := frames[i], &rs[i]
		n++
		var p wire.UDPPatch
		p.Begin(f, r, int(r.PoolOff)+4, wire.HeaderLen-4)
		h := r.Pool(f)
		h.SetSeq(n)
		h.SetMAC([wire.MACLen]byte{})
		h.SetMAC(mac)
		p.End(f)
		i = (i + 1) % len(frames)
	}
	cpu.Report(b)
}

func BenchmarkSessionHash(b *testing.B) {
	var h uint64
	s := wiretest.Session
	b.ReportAllocs()
	cpu := cputime.Start()
	for b.Loop() {
		h = s.Hash(h)
	}
	cpu.Report(b)
	_ = h
}

// BenchmarkUDPChecksumNotReady is the per-frame test the worker adds for
// checksums left to offload, over the same burst of frames as
// BenchmarkUDPPatchSeqMAC (the per-hop checksum update it sits beside);
// BenchmarkCompleteUDPChecksum the recomputation a frame left to offload
// then costs.
func BenchmarkUDPChecksumNotReady(b *testing.B) {
	frames, rs := patchBurst(b)
	b.ReportAllocs()
	i, hits := 0, 0
	cpu := cputime.Start()
	for b.Loop() {
		if wire.UDPChecksumNotReady(frames[i], &rs[i]) {
			hits++
		}
		i = (i + 1) % len(frames)
	}
	cpu.Report(b)
	if hits != 0 {
		b.Fatalf("%d built frames taken as not ready", hits)
	}
}

func BenchmarkCompleteUDPChecksum(b *testing.B) {
	frames, rs := patchBurst(b)
	b.ReportAllocs()
	i := 0
	cpu := cputime.Start()
	for b.Loop() {
		wire.CompleteUDPChecksum(frames[i], &rs[i])
		i = (i + 1) % len(frames)
	}
	cpu.Report(b)
}
