package daemon

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/poolrelay/poolrelay/control"
	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/ctl/metrics"
	"github.com/poolrelay/poolrelay/dataplane/relay"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/ledger/journal"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/ledger/score"
	"github.com/poolrelay/poolrelay/sched"
)

var _ api.Backend = (*Daemon)(nil)

// Status implements api.Backend.
func (d *Daemon) Status(ctx context.Context) (api.Status, error) {
	t := d.ledger.Totals()
	s := api.Status{
		Version:    d.opts.Version,
		Identity:   d.id.PublicKey().String(),
		Network:    d.opts.Config.Node.NetworkID,
		Started:    d.started.UTC(),
		Score:      t.Score,
		Class:      score.Of(t.Score).String(),
		Relayed:    t.Relayed,
		Consumed:   t.Consumed,
		ControlIn:  t.ControlIn,
		ControlOut: t.ControlOut,
		Attested:   d.attested(),
		Routes:     d.engine.Tables().Routes().Len(),
		Ports:      d.rates.snapshot(),
	}
	for _, v := range d.ledger.Peers() {
		if v.Account.Connected {
			s.ActivePeers++
		}
	}
	h := d.ledger.Journal().Head()
	s.Journal = api.JournalHead{Records: h.Index, Head: hex.EncodeToString(h.Hash[:]), State: "ok"}
	jh := d.ledger.Journal().Health()
	s.Journal.NotWritten = jh.Lost + jh.Refused
	if jh.Degraded {
		since := jh.Since.UTC()
		s.Journal.State, s.Journal.Error, s.Journal.Since = "degraded", jh.Reason, &since
	}
	if p, ok := d.configs.Pending(); ok {
		s.PendingConfig = &api.PendingConfig{Applied: p.Applied.UTC(), Deadline: p.Deadline.UTC(), SHA256: p.Note}
	}
	if infos, err := d.core.Peers(ctx); err == nil {
		for _, pi := range infos {
			if pi.Static != "" {
				s.StaticPeers = append(s.StaticPeers, pi.Static)
				if pi.Unauthenticated {
					s.Unauthenticated = append(s.Unauthenticated, pi.Static)
				}
			}
		}
		sort.Strings(s.StaticPeers)
		sort.Strings(s.Unauthenticated)
	}
	return s, nil
}

// staticAuth is a static peer's Auth as the API shows it.
func staticAuth(pi control.PeerInfo) string {
	switch {
	case pi.Static == "":
		return ""
	case pi.Unauthenticated:
		return "none"
	}
	return "hop"
}

