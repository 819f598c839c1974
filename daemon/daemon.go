// Package daemon is the relay process behind `pool_relay start`: it opens
// the ledger, starts the DPDK data plane, runs the control core over the data
// plane's punt and inject paths, serves the control socket and the metrics
// exporter, and stops them in the reverse order.
//
// It is the composition root: the one library that imports every tree (the
// data plane, the control core of package control, the operator surface of
// ctl/, the configuration of configs) and wires them together, so that
// those trees need not import one another. Only commands import it
// (cmd/pool_relay); the root guard tests refuse any other importer.
//
// # Order
//
// Start: identity, ledger (its journal verified: a broken chain stops the
// start), data plane engine (workers polling), neighbour resolver, the kept
// relay peers (control/peerstore), control core, control socket, metrics. Once
// the core runs it is handed the kept peers, and enrolls with each again by
// itself. Stop (SIGTERM, SIGINT or `pool_relay stop`):
// the socket stops taking commands; the control core sends an authenticated
// CLOSE to every peer and returns, while the workers still transmit; then
// the workers stop and flush, the ports and the EAL close; the ledger closes
// last, so everything the control core acknowledged is durable in it.
package daemon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/configs"
	"github.com/poolrelay/poolrelay/control"
	"github.com/poolrelay/poolrelay/control/peerstore"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/ctl/configctl"
	"github.com/poolrelay/poolrelay/ctl/metrics"
	"github.com/poolrelay/poolrelay/ctl/socket"
	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/neigh"
	"github.com/poolrelay/poolrelay/dataplane/relay"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/pool/transport"
)

// Options configure Run.
type Options struct {
	// Config is the configuration to run, already validated.
	Config *configs.File
	// ConfigText is its source text, shown by `config show`; ConfigPath is
	// where `config apply` saves a confirmed configuration (empty: applied
	// configurations are not saved, and a restart starts on Config again).
	ConfigText string
	ConfigPath string
	// Log is the root logger; each subsystem gets a child.
	Log zerolog.Logger
	// Version is reported by status.
	Version string
	// Ready, if set, is called once the socket serves, with the daemon.
	Ready func(*Daemon)
}

// ErrStopped is returned by Run when `pool_relay stop` ended it.
var ErrStopped = errors.New("daemon: stopped by request")

// Daemon is a running relay. Its methods implement api.Backend.
type Daemon struct {
	opts    Options
	log     zerolog.Logger
	started time.Time

	id      *identity.Identity
	ledger  *ledger.Ledger
	engine  *relay.Engine
	tr      *transport.DataPlane
	nb      *neighbors
	core    *control.Core
	kept    *peerstore.Store
	sock    *socket.Server
	metrics *metrics.Exporter
	configs *configctl.Manager[*running]
	// running is the configuration applied last (see applyConfig).
	runMu   sync.Mutex
	running *running

	portNames   []string
	rates       rateSampler
	routeRates  routeSampler
	metricsAddr net.Addr

	stopOnce sync.Once
	stopReq  chan struct{}
}

// running is a configuration as the daemon runs it: parsed, with its text.
type running struct {
	file *configs.File
	text string
}

// Run starts the relay and blocks until ctx ends or a stop is requested, then
// shuts everything down in order. It returns nil after a signal, ErrStopped
// after `pool_relay stop`, or the error that ended it.
func Run(ctx context.Context, o Options) (err error) {
	d := &Daemon{opts: o, log: o.Log, started: time.Now(), stopReq: make(chan struct{})}
	cleanups, err := d.start()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	if err != nil {
		return err
	}
	coreCtx, cancelCore := context.WithCancel(context.Background())
	coreDone := make(chan error, 1)
	go func() { coreDone <- d.core.Run(coreCtx) }()
	d.keepPeers()
	cleanups = append(cleanups, func() {
		cancelCore()
		if err := <-coreDone; err != nil && !errors.Is(err, context.Canceled) {
			d.log.Warn().Err(err).Msg("control core")
		}
	})
	sockDone := make(chan error, 1)
	go func() { sockDone <- d.sock.Serve() }()
	cleanups = append(cleanups, func() {
		d.sock.Close()
		<-sockDone
	})
	d.log.Info().Str("identity", d.id.PublicKey().String()).Int("ports", len(d.portNames)).
		Int("workers", d.engine.Workers()).Str("socket", d.sock.Path()).Msg("relay started")
	if o.Ready != nil {
		o.Ready(d)
	}
	select {
	case <-ctx.Done():
		d.log.Info().Msg("signal received: stopping")
		return nil
	case <-d.stopReq:
		d.log.Info().Msg("stop requested over the control socket: stopping")
		return ErrStopped
	case err := <-coreDone:
		coreDone <- err // for the cleanup above
		return fmt.Errorf("daemon: control core ended: %w", err)
	}
}

