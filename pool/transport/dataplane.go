package transport

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/poolrelay/poolrelay/dataplane/wire"
)

// Device is what the data plane offers the control core: the frames its
// workers punted (whole Ethernet frames, copied out, with their port) and a
// way to send a frame on a port. relay.Engine provides both.
type Device interface {
	// ReadPunted calls fn for each frame punted since the last call and
	// returns how many there were. frame is valid only during fn.
	ReadPunted(fn func(port int, frame []byte)) int
	// Inject queues a whole Ethernet frame for transmission on port; it
	// copies frame.
	Inject(port int, frame []byte) error
}

// Port is one data plane port as the control core sees it.
type Port struct {
	MAC wire.MAC
	// Addrs are the port's own addresses (relay.PortInfo's); the first of
	// the remote's family is the source of frames sent on the port.
	Addrs []netip.Prefix
	// UDPPort is the relay's POOL UDP port on this port (9254 by default).
	UDPPort uint16
}

// DataPlaneConfig configures NewDataPlane.
type DataPlaneConfig struct {
	Ports []Port
	// PoolPorts are the UDP destination ports that carry POOL.
	PoolPorts []uint16
	// Poll is how long Recv sleeps when the punt rings are empty: the
	// control core is not a hot path, and a millisecond keeps its latency
	// well under a heartbeat's while the core sleeps.
	Poll time.Duration
	// Resolve, if set, finds the MAC of a remote that sent us nothing yet
	// (an enrollment we start): the neighbour table.
	Resolve func(port int, ip netip.Addr) (wire.MAC, bool)
}

// DataPlane is a Transport over a Device: it removes the Ethernet, VLAN, IP
// and UDP headers of punted frames and adds them to frames it sends, with the
// MAC and VLAN learnt from the remote's frames (carried in its Endpoint).
type DataPlane struct {
	dev     Device
	cfg     DataPlaneConfig
	matcher *wire.Matcher
	closed  atomic.Bool
	// Dropped counts punted frames that were not POOL or did not fit.
	Dropped atomic.Uint64

	// queue holds frames read in one ReadPunted call and not yet returned;
	// owned by the Recv goroutine.
	queue   []punted
	pending int
	// buf is the Send goroutine's frame buffer.
	buf []byte
}

type punted struct {
	frame []byte
	port  int
}

// NewDataPlane returns a transport over dev.
func NewDataPlane(dev Device, cfg DataPlaneConfig) *DataPlane {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Millisecond
	}
	return &DataPlane{dev: dev, cfg: cfg, matcher: wire.NewMatcher(cfg.PoolPorts...), buf: make([]byte, 16384)}
}

// Recv implements Transport.
func (d *DataPlane) Recv(buf []byte) (int, Endpoint, error) {
	var r wire.Result
	for {
		if d.closed.Load() {
			return 0, Endpoint{}, ErrClosed
		}
		for d.pending < len(d.queue) {
			p := d.queue[d.pending]
			d.pending++
			if n, ep, ok := d.strip(buf, p.port, p.frame, &r); ok {
				return n, ep, nil
			}
			d.Dropped.Add(1)
		}
		d.queue, d.pending = d.queue[:0], 0
		if d.dev.ReadPunted(func(port int, frame []byte) {
			d.queue = append(d.queue, punted{frame: append([]byte(nil), frame...), port: port})
		}) == 0 {
			time.Sleep(d.cfg.Poll)
		}
	}
}

// strip decodes a punted frame and copies its POOL part into buf.
func (d *DataPlane) strip(buf []byte, port int, frame []byte, r *wire.Result) (int, Endpoint, bool) {
	wire.Classify(frame, d.matcher, r)
	if r.Drop != wire.DropNone {
		return 0, Endpoint{}, false
	}
	ep := Endpoint{Port: port, MAC: wire.Ethernet(frame).Src()}
	if r.VLANs > 0 {
		ep.VLAN = r.VLANID(0)
	}
	var src netip.Addr
	var sport uint16
	switch r.Kind {
	case wire.KindPoolUDP4, wire.KindPoolIP4:
		src = wire.IPv4(frame[r.L3Off:]).SrcAddr()
	case wire.KindPoolUDP6, wire.KindPoolIP6:
		src = wire.IPv6(frame[r.L3Off:]).SrcAddr()
	default:
		return 0, Endpoint{}, false
	}
	if r.Kind == wire.KindPoolUDP4 || r.Kind == wire.KindPoolUDP6 {
		sport = binary.BigEndian.Uint16(frame[r.L4Off:])
	}
	ep.Addr = netip.AddrPortFrom(src, sport)
	pool := frame[r.PoolOff : int(r.PayloadOff)+int(r.PayloadLen)]
	if len(pool) > len(buf) {
		return 0, Endpoint{}, false
	}
	return copy(buf, pool), ep, true
}

// Send implements Transport.
func (d *DataPlane) Send(to Endpoint, frame []byte) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if len(frame) < wire.HeaderLen {
		return ErrTooLarge
	}
	local, ok := d.Local(to.Port, to.Addr.Addr())
	if !ok {
		return ErrNoRoute
	}
	mac := to.MAC
	if mac == (wire.MAC{}) {
		if d.cfg.Resolve == nil {
			return ErrNoRoute
		}
		if mac, ok = d.cfg.Resolve(to.Port, to.Addr.Addr()); !ok {
			return ErrNoRoute
		}
	}
	h := wire.Header(frame[:wire.HeaderLen])
	s := wire.FrameSpec{
		Dst: mac, Src: local.MAC, SrcIP: local.Addr.Addr(), DstIP: to.Addr.Addr().Unmap(),
		SrcPort: local.Addr.Port(), DstPort: to.Addr.Port(), Pool: h.Fields(), Payload: frame[wire.HeaderLen:],
	}
	if to.Addr.Port() == 0 {
		s.Encap = wire.EncapIP
	}
	var tags [1]wire.VLANTag
	if to.VLAN != 0 {
		tags[0].TCI = to.VLAN
		s.VLANs = tags[:]
	}
	n, err := wire.Build(d.buf, &s)
	if err != nil {
		return ErrTooLarge
	}
	return d.dev.Inject(to.Port, d.buf[:n])
}

// Local implements Transport.
func (d *DataPlane) Local(port int, remote netip.Addr) (Endpoint, bool) {
	if port < 0 || port >= len(d.cfg.Ports) {
		return Endpoint{}, false
	}
	p := d.cfg.Ports[port]
	remote = remote.Unmap()
	for _, pfx := range p.Addrs {
		if a := pfx.Addr(); a.Unmap().Is4() == remote.Is4() {
			return Endpoint{Port: port, Addr: netip.AddrPortFrom(a.Unmap(), p.UDPPort), MAC: p.MAC}, true
		}
	}
	return Endpoint{}, false
}

// Close implements Transport: Recv returns ErrClosed within one poll.
func (d *DataPlane) Close() error {
	d.closed.Store(true)
	return nil
}