// Peers implements api.Backend: every account, with the session's address
// and RTT for the connected ones.
func (d *Daemon) Peers(ctx context.Context) ([]api.Peer, error) {
	infos, err := d.core.Peers(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	byID := make(map[peer.ID]control.PeerInfo, len(infos))
	for _, pi := range infos {
		if id, err := peer.FromPublicKey(pi.Key.Ed25519()); err == nil {
			byID[id] = pi
		}
	}
	rc, err := d.core.Reconnecting(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	again := make(map[peer.ID]control.Reconnect, len(rc))
	for _, r := range rc {
		if id, err := peer.FromPublicKey(r.Key.Ed25519()); err == nil {
			again[id] = r
		}
	}
	views := d.ledger.Peers()
	out := make([]api.Peer, 0, len(views))
	for _, v := range views {
		var addr string
		var rtt time.Duration
		var static, auth string
		pi, up := byID[v.Account.Peer]
		if up {
			addr = pi.Endpoint.Addr.String()
			rtt = pi.Measured.RTT
			static, auth = pi.Static, staticAuth(pi)
		}
		p := api.PeerFromView(v, addr, rtt)
		// A static lab peer has no session, so no heartbeats: no telemetry.
		if up && static == "" {
			p.Telemetry = &api.PeerTelemetry{Local: api.LinkFromTelemetry(pi.Measured), Claimed: api.LinkFromTelemetry(pi.Telemetry),
				Heartbeats: pi.HeartbeatsSeen}
			// The local queue depth is no measure of the link.
			p.Telemetry.Local.QueueDepth = 0
		}
		if r, ok := again[v.Account.Peer]; ok && !p.Connected {
			p.Reconnecting, p.Address = true, r.Endpoint.Addr.String()
		}
		p.Static, p.Auth = static, auth
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Stats implements api.Backend.
func (d *Daemon) Stats(ctx context.Context) (api.Stats, error) {
	cs := d.engine.Counters()
	var st api.Stats
	// The ports' own counters: what the device received and sent, the
	// control core's frames included, as dpdk-telemetry's /ethdev/stats
	// shows them.
	ports, err := d.engine.PortStats(nil)
	if err != nil {
		return api.Stats{}, api.Errorf(api.CodeUnavailable, "stats: %v", err)
	}
	for i, p := range ports {
		name := fmt.Sprintf("port%d", i)
		if i < len(d.portNames) {
			name = d.portNames[i]
		}
		st.Ports = append(st.Ports, api.PortStats{Name: name, RxPackets: p.RxPackets, RxBytes: p.RxBytes,
			TxPackets: p.TxPackets, TxBytes: p.TxBytes, Missed: p.RxMissed})
	}
	for r, n := range cs.AllDrops(nil) {
		if n != 0 {
			st.Drops = append(st.Drops, api.DropStats{Reason: relay.Reason(r).String(), Packets: n})
		}
	}
	for e, n := range cs.AllEvents(nil) {
		if n != 0 && e < int(relay.NumEvents) {
			if st.Events == nil {
				st.Events = make(map[string]uint64)
			}
			st.Events[relay.Event(e).String()] = n
		}
	}
	for _, q := range d.engine.EgressStats() {
		port := fmt.Sprintf("port%d", q.Port)
		if q.Port < len(d.portNames) {
			port = d.portNames[q.Port]
		}
		for c, cs := range q.Class {
			st.Queues = append(st.Queues, api.QueueStats{
				Port: port, Queue: q.Queue, Class: sched.Class(c).String(),
				SentPackets: cs.SentPkts, SentBytes: cs.SentBytes, Dropped: cs.DroppedPkts,
				Depth: cs.Depth, Share: cs.Share,
			})
		}
	}
	st.Control = d.core.Counters()
	if infos, err := d.core.Peers(ctx); err == nil {
		for _, pi := range infos {
			if pi.Static != "" {
				st.StaticPeers = append(st.StaticPeers, api.StaticPeerStats{Name: pi.Static, Auth: staticAuth(pi),
					RelayedForPackets: pi.Relayed.ForPackets, RelayedForBytes: pi.Relayed.ForBytes,
					RelayedToPackets: pi.Relayed.ToPackets, RelayedToBytes: pi.Relayed.ToBytes})
			}
		}
		sort.Slice(st.StaticPeers, func(i, j int) bool { return st.StaticPeers[i].Name < st.StaticPeers[j].Name })
	}
	// The journal's health beside the core's counters: stats shows the
	// ones not zero, so a degraded journal stands out.
	jh := d.ledger.Journal().Health()
	st.Control["journal_degraded"] = 0
	if jh.Degraded {
		st.Control["journal_degraded"] = 1
	}
	st.Control["journal_degradations"] = jh.Degradations
	st.Control["journal_records_not_written"] = jh.Lost + jh.Refused
	return st, nil
}

// Routes implements api.Backend.
func (d *Daemon) Routes(ctx context.Context) ([]api.Route, error) {
	infos, err := d.core.Routes(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]api.Route, 0, len(infos))
	for _, ri := range infos {
		out = append(out, d.apiRoute(ri))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Session < out[j].Session })
	return out, nil
}

// apiRoute is a route as the CLI shows it, with its egress from the table.
func (d *Daemon) apiRoute(ri control.RouteInfo) api.Route {
	r := api.Route{Session: hex.EncodeToString(ri.Session[:]), From: peerString(ri.From.Ed25519()), To: peerString(ri.To.Ed25519()), Static: ri.Static,
		Config: ri.Config, Sessions: ri.Sessions}
	if ri.FromName != "" {
		r.From = ri.FromName
	}
	if ri.ToName != "" {
		r.To = ri.ToName
	}
	r.Forward = d.routeRates.traffic(ri.Counters[0], ri.Traffic[0], ri.Installed)
	r.Reverse = d.routeRates.traffic(ri.Counters[1], ri.Traffic[1], ri.Installed)
	r.Packets, r.Bytes = r.Forward.Packets+r.Reverse.Packets, r.Forward.Bytes+r.Reverse.Bytes
	r.PPS, r.BPS = r.Forward.PPS+r.Reverse.PPS, r.Forward.BPS+r.Reverse.BPS
	r.LastSeen = r.Forward.LastSeen
	if r.Reverse.LastSeen.After(r.LastSeen) {
		r.LastSeen = r.Reverse.LastSeen
	}
	if !ri.Expires.IsZero() {
		r.Expires = ri.Expires.UTC()
	}
	if rt, ok := d.engine.Tables().Routes().Lookup(route.SessionID(ri.Session)); ok {
		if int(rt.EgressPort) < len(d.portNames) {
			r.Port = d.portNames[rt.EgressPort]
		}
		r.NextHop = netip.AddrPortFrom(rt.DstAddr(), rt.DstPort).String()
	}
	return r
}

// RouteAdd implements api.Backend: an operator's static route between two
// enrolled peers; port and next hop come from the to-peer's session, and a
// --port or --next-hop given must agree with it.
func (d *Daemon) RouteAdd(ctx context.Context, spec api.RouteSpec) (api.Route, error) {
	session, err := control.ParseSession(spec.Session)
	if err != nil {
		return api.Route{}, api.Errorf(api.CodeInvalidArgument, "route add: %v", err)
	}
	from, err := d.findPeer(ctx, spec.From)
	if err != nil {
		return api.Route{}, err
	}
	to, err := d.findPeer(ctx, spec.To)
	if err != nil {
		return api.Route{}, err
	}
	if spec.Port != "" && (to.Endpoint.Port >= len(d.portNames) || d.portNames[to.Endpoint.Port] != spec.Port) {
		on := "another port"
		if to.Endpoint.Port < len(d.portNames) {
			on = d.portNames[to.Endpoint.Port]
		}
		return api.Route{}, api.Errorf(api.CodeInvalidArgument, "route add: peer %s is reached on %s, not %s", spec.To, on, spec.Port)
	}
	if spec.NextHop != "" && spec.NextHop != to.Endpoint.Addr.String() && spec.NextHop != to.Endpoint.Addr.Addr().String() {
		return api.Route{}, api.Errorf(api.CodeInvalidArgument, "route add: peer %s is at %s, not %s", spec.To, to.Endpoint.Addr, spec.NextHop)
	}
	ri, err := d.core.AddRoute(ctx, control.StaticRoute{Session: session, From: from.Key, To: to.Key, Lifetime: time.Duration(spec.TTL)})
	if err != nil {
		return api.Route{}, controlError("route add", err)
	}
	return d.apiRoute(ri), nil
}

// RouteDel implements api.Backend.
func (d *Daemon) RouteDel(ctx context.Context, session string) error {
	id, err := control.ParseSession(session)
	if err != nil {
		return api.Errorf(api.CodeInvalidArgument, "route del: %v", err)
	}
	return controlError("route del", d.core.CloseRoute(ctx, id))
}

// findPeer resolves a peer named by its id as peers prints it (the whole
// hex identity or any prefix of it, case-insensitive), its identity key as
// the handshake names it, or its address (IP or IP:PORT), among the enrolled
// ones and the kept ones being reconnected. A prefix shared by several peers is refused with the candidates.
func (d *Daemon) findPeer(ctx context.Context, name string) (control.PeerInfo, error) {
	infos, err := d.core.Peers(ctx)
	if err != nil {
		return control.PeerInfo{}, unavailable(err)
	}
	// A kept peer being reconnected can be named too (unenroll one that is
	// gone for good).
	rc, err := d.core.Reconnecting(ctx)
	if err != nil {
		return control.PeerInfo{}, unavailable(err)
	}
	for _, r := range rc {
		if !slices.ContainsFunc(infos, func(pi control.PeerInfo) bool { return pi.Key == r.Key }) {
			infos = append(infos, control.PeerInfo{Key: r.Key, Endpoint: r.Endpoint})
		}
	}
	pi, err := resolvePeer(infos, name)
	if err != nil {
		return control.PeerInfo{}, err
	}
	return pi, nil
}

// resolvePeer is findPeer's matching, apart for tests.
func resolvePeer(infos []control.PeerInfo, name string) (control.PeerInfo, error) {
	for _, pi := range infos {
		if pi.Key.String() == name || pi.Endpoint.Addr.String() == name || pi.Endpoint.Addr.Addr().String() == name {
			return pi, nil
		}
	}
	prefix := strings.ToLower(name)
	if prefix == "" || strings.Trim(prefix, "0123456789abcdef") != "" {
		return control.PeerInfo{}, api.Errorf(api.CodeNotFound, "no enrolled peer %q (give its id, a prefix of it, or its address)", name)
	}
	var found []control.PeerInfo
	var ids []string
	for _, pi := range infos {
		if id := peerString(pi.Key.Ed25519()); strings.HasPrefix(id, prefix) {
			found = append(found, pi)
			ids = append(ids, id)
		}
	}
	switch len(found) {
	case 0:
		return control.PeerInfo{}, api.Errorf(api.CodeNotFound, "no enrolled peer %q", name)
	case 1:
		return found[0], nil
	}
	sort.Strings(ids)
	return control.PeerInfo{}, api.Errorf(api.CodeInvalidArgument, "peer %q is ambiguous: it begins %d enrolled peers' ids: %s", name, len(ids), strings.Join(ids, ", "))
}

// controlError maps the control core's sentinel errors to API codes.
func controlError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, control.ErrUnknownPeer), errors.Is(err, control.ErrUnknownRoute):
		return api.Errorf(api.CodeNotFound, "%s: %v", op, err)
	case errors.Is(err, control.ErrRouteExists):
		return api.Errorf(api.CodeConflict, "%s: %v", op, err)
	case errors.Is(err, control.ErrInvalidRoute):
		return api.Errorf(api.CodeInvalidArgument, "%s: %v", op, err)
	}
	return unavailable(err)
}