// start brings the subsystems up in order, returning their cleanups (run in
// reverse) even when it fails half way.
func (d *Daemon) start() (cleanups []func(), err error) {
	cfg := d.opts.Config
	if cfg == nil {
		return nil, errors.New("daemon: no configuration")
	}
	if err := os.MkdirAll(cfg.Node.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("daemon: data dir: %w", err)
	}
	id, created, err := identity.LoadOrCreate(cfg.Node.IdentityPath(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.id = id
	if created {
		d.log.Info().Str("path", cfg.Node.IdentityPath()).Msg("created a new identity key")
	}

	led, rec, err := ledger.Open(ledger.Options{
		Config: cfg.Ledger, DataDir: cfg.Node.DataDir, Network: cfg.Node.NetworkID, Signer: id,
		Clock: clock.System{}, Log: logging.For(d.log, "ledger"),
	})
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.ledger = led
	cleanups = append(cleanups, func() {
		if err := led.Close(); err != nil {
			d.log.Error().Err(err).Msg("ledger close")
		}
	})
	d.log.Info().Interface("recovery", rec).Msg("ledger open")
	// The configuration a run starts with is part of the record, like every
	// change to it later (config apply, confirm, rollback).
	src := d.opts.ConfigPath
	if src == "" {
		src = "the embedded default"
	}
	sum := sha256.Sum256([]byte(d.opts.ConfigText))
	if _, err := led.Journal().AppendEvent(event.Config, &event.Text{Note: "loaded: " + src + " sha256=" + hex.EncodeToString(sum[:])}); err != nil {
		return cleanups, fmt.Errorf("daemon: journal: %w", err)
	}

	// The daemon starts the EAL itself (rather than relay.Open) because it
	// registers telemetry commands on it; it closes it after the engine.
	devs := make([]string, len(cfg.Ports))
	for i, p := range cfg.Ports {
		devs[i] = p.Device
	}
	names := make([]string, len(cfg.Ports))
	for i, p := range cfg.Ports {
		names[i] = p.Name
	}
	if err := checkIfaces(names, devs); err != nil {
		return cleanups, err
	}
	if err := makeSocketDirs(devs); err != nil {
		return cleanups, err
	}
	dplog := logging.For(d.log, "dataplane")
	eal, err := dpdk.Init(cfg.EAL, devs, dplog)
	if err != nil {
		return cleanups, fmt.Errorf("daemon: %w", err)
	}
	cleanups = append(cleanups, func() {
		if err := eal.Close(); err != nil {
			d.log.Error().Err(err).Msg("EAL close")
		}
	})
	eng, err := relay.OpenOn(eal, relay.Config{
		EAL: cfg.EAL, Ports: cfg.Ports, Dataplane: cfg.Dataplane, Sched: cfg.Sched,
		Peers: cfg.Control.MaxPeers, KeySlots: cfg.Control.MaxPeers,
	}, dplog)
	if err != nil {
		return cleanups, fmt.Errorf("daemon: %w", err)
	}
	d.engine = eng
	cleanups = append(cleanups, func() {
		if err := eng.Stop(); err != nil {
			d.log.Error().Err(err).Msg("data plane stop")
		}
	})
	// The runtime's own threads (scheduler, GC, the control goroutines)
	// stay on the main core; the workers pin themselves to theirs.
	cores, _ := dataplane.ParseCoreList(cfg.EAL.Cores)
	restore := dpdk.TuneRuntime(len(cores))
	cleanups = append(cleanups, restore)
	if main, err := dpdk.MainCore(cfg.EAL); err == nil {
		if err := dpdk.PinThreads([]int{main}); err != nil {
			d.log.Warn().Err(err).Int("core", main).Msg("cannot keep the runtime's threads on the main core")
		}
	}
	if err := eng.Start(); err != nil {
		return cleanups, fmt.Errorf("daemon: %w", err)
	}
	infos := eng.Ports()
	ports := make([]transport.Port, len(infos))
	nports := make([]neigh.Port, len(infos))
	d.portNames = make([]string, len(infos))
	for i, p := range infos {
		ports[i] = transport.Port{MAC: p.MAC, Addrs: p.Addrs, UDPPort: relayUDPPort(cfg)}
		nports[i] = neigh.Port{Name: p.Name, MAC: neigh.MAC(p.MAC), Addrs: p.Addrs}
		d.portNames[i] = p.Name
	}
	d.rates.init(eng.Counters(), eng.PortStats, d.portNames, cfg.Ports)

	res, err := neigh.New(cfg.Neigh, nports, cfg.Dataplane.Neighbors, clock.System{}, logging.For(d.log, "neigh"), eng.Neighbors())
	if err != nil {
		return cleanups, fmt.Errorf("daemon: %w", err)
	}
	d.nb = newNeighbors(eng, res, eng.Neighbors(), logging.For(d.log, "neigh"))
	stopNeigh := make(chan struct{})
	go d.nb.run(stopNeigh, 100*time.Millisecond)
	cleanups = append(cleanups, func() { close(stopNeigh) })

	d.tr = transport.NewDataPlane(d.nb, transport.DataPlaneConfig{
		Ports: ports, PoolPorts: poolPorts(cfg), Resolve: d.nb.Resolve,
	})
	cleanups = append(cleanups, func() { d.tr.Close() })

	kept, err := peerstore.Open(filepath.Join(cfg.Node.DataDir, peerstore.FileName), logging.For(d.log, "peerstore"))
	if err != nil {
		return cleanups, fmt.Errorf("daemon: %w", err)
	}
	d.kept = kept
	core, err := control.New(control.Options{
		Config: cfg.Control, Identity: id, Network: cfg.Node.NetworkID, Transport: d.tr,
		DataPlane: eng.Tables(), Counters: eng.Counters(), RouteCounters: eng.RouteCounters(), Ledger: led, Clock: clock.System{},
		Rand: rand.Reader, Log: logging.For(d.log, "control"), MTU: mtu(cfg), ConfigVersion: led.Version(),
		Peers:     kept,
		PortNames: d.portNames, Resolve: d.nb.Resolve,
	})
	if err != nil {
		return cleanups, fmt.Errorf("daemon: %w", err)
	}
	d.core = core
	d.routeRates.init(eng.RouteCounters(), core.RouteCounterSlots)
	if err := registerTelemetry(eal, eng, core, dplog); err != nil {
		return cleanups, err
	}

	d.running = &running{file: cfg, text: d.opts.ConfigText}
	d.configs, err = configctl.New(configctl.Options[*running]{
		Initial: d.running,
		Apply:   d.applyConfig,
		Persist: d.persistConfig,
		Journal: configctl.LedgerJournal{J: led.Journal()},
		Clock:   configctl.SystemClock{},
		Log:     logging.For(d.log, "config"),
	})
	if err != nil {
		return cleanups, fmt.Errorf("daemon: %w", err)
	}
	cleanups = append(cleanups, d.configs.Close)

	if cfg.Ctl.MetricsListen != "" {
		m, err := metrics.New(metrics.Source{Stats: d.Stats, Peers: d.Peers, Score: d.Score, Control: d.controlMetrics, Routes: d.Routes},
			metrics.Options{Log: logging.For(d.log, "metrics"), Runtime: true, TopRoutes: cfg.Ctl.MetricsTopRoutes})
		if err != nil {
			return cleanups, fmt.Errorf("daemon: %w", err)
		}
		addr, err := m.Start(cfg.Ctl.MetricsListen)
		if err != nil {
			return cleanups, fmt.Errorf("daemon: metrics: %w", err)
		}
		d.metrics, d.metricsAddr = m, addr
		cleanups = append(cleanups, func() { m.Close() })
		d.log.Info().Stringer("addr", addr).Msg("metrics served")
	}

	sock, err := socket.Listen(socket.Options{Path: cfg.Ctl.Socket, Backend: d, Log: logging.For(d.log, "ctl")})
	if err != nil {
		return cleanups, fmt.Errorf("daemon: %w", err)
	}
	d.sock = sock
	stopRates := make(chan struct{})
	go d.rates.run(stopRates, time.Second)
	go d.routeRates.run(stopRates, time.Second)
	cleanups = append(cleanups, func() { close(stopRates) })
	return cleanups, nil
}

// MetricsAddr is where the Prometheus exporter listens (nil when off): the
// configured address with the port the kernel chose for ":0".
func (d *Daemon) MetricsAddr() net.Addr { return d.metricsAddr }

// SocketPath is the control socket's path.
func (d *Daemon) SocketPath() string { return d.sock.Path() }

// requestStop ends Run; the caller's response goes out first because Run
// closes the socket gracefully.
func (d *Daemon) requestStop() {
	d.stopOnce.Do(func() { close(d.stopReq) })
}

// relayUDPPort is the UDP port the relay speaks from: 9254 when configured
// (the relay port), else the first configured POOL port.
func relayUDPPort(cfg *configs.File) uint16 {
	for _, p := range cfg.Dataplane.UDPPorts {
		if p == 9254 {
			return 9254
		}
	}
	if len(cfg.Dataplane.UDPPorts) > 0 {
		return uint16(cfg.Dataplane.UDPPorts[0])
	}
	return 9254
}

func poolPorts(cfg *configs.File) []uint16 {
	out := make([]uint16, 0, len(cfg.Dataplane.UDPPorts))
	for _, p := range cfg.Dataplane.UDPPorts {
		out = append(out, uint16(p))
	}
	return out
}

// mtu is the smallest configured port MTU, reported in heartbeats.
func mtu(cfg *configs.File) uint16 {
	m := 0
	for _, p := range cfg.Ports {
		if p.MTU > 0 && (m == 0 || p.MTU < m) {
			m = p.MTU
		}
	}
	if m == 0 {
		m = 1500
	}
	return uint16(m)
}

// endpointFor picks the data plane port whose on-link prefix holds ip (or,
// failing that, the first port with an address of ip's family) for an
// enrollment this relay starts.
func (d *Daemon) endpointFor(ap netip.AddrPort) (transport.Endpoint, bool) {
	ip := ap.Addr().Unmap()
	infos := d.engine.Ports()
	best := -1
	for i, p := range infos {
		for _, pfx := range p.Addrs {
			if pfx.Masked().Contains(ip) {
				return transport.Endpoint{Port: i, Addr: ap}, true
			}
			if best < 0 && pfx.Addr().Is4() == ip.Is4() {
				best = i
			}
		}
	}
	if best < 0 {
		return transport.Endpoint{}, false
	}
	return transport.Endpoint{Port: best, Addr: ap}, true
}

// keepPeers hands the control core the relay peers persisted by the last
// run: it enrolls with each again (jittered, with backoff) and keeps doing
// so whenever a session goes. A peer whose address no port can reach is
// logged and left in the file.
func (d *Daemon) keepPeers() {
	for _, p := range d.kept.Peers() {
		ep, ok := d.endpointFor(p.Address)
		if !ok {
			d.log.Warn().Str("peer", p.Key.String()).Stringer("addr", p.Address).Msg("kept peer not reachable from any port; not reconnecting")
			continue
		}
		if err := d.core.Keep(context.Background(), control.Want{Key: p.Key, Endpoint: ep}); err != nil {
			d.log.Warn().Err(err).Msg("reconnecting kept peers")
			return
		}
	}
	if n := len(d.kept.Peers()); n > 0 {
		d.log.Info().Int("peers", n).Msg("reconnecting to kept relay peers")
	}
}
