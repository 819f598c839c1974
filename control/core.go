// Package control is the relay's control core: one goroutine that owns the
// relay's sessions with its peers and everything that follows from them.
//
// It answers the stateless handshake (crypto/handshake's Responder) and
// enrolls with other relays (Enroll, as initiator); on each completed
// handshake it assigns the peer a data plane slot, installs the hop keys,
// and connects the peer's account in the ledger under the terms both ends
// announced. Over the session's sealed control channel (pool/proto) it opens
// and closes relayed routes in the data plane's table, exchanges signed
// heartbeats and cross-checks the peer's counters with the ledger, and sends
// and acknowledges cheques. On a fixed tick it feeds the data plane's per-peer
// counters to the ledger, publishes each peer's class and choke state to the
// data plane, sends heartbeats and due cheques, rekeys, and expires routes and
// silent peers.
//
// The operator acts through Unenroll, AddRoute and CloseRoute (static
// routes), and SetConfig; Peers, Routes, Counters and Stats report.
//
// Static lab peers ([[control.static_peer]], static.go) are the
// configuration's: traffic generators on the relay's machine with a peer
// slot, an account and hop keys from a pre-shared key file (or, declared
// unauthenticated, none), but no session; static ranges
// ([[control.static_route]]) relay thousands of their hop sessions in one
// line. New and SetConfig install them as a difference against what runs.
//
// # Accounting
//
// A relayed frame counts, for the peer that authenticated it and towards the
// next hop, its outer POOL frame: the 80-byte header and its payload (the
// inner frame), never the Ethernet, VLAN, IP or UDP headers around it, which
// differ from hop to hop. End nodes count the same unit in the counters they
// sign, and so does the fixture in controltest. Sealed control messages
// count their POOL frame the same way: the sender each one it sends, the
// receiver each one that opens.
// When a heartbeat arrives the core brings the ledger's view of the peer's
// traffic up to date before the ledger compares it with the peer's signed
// counters, so that the two differ only by the frames in flight, which the
// ledger's tolerance band (a percentage plus absolute slack) absorbs.
//
// The core is transport-agnostic (pool/transport: a UDP socket, or the data
// plane's punt and inject rings) and reaches the data plane only through the
// DataPlane interface. Time comes from an injected clock, so that tests run
// on fake time.
package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/confcheck"
	"github.com/poolrelay/poolrelay/internal/owner"
	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/pool/proto"
	"github.com/poolrelay/poolrelay/pool/transport"
	"github.com/poolrelay/poolrelay/sched"
)

// DataPlane is what the core installs in the data plane: routes, the hop
// keys of each key slot, each peer slot's class and choke state.
// *relay.Tables implements it. Peer slot i and key slot i are the same number
// here: one session per peer, so one key slot per peer.
type DataPlane interface {
	Routes() *route.Table
	SetHopKeys(slot uint32, rx, tx []byte) error
	ClearHopKeys(slot uint32)
	SetPeer(peer uint32, class sched.Class, choked bool) error
}

// Counters reads the data plane's cumulative traffic of a peer slot, summed
// over the workers. *counters.Set implements it.
type Counters interface {
	Peer(slot uint32) counters.Peer
}

// RouteCounters are the data plane's per-route counters: the core gives
// each direction of a route a slot of its own (route.Route.Counter), 1 to
// Slots()-1, and reads the slot's traffic as the route's.
// *counters.Routes implements it.
type RouteCounters interface {
	Route(slot uint32) counters.Route
	Slots() int
}

// creditSetter is what a DataPlane may also offer: whether frames relayed
// for a peer slot credit the peer they are handed to (relay.Tables.SetCredit,
// from ledger.View.Credits). Without it every frame credits.
type creditSetter interface {
	SetCredit(peer uint32, credits bool) error
}

// sentCounter is what a DataPlane may also offer: frames sent under a key
// slot's tx key (relay.Tables.Sent), the count a rekey is due after. Without
// it the core uses the frames relayed towards the peer.
type sentCounter interface {
	Sent(slot uint32) uint64
}

