package traffic

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/wire"
)

var testKey = bytes.Repeat([]byte{0x42}, 32)

func spec(size int, v6 bool, key []byte) Spec {
	s := Spec{
		Size: size, Sessions: 1000,
		Dst: wire.MAC{2, 0, 0, 0, 0, 2}, Src: wire.MAC{2, 0, 0, 0, 0, 1},
		SrcIP: netip.MustParseAddr("192.0.2.1"), DstIP: netip.MustParseAddr("192.0.2.2"),
		SrcPort: 40000, Key: key,
	}
	if v6 {
		s.SrcIP, s.DstIP = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	}
	return s
}

// rebuilt builds, independently of Restamp's patches, the frame that
// frame's decoded fields describe: same seq, session and MAC, checksums
// computed from scratch.
func rebuilt(t *testing.T, b *Builder, frame []byte) []byte {
	t.Helper()
	var r wire.Result
	wire.Classify(frame, wire.NewMatcher(wire.RelayPort), &r)
	if r.Drop != wire.DropNone {
		t.Fatalf("frame dropped: %v", r.Drop)
	}
	spec := b.frameSpec(0)
	spec.Pool = r.Pool(frame).Fields()
	spec.Payload = r.Payload(frame)
	out := make([]byte, len(frame))
	if _, err := wire.Build(out, &spec); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFrames(t *testing.T) {
	for _, c := range []struct {
		size int
		v6   bool
		key  []byte
	}{{128, false, testKey}, {128, false, nil}, {202, false, testKey}, {512, true, testKey}, {1514, false, testKey}} {
		b, err := NewBuilder(spec(c.size, c.v6, c.key))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		keySeq := uint64(0)
		for _, sess := range []int{0, 7, 999} {
			for n := uint64(1); n <= 3; n++ {
				// Without a key each session counts from 1; with one, the
				// key's seq runs on across sessions (a nonce never repeats).
				want := n
				if c.key != nil {
					keySeq++
					want = keySeq
				}
				var frame []byte
				if n == 1 {
					n, err := b.Frame(buf, sess)
					if err != nil || n != c.size {
						t.Fatalf("Frame(%d): %d, %v", sess, n, err)
					}
					frame = buf[:n]
				} else {
					frame = buf[:c.size]
					if i, err := b.Restamp(frame); err != nil || i != sess {
						t.Fatalf("Restamp: %d, %v; want session %d", i, err, sess)
					}
				}
				var r wire.Result
				wire.Classify(frame, wire.NewMatcher(wire.RelayPort), &r)
				h := r.Pool(frame)
				if h.Type() != wire.TypeData || h.Channel() != 0 || h.Seq() != want {
					t.Fatalf("size %d session %d: type %v channel %d seq %d, want DATA 0 %d", c.size, sess, h.Type(), h.Channel(), h.Seq(), want)
				}
				if i, ok := SessionIndex(h.Session()); !ok || i != sess {
					t.Fatalf("hop session %v: index %d %v", h.Session(), i, ok)
				}
				if !bytes.Equal(frame, rebuilt(t, b, frame)) {
					t.Fatalf("size %d: patched frame differs from one built from scratch (checksum?)", c.size)
				}
				pool := frame[r.PoolOff:]
				if c.key != nil && !hopmac.New(c.key).Verify(pool) {
					t.Fatalf("size %d: hop MAC does not verify", c.size)
				}
				if c.key == nil && h.MAC() != [32]byte{} {
					t.Fatal("MAC field set without a key")
				}
				inner := r.Payload(frame)
				if len(inner) >= wire.HeaderLen {
					ih := wire.Header(inner)
					if i, ok := SessionIndex(ih.Session()); !ok || i != sess || ih.Type() != wire.TypeData || int(ih.PayloadLen()) != len(inner)-wire.HeaderLen {
						t.Fatalf("inner header: session %v type %v len %d", ih.Session(), ih.Type(), ih.PayloadLen())
					}
				}
			}
		}
		// gopacket agrees on the layers and the UDP length.
		p := gopacket.NewPacket(buf[:c.size], layers.LayerTypeEthernet, gopacket.Default)
		udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if p.ErrorLayer() != nil || udp == nil || udp.DstPort != wire.RelayPort || int(udp.Length) != len(udp.Contents)+len(udp.Payload) {
			t.Fatalf("gopacket: %v", p)
		}
	}
}

// TestStampRetargets turns a frame of one session into frames of others,
// as the generator does with prefilled mbufs, and checks each against a
// frame built from scratch.
func TestStampRetargets(t *testing.T) {
	for _, size := range []int{128, 300} {
		b, buf := framed(t, size, testKey, 3)
		for _, sess := range []int{9, 999, 3, 0} {
			if err := b.Stamp(buf, sess); err != nil {
				t.Fatal(err)
			}
			var r wire.Result
			wire.Classify(buf, wire.NewMatcher(wire.RelayPort), &r)
			if i, ok := SessionIndex(r.Session); !ok || i != sess {
				t.Fatalf("stamped for %d, carries %v", sess, r.Session)
			}
			if in := r.Payload(buf); len(in) >= 36 {
				if i, ok := SessionIndex(wire.SessionID(in[20:36])); !ok || i != sess {
					t.Fatalf("inner session %v, want %d", in[20:36], sess)
				}
			}
			if !bytes.Equal(buf, rebuilt(t, b, buf)) {
				t.Fatalf("size %d: stamped frame differs from one built from scratch", size)
			}
			if !hopmac.New(testKey).Verify(buf[r.PoolOff:]) {
				t.Fatal("hop MAC does not verify")
			}
		}
		if err := b.Stamp(buf, 1000); !errors.Is(err, ErrSessions) {
			t.Fatalf("session out of range: %v", err)
		}
	}
}

// framed returns the Builder of an IPv4 Spec of size-byte frames under
// key, and a frame of session sess it built.
func framed(t testing.TB, size int, key []byte, sess int) (*Builder, []byte) {
	t.Helper()
	b, err := NewBuilder(spec(size, false, key))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, size)
	if _, err := b.Frame(buf, sess); err != nil {
		t.Fatal(err)
	}
	return b, buf
}

