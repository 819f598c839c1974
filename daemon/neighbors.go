package daemon

import (
	"net/netip"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane/neigh"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/pool/transport"
)

// neighbors runs the neighbour resolver for the control core. The relay's
// ports have no kernel stack, so nobody else answers "what is the MAC of
// 192.0.2.7": the resolver sends ARP requests and neighbour solicitations
// through the inject path and learns from the replies the workers punt.
//
// It sits between the engine and the control core's transport as a
// transport.Device: punted ARP replies and neighbour advertisements are
// taken out of the stream and learnt, everything else passes through. The
// resolver is not safe for concurrent use and is reached from the transport's
// Recv goroutine, its Send goroutine (Resolve) and the ticker, hence the
// mutex: this is the control path, a few frames a second.
type neighbors struct {
	dev     transport.Device
	log     zerolog.Logger
	matcher *wire.Matcher

	mu     sync.Mutex
	res    *neigh.Resolver
	pub    *neigh.Published
	probes []neigh.Probe
	buf    []byte
}

func newNeighbors(dev transport.Device, res *neigh.Resolver, pub *neigh.Published, log zerolog.Logger) *neighbors {
	return &neighbors{dev: dev, res: res, pub: pub, log: log, matcher: wire.NewMatcher(), buf: make([]byte, 256)}
}

// ReadPunted implements transport.Device, learning from neighbour replies.
func (n *neighbors) ReadPunted(fn func(port int, frame []byte)) int {
	var r wire.Result
	return n.dev.ReadPunted(func(port int, frame []byte) {
		wire.Classify(frame, n.matcher, &r)
		switch {
		case r.Drop == wire.DropNone && r.Kind == wire.KindARP:
			a := wire.ARP(frame[r.L3Off:])
			n.learn(port, netip.AddrFrom4(a.SenderIP()), a.SenderMAC())
		case r.Drop == wire.DropNone && r.Kind == wire.KindND:
			m := wire.ND(frame[r.L4Off:])
			if mac, ok := m.LinkAddr(); ok {
				n.learn(port, m.TargetAddr(), mac)
			}
		default:
			fn(port, frame)
		}
	})
}

// Inject implements transport.Device.
func (n *neighbors) Inject(port int, frame []byte) error { return n.dev.Inject(port, frame) }

func (n *neighbors) learn(port int, ip netip.Addr, mac wire.MAC) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.res.Learn(uint16(port), ip, neigh.MAC(mac)) {
		n.log.Debug().Int("port", port).Stringer("ip", ip).Stringer("mac", mac).Msg("neighbour learnt")
	}
}

// Resolve is the transport's Resolve: the published MAC if there is one,
// otherwise a resolution is started (its probe injected) and the caller
// retries, as handshakes and heartbeats do anyway.
func (n *neighbors) Resolve(port int, ip netip.Addr) (wire.MAC, bool) {
	if mac, ok := n.pub.Load().Lookup(uint16(port), ip); ok {
		return wire.MAC(mac), true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var err error
	n.probes, err = n.res.Request(n.probes[:0], uint16(port), ip)
	if err != nil {
		n.log.Warn().Err(err).Int("port", port).Stringer("ip", ip).Msg("cannot resolve next hop")
		return wire.MAC{}, false
	}
	n.send()
	return wire.MAC{}, false
}

// run retransmits and ages entries until stop is closed.
func (n *neighbors) run(stop <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			n.mu.Lock()
			n.probes = n.res.Tick(n.probes[:0])
			n.send()
			n.mu.Unlock()
		}
	}
}

// send injects the pending probes; n.mu is held.
func (n *neighbors) send() {
	for _, p := range n.probes {
		var (
			l   int
			err error
		)
		if p.Target.Is4() {
			l, err = wire.BuildARPRequest(n.buf, nil, wire.MAC(p.SrcMAC), p.Src, p.Target)
		} else {
			l, err = wire.BuildNeighborSolicit(n.buf, nil, wire.MAC(p.SrcMAC), p.Src, p.Target)
		}
		if err == nil {
			err = n.dev.Inject(int(p.Port), n.buf[:l])
		}
		if err != nil {
			n.log.Warn().Err(err).Uint16("port", p.Port).Stringer("target", p.Target).Msg("neighbour probe not sent")
		}
	}
	n.probes = n.probes[:0]
}