// Options configure New. Every field is required unless marked optional.
type Options struct {
	Config   Config
	Identity *identity.Identity
	// Network is the POOL network id ([node] network_id).
	Network   uint32
	Transport transport.Transport
	DataPlane DataPlane
	Counters  Counters
	// RouteCounters are the per-route counters; optional: without them
	// every route carries the shared slot 0 and RouteInfo no traffic.
	RouteCounters RouteCounters
	Ledger        *ledger.Ledger
	Clock         clock.Clock
	// Rand is crypto/rand.Reader in production.
	Rand io.Reader
	Log  zerolog.Logger
	// Ticks drives the periodic work; optional: nil means a time.Ticker of
	// Config.Tick. Tests pass a channel and a fake clock.
	Ticks <-chan time.Time
	// MTU and ConfigVersion are reported in heartbeats; optional.
	MTU           uint16
	ConfigVersion uint64
	// Peers, optional, persists the relay peers the core keeps sessions
	// with. When set, every relay whose session comes up (in either role)
	// is kept (see Keep) and put in it, and Unenroll, or the peer closing
	// the session because its operator unenrolled us, removes it.
	Peers PeerStore
	// PortNames are the data plane's port names by transport port index,
	// for the static peers' port keys; optional without static peers.
	PortNames []string
	// Resolve starts (or keeps going) the resolution of a next hop's MAC,
	// for static peers with mac = "learn"; optional.
	Resolve func(port int, ip netip.Addr) (wire.MAC, bool)
}

// PeerStore persists kept relay peers. The core calls it on its own
// goroutine, so it must not block for long (a small file written and
// synced is fine; a full disk must fail fast).
type PeerStore interface {
	Put(KeptPeer)
	Remove(identity.PublicKey)
}

// KeptPeer is what a PeerStore keeps of a relay peer: enough to enroll with
// it again after a restart.
type KeptPeer struct {
	Key identity.PublicKey
	// Address is where it was reached (as initiator) or where its session
	// came from (as responder): a relay speaks from the port it serves on.
	Address netip.AddrPort
	// Terms are the terms it announced to us last.
	Terms account.Terms
}

// Errors.
var (
	// ErrStopped: the core is not running.
	ErrStopped = errors.New("control: core stopped")
	// ErrEnrollTimeout: an outbound enrollment got no answer in time.
	ErrEnrollTimeout = errors.New("control: enrollment timed out")
	// ErrRefused: the other end refused us, or we refused its terms.
	ErrRefused = errors.New("control: enrollment refused")
	// ErrUnknownPeer: no enrolled peer has that identity.
	ErrUnknownPeer = errors.New("control: no such enrolled peer")
	// ErrUnknownRoute: no relayed route has that session id.
	ErrUnknownRoute = errors.New("control: no such route")
	// ErrRouteExists: the session id (or its reverse) is already a route or
	// a peer's session.
	ErrRouteExists = errors.New("control: session id already in use")
	// ErrInvalidRoute: a static route that makes no sense (from a peer to
	// itself, the zero session id, a negative lifetime).
	ErrInvalidRoute = errors.New("control: invalid route")
	// ErrNeedsRestart: a configuration changes settings that only take
	// effect at start; the error names them.
	ErrNeedsRestart = errors.New("control: settings that change only at restart")
)

// CLOSE reasons the core sends.
const (
	ReasonShutdown uint8 = 1
	ReasonRefused  uint8 = 2
	ReasonTimeout  uint8 = 3
	ReasonDebt     uint8 = 4
	ReasonReplaced uint8 = 5
	// ReasonUnenrolled: the operator ended the session (pool_relay unenroll).
	ReasonUnenrolled uint8 = 6
)

// inQueue bounds frames waiting for the core. Past it the reader drops (and
// counts): under an INIT flood the core must not fall behind without bound.
const inQueue = 4096