// Score implements api.Backend.
func (d *Daemon) Score(ctx context.Context) (api.Score, error) {
	t := d.ledger.Totals()
	s := api.Score{Own: t.Score, Class: score.Of(t.Score).String(), Relayed: t.Relayed, Consumed: t.Consumed,
		PriorBytes: d.opts.Config.Ledger.ScorePriorBytes, Attested: d.attested()}
	for _, v := range d.ledger.Peers() {
		a := &v.Account
		s.Peers = append(s.Peers, api.PeerScore{
			ID: a.Peer.String(), Score: v.Score, Class: v.Class.String(),
			RelayedBy: a.Usage.RelayedBy.Bytes, RelayedFor: a.Usage.RelayedFor.Bytes,
		})
	}
	sort.Slice(s.Peers, func(i, j int) bool { return s.Peers[i].ID < s.Peers[j].ID })
	return s, nil
}

// attested is what the peers' signed heartbeats say of the relay.
func (d *Daemon) attested() api.Attested {
	a := d.ledger.Attested()
	return api.Attested{Score: a.Score, Class: score.Of(a.Score).String(), Relayed: a.Relayed, Consumed: a.Consumed, ReportingPeers: a.Peers}
}

// Cheques implements api.Backend.
func (d *Daemon) Cheques(ctx context.Context) ([]api.Cheque, error) {
	es := d.ledger.Cheques()
	out := make([]api.Cheque, 0, len(es))
	for _, e := range es {
		out = append(out, api.ChequeFromEntry(e))
	}
	return out, nil
}

