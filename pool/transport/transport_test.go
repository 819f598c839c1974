package transport

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/wire"
)

// loopDevice is an in-memory Device: frames queued by the test are punted,
// injected frames are kept for inspection.
type loopDevice struct {
	punt     [][]byte
	injected [][]byte
	ports    []int
}

func (d *loopDevice) ReadPunted(fn func(int, []byte)) int {
	n := len(d.punt)
	for _, f := range d.punt {
		fn(1, f)
	}
	d.punt = nil
	return n
}

func (d *loopDevice) Inject(port int, frame []byte) error {
	d.injected = append(d.injected, bytes.Clone(frame))
	d.ports = append(d.ports, port)
	return nil
}

var (
	relayMAC = wire.MAC{2, 0, 0, 0, 0, 1}
	peerMAC  = wire.MAC{2, 0, 0, 0, 0, 2}
)

func TestDataPlaneRoundTrip(t *testing.T) {
	dev := &loopDevice{}
	dp := NewDataPlane(dev, DataPlaneConfig{
		Ports:     []Port{{}, {MAC: relayMAC, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")}, UDPPort: 9254}},
		PoolPorts: []uint16{9254},
	})
	payload := []byte("a control payload")
	spec := wire.FrameSpec{Dst: relayMAC, Src: peerMAC, VLANs: []wire.VLANTag{{TCI: 42}},
		SrcIP: netip.MustParseAddr("10.0.0.2"), DstIP: netip.MustParseAddr("10.0.0.1"), SrcPort: 40000, DstPort: 9254,
		Pool: wire.Fields{Type: wire.TypeInit, Channel: 2, Seq: 7}, Payload: payload}
	buf := make([]byte, 2048)
	n, err := wire.Build(buf, &spec)
	if err != nil {
		t.Fatal(err)
	}
	dev.punt = [][]byte{[]byte("not a frame"), buf[:n]}
	out := make([]byte, 2048)
	m, ep, err := dp.Recv(out)
	if err != nil {
		t.Fatal(err)
	}
	if dp.Dropped.Load() != 1 {
		t.Fatalf("dropped %d, want 1 (the junk frame)", dp.Dropped.Load())
	}
	want := Endpoint{Port: 1, Addr: netip.MustParseAddrPort("10.0.0.2:40000"), MAC: peerMAC, VLAN: 42}
	if ep != want {
		t.Fatalf("endpoint %+v, want %+v", ep, want)
	}
	h := wire.Header(out[:m])
	if h.Type() != wire.TypeInit || h.Seq() != 7 || !bytes.Equal(out[wire.HeaderLen:m], payload) {
		t.Fatalf("POOL bytes wrong: %x", out[:m])
	}
	// Answer: the frame goes back with the learnt MAC, VLAN and addresses.
	if err := dp.Send(ep, out[:m]); err != nil {
		t.Fatal(err)
	}
	var r wire.Result
	wire.Classify(dev.injected[0], wire.NewMatcher(40000), &r)
	if r.Drop != wire.DropNone || r.Kind != wire.KindPoolUDP4 || dev.ports[0] != 1 || r.VLANID(0) != 42 {
		t.Fatalf("injected frame: %+v port %d", r, dev.ports[0])
	}
	if e := wire.Ethernet(dev.injected[0]); e.Dst() != peerMAC || e.Src() != relayMAC {
		t.Fatal("MACs not swapped")
	}
	// No IPv4 address on port 0, and no MAC for a new IPv6 remote without a resolver.
	if err := dp.Send(Endpoint{Port: 0, Addr: ep.Addr}, out[:m]); !errors.Is(err, ErrNoRoute) {
		t.Fatal(err)
	}
	if err := dp.Send(Endpoint{Port: 1, Addr: netip.MustParseAddrPort("[fd00::2]:9254")}, out[:m]); !errors.Is(err, ErrNoRoute) {
		t.Fatal(err)
	}
	dp.Close()
	if _, _, err := dp.Recv(out); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

func TestUDPLoopback(t *testing.T) {
	a, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Send(Endpoint{Addr: b.Addr()}, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, ep, err := b.Recv(buf)
	if err != nil || string(buf[:n]) != "hello" || ep.Addr != a.Addr() {
		t.Fatalf("%q %v %v", buf[:n], ep, err)
	}
	b.Close()
	if _, _, err := b.Recv(buf); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

// FuzzStrip feeds arbitrary punted frames to the data plane transport:
// anything that is not POOL over Ethernet is dropped, nothing panics, and
// what is returned lies within the frame.
func FuzzStrip(f *testing.F) {
	spec := wire.FrameSpec{Dst: relayMAC, Src: peerMAC, SrcIP: netip.MustParseAddr("fd00::2"), DstIP: netip.MustParseAddr("fd00::1"),
		SrcPort: 1, DstPort: 9254, Pool: wire.Fields{Type: wire.TypeInit, Channel: 2}, Payload: []byte("x")}
	buf := make([]byte, 512)
	n, _ := wire.Build(buf, &spec)
	f.Add(buf[:n])
	f.Add([]byte{1, 2, 3})
	dp := NewDataPlane(&loopDevice{}, DataPlaneConfig{PoolPorts: []uint16{9254}})
	out := make([]byte, 256)
	f.Fuzz(func(t *testing.T, frame []byte) {
		var r wire.Result
		if m, _, ok := dp.strip(out, 0, frame, &r); ok && (m > len(frame) || m < wire.HeaderLen) {
			t.Fatalf("returned %d bytes of a %d-byte frame", m, len(frame))
		}
	})
}
