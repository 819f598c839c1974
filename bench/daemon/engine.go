package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/configs"
	"github.com/poolrelay/poolrelay/control"
	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/relay"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/pool/proto"
	"github.com/poolrelay/poolrelay/sched"
)

// The engine reference: the relay's data plane alone (relay.Engine, the
// one pool_relay start runs) on the same configuration, ports, keys and
// routes, with no control core, ledger, journal or control socket. It runs
// in a process of the bench's own (the bench binary with -serve-engine),
// because a process starts the EAL once and each run needs its vhost-user
// sockets anew; it installs the static peers' keys and ranges the way the
// control core does, serves until SIGTERM or SIGINT, and prints its
// counters as one JSON line.

// engineCounts is what -serve-engine prints when it stops.
type engineCounts struct {
	Relayed uint64 `json:"relayed"`
	Dropped uint64 `json:"dropped"`
}

// serveEngine runs the engine reference on the configuration at path until
// ctx ends, then writes its counters to out; ready is called once the
// routes are in.
func serveEngine(ctx context.Context, path string, out io.Writer, ready func(), log zerolog.Logger) error {
	f, err := configs.Load(path)
	if err != nil {
		return err
	}
	eng, err := relay.Open(relay.Config{EAL: f.EAL, Ports: f.Ports, Dataplane: f.Dataplane, Sched: f.Sched,
		Peers: f.Control.MaxPeers, KeySlots: f.Control.MaxPeers}, log)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = eng.Stop()
		}
	}()
	// As the daemon does: the runtime's threads on the main core, the
	// workers pinned to theirs.
	cores, _ := dataplane.ParseCoreList(f.EAL.Cores)
	defer dpdk.TuneRuntime(len(cores))()
	if main, err := dpdk.MainCore(f.EAL); err == nil {
		if err := dpdk.PinThreads([]int{main}); err != nil {
			log.Warn().Err(err).Msg("cannot keep the runtime's threads on the main core")
		}
	}
	if err := eng.Start(); err != nil {
		return err
	}
	slots, err := installStatic(eng, f)
	if err != nil {
		return err
	}
	ready()
	<-ctx.Done()
	stopped = true
	if err := eng.Stop(); err != nil {
		return err
	}
	var c engineCounts
	cs := eng.Counters()
	for _, s := range slots {
		c.Relayed += cs.Peer(s).ForPackets
	}
	for _, n := range cs.AllDrops(nil) {
		c.Dropped += n
	}
	return json.NewEncoder(out).Encode(c)
}

// installStatic gives each static peer of f the key slot and peer slot
// i+1, its keys (seqs from the clock, as the control core starts them) and
// the class the control core publishes for a newcomer (deprioritised), and
// installs each static range and its reverses. It returns the peers'
// slots.
func installStatic(eng *relay.Engine, f *configs.File) ([]uint32, error) {
	t := eng.Tables()
	ports := eng.Ports()
	slot := map[string]uint32{}
	type hop struct {
		port int
		ip   netip.Addr
		p    control.StaticPeer
		mac  [6]byte
	}
	hops := map[string]hop{}
	var out []uint32
	for i, p := range f.Control.StaticPeers {
		s := uint32(i + 1)
		slot[p.Name] = s
		out = append(out, s)
		if p.Unauthenticated {
			if err := t.SetUnauthenticated(s); err != nil {
				return nil, err
			}
		} else {
			psk, err := hopmac.LoadPSK(p.KeyFile)
			if err != nil {
				return nil, err
			}
			rx, tx := hopmac.LabKeys(psk)
			if err := t.SetHopKeysAt(s, rx, tx, hopmac.ClockSeq(timeNow())); err != nil {
				return nil, err
			}
		}
		if err := t.SetPeer(s, sched.Deprioritised, false); err != nil {
			return nil, err
		}
		port := slices.IndexFunc(ports, func(pi relay.PortInfo) bool { return pi.Name == p.Port })
		mac, err := dataplane.ParseMAC(p.MAC)
		if port < 0 || err != nil {
			return nil, fmt.Errorf("bench: static peer %s: port %q or mac %q (\"learn\" is not supported by the engine reference)", p.Name, p.Port, p.MAC)
		}
		ip, err := netip.ParseAddr(p.IP)
		if err != nil {
			return nil, err
		}
		hops[p.Name] = hop{port: port, ip: ip, p: p, mac: mac}
	}
	build := func(in, to string) (route.Route, error) {
		h := hops[to]
		pi := ports[h.port]
		var src netip.Addr
		for _, a := range pi.Addrs {
			if a.Addr().Is4() == h.ip.Is4() {
				src = a.Addr()
				break
			}
		}
		r := route.Route{IngressPeer: slot[in], IngressKey: slot[in], EgressPeer: slot[to], EgressKey: slot[to],
			EgressPort: uint16(h.port), DstMAC: h.mac, SrcMAC: pi.MAC, SrcPort: 9254, DstPort: uint16(h.p.UDPPort), Encap: route.EncapUDP}
		if h.p.UDPPort == 0 {
			r.Encap, r.SrcPort = route.EncapIP, 0
		}
		if err := r.SetAddrs(src, h.ip); err != nil {
			return route.Route{}, err
		}
		return r, r.Validate()
	}
	var b route.Batch
	for _, sr := range f.Control.StaticRoutes {
		fwd, err1 := build(sr.From, sr.To)
		back, err2 := build(sr.To, sr.From)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		first, err := control.ParseSession(sr.Session)
		if err != nil {
			return nil, err
		}
		id := first
		for range sr.Count {
			b.Put(route.SessionID(id), fwd)
			b.Put(route.SessionID(proto.ReverseSession(id)), back)
			id = next(id)
		}
	}
	return out, t.Routes().Apply(&b)
}

// next is id plus one, as a 128-bit big-endian number (the order of a
// static range).
func next(id [16]byte) [16]byte {
	for i := 15; i >= 0; i-- {
		id[i]++
		if id[i] != 0 {
			break
		}
	}
	return id
}