// Enroll implements api.Backend. The address is the other relay's IP, with
// its port (POOL's relay port 9254 when omitted), optionally preceded by the
// POOL address it must prove: "pool1-...@192.0.2.7:9254".
func (d *Daemon) Enroll(ctx context.Context, addr string) (api.Peer, error) {
	server, ap, err := parseEnrollAddress(addr)
	if err != nil {
		return api.Peer{}, err
	}
	ep, ok := d.endpointFor(ap)
	if !ok {
		return api.Peer{}, api.Errorf(api.CodeInvalidArgument, "enroll: no port has an address of %s's family", ap.Addr())
	}
	key, err := d.core.Enroll(ctx, ep, server)
	if err != nil {
		// The control core joins the refusal and its reason (errors.Join,
		// one per line); the CLI prints one line.
		return api.Peer{}, api.Errorf(api.CodeUnavailable, "enroll: %s", strings.ReplaceAll(err.Error(), "\n", ": "))
	}
	id, err := peer.FromPublicKey(key.Ed25519())
	if err != nil {
		return api.Peer{}, err
	}
	v, err := d.ledger.Peer(id)
	if err != nil {
		return api.Peer{}, err
	}
	return api.PeerFromView(v, ap.String(), 0), nil
}

// parseEnrollAddress splits enroll's argument, [POOL-ADDRESS@]IP[:PORT]
// (an IPv6 address with a port in brackets), into the POOL address the
// peer must prove (zero when not given) and where it listens, port 9254
// (wire.RelayPort) when none is given.
func parseEnrollAddress(s string) (address.Address, netip.AddrPort, error) {
	var server address.Address
	addr := s
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		a, err := address.Parse(addr[:at])
		if err != nil {
			return server, netip.AddrPort{}, api.Errorf(api.CodeInvalidArgument, "enroll: %v", err)
		}
		server, addr = a, addr[at+1:]
	}
	bare := addr
	if len(bare) > 2 && bare[0] == '[' && bare[len(bare)-1] == ']' {
		bare = bare[1 : len(bare)-1] // [2001:db8::7] without a port
	}
	// Brackets only around an IPv6 address; no zone (a link-local peer's
	// interface is the port's, not the operator's to name).
	if ip, err := netip.ParseAddr(bare); err == nil && ip.Zone() == "" && (bare == addr || ip.Is6()) {
		return server, netip.AddrPortFrom(ip, wire.RelayPort), nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		return server, netip.AddrPort{}, api.Errorf(api.CodeInvalidArgument,
			"enroll: %q is not IP or IP:PORT (optionally POOL-ADDRESS@ before it; a host name is not resolved)", addr)
	}
	return server, ap, nil
}