type packet struct {
	from transport.Endpoint
	data []byte
}

// Core is the control core. Run owns its state; the exported methods other
// than Run hand requests to Run's goroutine and are safe for concurrent use.
type Core struct {
	cfg   Config
	o     Options
	log   zerolog.Logger
	resp  *handshake.Responder
	start time.Time

	in    chan packet
	reqs  *owner.Queue
	done  chan struct{}
	stats counterSet

	// Owned by Run's goroutine, like cfg once Run has started. policy is
	// the enrollment policy the Responder consults (through a closure, so
	// that SetConfig can replace it).
	policy      handshake.Policy
	peers       map[identity.PublicKey]*peerState
	bySession   map[[16]byte]*peerState
	byNode      map[address.NodeID]*peerState
	byEphemeral map[[32]byte]*peerState
	routes      map[[16]byte]*routeState
	pending     map[pendingKey]*outbound
	wanted      map[identity.PublicKey]*wanted
	onward      map[uint32]*onwardReq
	nextReq     uint32
	free        []uint32
	// ctrNext is the next route counter slot never handed out, ctrFree the
	// slots of closed routes: fresh slots go first, so that a slot is
	// reused only once all have served, the longest time for frames
	// still in flight on its old route to have been counted.
	ctrNext uint32
	ctrFree []uint32
	// ctrHigh is ctrNext for other goroutines: the slots in use are below
	// it (RouteCounterSlots).
	ctrHigh   atomic.Uint32
	ledgerVer uint64
	due       []ledger.Outgoing
	states    []ledger.PeerState
	// static are the static lab peers by name, also by ledger id, and
	// the configuration's static ranges (static.go).
	static       map[string]*peerState
	staticByID   map[peer.ID]*peerState
	staticRoutes map[staticRouteKey]*routeState
	// tickErrAt and refusedLogAt rate-limit logs of lasting conditions.
	tickErrAt, refusedLogAt time.Time
	// Scratch buffers for the messages and frames the core builds.
	msg, body, frame []byte
}