func TestRestampForeign(t *testing.T) {
	b, buf := framed(t, 256, testKey, 1)
	if _, err := b.Restamp(buf[:255]); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("short frame: %v", err)
	}
	buf[b.PoolOffset()+20] ^= 1 // no longer a generated session id
	if _, err := b.Restamp(buf); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("foreign session: %v", err)
	}
}

func TestSpecErrors(t *testing.T) {
	for _, c := range []struct {
		s    Spec
		want error
	}{
		{spec(MinSize(false)-1, false, nil), ErrSize},
		{spec(MaxSize+1, false, nil), ErrSize},
		{spec(128, false, []byte{1}), ErrKey},
		{func() Spec { s := spec(128, false, nil); s.Sessions = 0; return s }(), ErrSessions},
		{func() Spec { s := spec(128, false, nil); s.DstIP = netip.MustParseAddr("::1"); return s }(), ErrAddrs},
	} {
		if _, err := NewBuilder(c.s); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.s, err, c.want)
		}
	}
	if _, err := NewBuilder(spec(MinSize(true), true, nil)); err != nil {
		t.Errorf("smallest IPv6 frame: %v", err)
	}
}

func TestRestampAllocs(t *testing.T) {
	b, buf := framed(t, 512, testKey, 3)
	if n := testing.AllocsPerRun(1000, func() { b.Restamp(buf) }); n != 0 {
		t.Fatalf("Restamp allocates %v times", n)
	}
	sess := 0
	if n := testing.AllocsPerRun(1000, func() { b.Stamp(buf, sess); sess = (sess + 1) % 1000 }); n != 0 {
		t.Fatalf("Stamp allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { b.Frame(buf, 5) }); n != 0 {
		t.Fatalf("Frame allocates %v times", n)
	}
}

// FuzzRestamp feeds Restamp arbitrary bytes of the Spec's size: it must
// answer ErrNotOurs or restamp, never panic.
func FuzzRestamp(f *testing.F) {
	b, buf := framed(f, 160, testKey, 2)
	f.Add(buf)
	f.Add(make([]byte, 160))
	f.Fuzz(func(t *testing.T, frame []byte) {
		b.Restamp(frame)
	})
}

// BenchmarkStamp is the generator's per-frame work: a prefilled frame
// turned into the next session's next frame.
func BenchmarkStamp(b *testing.B) {
	for _, size := range []int{128, 512, 1500} {
		for _, key := range [][]byte{nil, testKey} {
			name := "nomac"
			if key != nil {
				name = "hopmac"
			}
			b.Run(name+"/"+strconv.Itoa(size), func(b *testing.B) {
				g, buf := framed(b, size, key, 0)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				sess := 0
				for b.Loop() {
					if sess++; sess == 1000 {
						sess = 0
					}
					g.Stamp(buf, sess)
				}
			})
		}
	}
}

// BenchmarkFrame builds every frame from scratch: the comparison for
// BenchmarkStamp (pool_gen --mode build against --mode prefill).
func BenchmarkFrame(b *testing.B) {
	for _, size := range []int{128, 1500} {
		b.Run("nomac/"+strconv.Itoa(size), func(b *testing.B) {
			g, err := NewBuilder(spec(size, false, nil))
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			sess := 0
			for b.Loop() {
				if sess++; sess == 1000 {
					sess = 0
				}
				g.Frame(buf, sess)
			}
		})
	}
}