// Unenroll implements api.Backend: CLOSE to the peer, its routes and keys
// removed, and it leaves the persistent set of kept peers (no reconnection,
// after a restart either); its account, debt included, stays.
func (d *Daemon) Unenroll(ctx context.Context, p string) (api.Unenrolled, error) {
	pi, err := d.findPeer(ctx, p)
	if err != nil {
		return api.Unenrolled{}, err
	}
	u := api.Unenrolled{Peer: pi.Key.String()}
	if pi.Endpoint.Addr.IsValid() {
		u.Address = pi.Endpoint.Addr.String()
	}
	return u, controlError("unenroll", d.core.Unenroll(ctx, pi.Key))
}

// Stop implements api.Backend.
func (d *Daemon) Stop(ctx context.Context) error {
	d.requestStop()
	return nil
}

// Trace implements api.Backend: up to Count frames received on the port,
// as they arrived (before the worker touched them), cut to Snaplen.
func (d *Daemon) Trace(ctx context.Context, a api.TraceArgs) (api.Trace, error) {
	port := -1
	for i, n := range d.portNames {
		if n == a.Port {
			port = i
		}
	}
	if port < 0 {
		return api.Trace{}, api.Errorf(api.CodeNotFound, "trace: no port %q (ports: %s)", a.Port, strings.Join(d.portNames, ", "))
	}
	snap := a.Snaplen
	if snap == 0 {
		snap = 65535
	}
	if a.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(a.Timeout))
		defer cancel()
	}
	fs, err := d.engine.Trace(ctx, port, a.Count, snap)
	switch {
	case errors.Is(err, relay.ErrTraceBusy):
		return api.Trace{}, api.Errorf(api.CodeConflict, "trace: %v", err)
	case errors.Is(err, relay.ErrTraceArgs):
		return api.Trace{}, api.Errorf(api.CodeInvalidArgument, "trace: %v", err)
	case err != nil:
		return api.Trace{}, err
	}
	t := api.Trace{Port: a.Port, LinkType: 1, Frames: make([]api.TraceFrame, len(fs))} // 1: LINKTYPE_ETHERNET
	for i, f := range fs {
		t.Frames[i] = api.TraceFrame{Time: f.Time.UTC(), Length: f.Len, Data: f.Data}
	}
	return t, nil
}

// JournalVerify implements api.Backend: the whole chain, read beside the
// running writer.
func (d *Daemon) JournalVerify(ctx context.Context) (api.JournalSummary, error) {
	j := d.ledger.Journal()
	sum, err := journal.Verify(j.Path(), nil)
	if err != nil {
		return api.JournalSummary{}, api.Errorf(api.CodeConflict, "journal: %v", err)
	}
	out := api.JournalSummary{Path: j.Path(), Records: sum.Records, Head: hex.EncodeToString(sum.Head[:])}
	if sum.Torn != nil {
		out.Torn = fmt.Sprint(*sum.Torn)
	}
	return out, nil
}

// controlMetrics feeds the exporter the control core's counters.
func (d *Daemon) controlMetrics(ctx context.Context) (metrics.Control, error) {
	st := d.core.Stats()
	jh := d.ledger.Journal().Health()
	return metrics.Control{
		HandshakesOK:        st.HandshakesCompleted,
		HandshakesFailed:    st.HandshakesFailed,
		HeartbeatsSent:      st.HeartbeatsSent,
		HeartbeatsReceived:  st.HeartbeatsReceived,
		HeartbeatMismatches: st.HeartbeatMismatches,
		ChequesIssued:       st.ChequesSent,
		ChequesReceived:     st.ChequesReceived,
		ChequesRejected:     st.ChequesRejected,
		JournalRecords:      d.ledger.Journal().Head().Index,
		JournalDegraded:     jh.Degraded,
		JournalNotWritten:   jh.Lost + jh.Refused,
		ChequesDeferred:     d.core.Counter(control.ChequesDeferred),
	}, nil
}

func peerString(k []byte) string {
	id, err := peer.FromPublicKey(k)
	if err != nil {
		return hex.EncodeToString(k)
	}
	return id.String()
}

// unavailable maps a control core that is stopping to CodeUnavailable.
func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return api.Errorf(api.CodeUnavailable, "control core: %v", err)
	}
	return err
}