// New validates o and builds the core. It does not start it: call Run.
func New(o Options) (*Core, error) {
	errs := confcheck.New("control")
	o.Config.Validate(errs)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	switch {
	case o.Identity == nil, o.Transport == nil, o.DataPlane == nil, o.Counters == nil, o.Ledger == nil, o.Clock == nil, o.Rand == nil:
		return nil, errors.New("control: Options need Identity, Transport, DataPlane, Counters, Ledger, Clock and Rand")
	case o.Network == 0:
		return nil, errors.New("control: network id 0 is reserved")
	}
	c := &Core{
		cfg: o.Config, o: o, log: o.Log, start: o.Clock.Now(),
		in: make(chan packet, inQueue), done: make(chan struct{}),
		peers: map[identity.PublicKey]*peerState{}, bySession: map[[16]byte]*peerState{},
		byNode: map[address.NodeID]*peerState{}, byEphemeral: map[[32]byte]*peerState{},
		routes: map[[16]byte]*routeState{}, pending: map[pendingKey]*outbound{}, wanted: map[identity.PublicKey]*wanted{}, onward: map[uint32]*onwardReq{},
		static: map[string]*peerState{}, staticByID: map[peer.ID]*peerState{}, staticRoutes: map[staticRouteKey]*routeState{},
		msg: make([]byte, 0, proto.MaxFrame), body: make([]byte, 0, proto.MaxFrame), frame: make([]byte, 0, proto.MaxFrame+1024),
		ctrNext: 1,
	}
	// Slot 0 is never handed out: a zero slot in a route is a bug, not a peer.
	for s := uint32(o.Config.MaxPeers); s >= 1; s-- {
		c.free = append(c.free, s)
	}
	c.policy = o.Config.Policy()
	payload, err := c.enrollment()
	if err != nil {
		return nil, err
	}
	c.resp, err = handshake.NewResponder(handshake.ResponderConfig{
		Identity: o.Identity, Network: o.Network, Policy: c.allowed, Puzzle: o.Config.Puzzle(),
		CookieBucket: o.Config.CookieBucket, Payload: payload, Clock: o.Clock, Rand: o.Rand, Log: o.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	c.reqs = owner.New(c.done, ErrStopped)
	// Run has not started: the core's state is still this goroutine's.
	if err := c.applyStatic(o.Config); err != nil {
		return nil, err
	}
	return c, nil
}

// allowed is the Responder's policy: the one SetConfig installed last. The
// Responder calls it on the core's goroutine.
func (c *Core) allowed(k identity.PublicKey) bool { return c.policy(k) }

// enrollment is the payload this relay announces in handshakes: the terms
// the ledger gives a newcomer. The peer's own terms follow in TERMS once the
// ledger knows who it is.
func (c *Core) enrollment() ([]byte, error) {
	e := proto.Enrollment{Role: proto.RoleRelay, Capabilities: proto.CapRelay, Terms: c.o.Ledger.Terms(peer.ID{})}
	return e.AppendBinary(nil)
}

// Counter returns the current value of one counter.
func (c *Core) Counter(n Counter) uint64 { return c.stats[n].Load() }

// Counters returns every counter by name.
func (c *Core) Counters() map[string]uint64 {
	m := make(map[string]uint64, numCounters)
	for i := range c.stats {
		m[Counter(i).String()] = c.stats[i].Load()
	}
	return m
}

// Difficulty is the puzzle difficulty CHALLENGEs carry now.
func (c *Core) Difficulty() uint8 {
	var d uint8
	_ = c.do(context.Background(), func() { d = c.resp.Difficulty() })
	return d
}

// Run runs the core until ctx ends or the transport fails. On the way out it
// closes every session (authenticated CLOSE) and records the disconnections.
// The caller closes the transport after Run returns, which ends the reader.
func (c *Core) Run(ctx context.Context) error {
	defer close(c.done)
	recvErr := make(chan error, 1)
	go c.read(recvErr)
	ticks := c.o.Ticks
	if ticks == nil {
		t := time.NewTicker(c.cfg.Tick)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			c.shutdown()
			return nil
		case err := <-recvErr:
			c.shutdown()
			if errors.Is(err, transport.ErrClosed) {
				return nil
			}
			return fmt.Errorf("control: transport: %w", err)
		case p := <-c.in:
			c.handle(p)
		case <-ticks:
			c.tick()
		case fn := <-c.reqs.C():
			fn()
		}
	}
}

// read moves frames from the transport to the core, dropping when the core
// is behind.
func (c *Core) read(errc chan<- error) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.o.Transport.Recv(buf)
		if err != nil {
			select {
			case errc <- err:
			case <-c.done:
			}
			return
		}
		select {
		case c.in <- packet{from: from, data: append([]byte(nil), buf[:n]...)}:
		case <-c.done:
			return
		default:
			c.stats.inc(RxQueueFull)
		}
	}
}

// do runs fn on the core's goroutine and waits for it.
func (c *Core) do(ctx context.Context, fn func()) error { return c.reqs.Do(ctx, fn) }

// post hands fn to the core without waiting (from helper goroutines).
func (c *Core) post(fn func()) { c.reqs.Post(fn) }

func (c *Core) now() time.Time { return c.o.Clock.Now() }

func (c *Core) send(to transport.Endpoint, frame []byte) {
	if err := c.o.Transport.Send(to, frame); err != nil {
		c.stats.inc(TxErrors)
	}
}

func (c *Core) shutdown() {
	c.shutdownStatic()
	for _, ps := range c.peers {
		c.drop(ps, ReasonShutdown, true, "relay shutting down")
	}
	for k, ob := range c.pending {
		ob.finish(identity.PublicKey{}, ErrStopped)
		delete(c.pending, k)
	}
}
