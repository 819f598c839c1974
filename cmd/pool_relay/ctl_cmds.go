package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/poolrelay/poolrelay/ctl/api"
)

func init() {
	register("status", command{summary: "show the relay's score, traffic totals, peers and port rates", run: runStatus})
	register("peers", command{summary: "list peers with class, balance and traffic", run: runPeers})
	register("stats", command{summary: "counters per port, queue, class and drop reason", run: runStats})
	register("score", command{summary: "the relay's generosity score and its peers'", run: runScore})
	register("route", command{summary: "add or delete a static route (route add|del)", run: runRoute, subs: []string{"add", "del"}})
	register("enroll", command{summary: "enroll with a peer relay (enroll [POOL-ADDRESS@]IP[:PORT])", run: runEnroll})
	register("unenroll", command{summary: "close a peer's session (unenroll PEER)", run: runUnenroll})
	register("stop", command{summary: "stop the running relay", run: runStop})
}

// oneCall runs a command that makes one call to the relay with its nargs
// positional arguments: it parses flags, calls call and prints the result
// with human, or as JSON with --json.
func oneCall[R any](e *env, args []string, name, usage, help string, nargs int,
	call func(c api.Backend, ctx context.Context, pos []string) (R, error), human func(w io.Writer, r R, pos []string)) error {
	fs, cf := ctlCommand(e, name, usage, help)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != nargs {
		fs.Usage()
		if nargs == 0 {
			return usagef("unexpected arguments %q", pos)
		}
		return usagef("expected: %s", usage)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, cancel := callContext()
	defer cancel()
	r, err := call(c, ctx, pos)
	if err != nil {
		return ctlError(err)
	}
	if cf.json {
		return writeJSON(e.stdout, r)
	}
	human(e.stdout, r, pos)
	return nil
}

// simple runs a command that takes no arguments: call is the Backend
// method (a method expression such as api.Backend.Peers), human the
// table printer used without --json.
func simple[R any](e *env, args []string, name, help string, call func(c api.Backend, ctx context.Context) (R, error), human func(w io.Writer, r R)) error {
	return oneCall(e, args, name, name+" [--json] [--socket PATH]", help, 0,
		func(c api.Backend, ctx context.Context, _ []string) (R, error) { return call(c, ctx) },
		func(w io.Writer, r R, _ []string) { human(w, r) })
}

func runStatus(e *env, args []string) error {
	return simple(e, args, "status", `
Show the relay at a glance: its generosity score and the class it earns, the
bytes it relayed for others and consumed from them, its control traffic, what
its peers attest, connected peers, routes, the journal head, a configuration
awaiting confirmation, and the current rate of every port (frames the control
core sends included).`+scoreHelp,
		api.Backend.Status, printStatus)
}

// label pads a status label to the seed's column.
func label(w io.Writer, name, format string, args ...any) {
	fmt.Fprintf(w, "%-22s%s\n", name+":", fmt.Sprintf(format, args...))
}

func printStatus(w io.Writer, s api.Status) {
	label(w, "Generosity score", "%.2f (%s)", s.Score, classMeaning(s.Class))
	label(w, "Total relayed", "%s", humanBytes(s.Relayed))
	label(w, "Total consumed", "%s", humanBytes(s.Consumed))
	label(w, "Control traffic", "%s in, %s out (in no total, no score)", humanBytes(s.ControlIn), humanBytes(s.ControlOut))
	a := s.Attested
	label(w, "Attested by peers", "%.2f (%s) from %d reporting %s: relayed %s, consumed %s", a.Score, classMeaning(a.Class),
		a.ReportingPeers, plural(a.ReportingPeers, "peer", "peers"), humanBytes(a.Relayed), humanBytes(a.Consumed))
	label(w, "Active peers", "%d", s.ActivePeers)
	label(w, "Routes", "%d", s.Routes)
	label(w, "Identity", "%s", s.Identity)
	label(w, "Network", "%d", s.Network)
	label(w, "Version", "%s, started %s", s.Version, s.Started.UTC().Format(time.RFC3339))
	label(w, "Journal", "%d records, head %s", s.Journal.Records, short12(s.Journal.Head))
	if s.Journal.State == "degraded" {
		since := ""
		if s.Journal.Since != nil {
			since = " since " + s.Journal.Since.UTC().Format(time.RFC3339)
		}
		label(w, "Journal state", "DEGRADED%s: %s; %d records not written; no cheque or route is acknowledged until it writes again (retried every second)",
			since, s.Journal.Error, s.Journal.NotWritten)
	}
	if p := s.PendingConfig; p != nil {
		label(w, "Pending config", "rolled back at %s unless confirmed (pool_relay config confirm)", p.Deadline.UTC().Format(time.RFC3339))
	}
	if len(s.StaticPeers) > 0 {
		label(w, "Static peers", "%s", strings.Join(s.StaticPeers, ", "))
	}
	if len(s.Unauthenticated) > 0 {
		label(w, "UNAUTHENTICATED", "%s: relayed without hop authentication (lab replay only)", strings.Join(s.Unauthenticated, ", "))
	}
	if len(s.Ports) == 0 {
		return
	}
	fmt.Fprintln(w)
	t := newTable(w)
	fmt.Fprintln(t, "PORT\tDEVICE\tLINK\tRX\tTX\tRX RATE\tTX RATE")
	for _, p := range s.Ports {
		link := "down"
		if p.Up {
			link = "up"
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Device, link,
			humanRate(p.RxPPS, "pps"), humanRate(p.TxPPS, "pps"),
			humanRate(p.RxBPS, "bit/s"), humanRate(p.TxBPS, "bit/s"))
	}
	t.Flush()
	fmt.Fprintln(w, droppedLine(s.Ports))
}

// droppedLine is the relay's drop rate, printed once under the port table:
// the workers count drops by reason, not by port, so every PortRate carries
// the same total and a per-port column would repeat it on every row (a
// port receiving 5 Mpps would show 10 Mpps dropped on two ports).
func droppedLine(ports []api.PortRate) string {
	var pps float64
	for _, p := range ports {
		pps = max(pps, p.DropPPS)
	}
	return fmt.Sprintf("Dropped: %s (all ports; by reason: pool_relay stats)", humanRate(pps, "pps"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func short12(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func runPeers(e *env, args []string) error {
	return simple(e, args, "peers", `
List every peer the relay has an account with: its session state (up, down,
reconnecting: a relay peer kept across restarts whose session is being
enrolled again, or choked for debt), the class and score this relay
measured for it, the SWAP balance (positive: the peer owes us) and OF WHICH
CONTROL, the part of it that control frames made (handshakes, heartbeats,
routes, cheques, priced by [ledger] control_price_per_packet and
control_price_per_byte: the peer pays for the control frames it sends, we
pay for ours; an end node announces no prices, so it pays for its
heartbeats and we pay nothing for ours), the bytes relayed for it and by
it, and the cumulative cheque totals each way. A static lab peer
([[control.static_peer]]) is listed as static:NAME. For peers with a
session (not static ones), a second table gives the link telemetry from
the heartbeats, each figure as this relay measured it beside what the
peer's last signed heartbeat claims: RTT, jitter, loss, throughput, MTU and
uptime (here: the session's age). --json gives full peer ids and every
counter.`,
		api.Backend.Peers, printPeers)
}

func printPeers(w io.Writer, ps []api.Peer) {
	if len(ps) == 0 {
		fmt.Fprintln(w, "no peers")
		return
	}
	t := newTable(w)
	fmt.Fprintln(t, "PEER\tADDRESS\tSTATE\tCLASS\tSCORE\tBALANCE\tOF WHICH CONTROL\tRELAYED FOR\tRELAYED BY\tCHEQUES IN\tCHEQUES OUT\tRTT")
	for _, p := range ps {
		state := "down"
		switch {
		case p.Choked:
			state = "choked"
		case p.Connected:
			state = "up"
		case p.Reconnecting:
			state = "reconnecting"
		}
		rtt := "-"
		if p.RTT > 0 {
			rtt = time.Duration(p.RTT).Round(10 * time.Microsecond).String()
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%.2f\t%d\t%d\t%s\t%s\t%d\t%d\t%s\n", peerCell(p), p.Address, state, p.Class, p.Score,
			p.Balance, p.ControlCharged, humanBytes(p.RelayedForBytes), humanBytes(p.RelayedByBytes), p.ChequesIn, p.ChequesOut, rtt)
	}
	t.Flush()
	printTelemetry(w, ps)
}

// peerCell names a peer in the peers table: its short id, or a static lab
// peer's name, marked when it is unauthenticated.
func peerCell(p api.Peer) string {
	switch {
	case p.Static == "":
		return short(p.ID)
	case p.Auth == "none":
		return "static:" + p.Static + " (UNAUTHENTICATED)"
	}
	return "static:" + p.Static
}

func runStats(e *env, args []string) error {
	return simple(e, args, "stats", `
Print the data plane's cumulative counters: per port as the device counts
them (frames and bytes each way, the control core's own frames included,
as dpdk-telemetry's /ethdev/stats shows; frames the NIC missed), per egress
class queue (sent, dropped at a full queue, depth, and the class's share of
the scheduler's bytes; its SENT BYTES are wire bytes, each frame plus 24
bytes of preamble, gap and FCS, so above the port's TX BYTES), frames
dropped per reason, data plane events that are not drops (checksum_completed:
relayed frames whose UDP checksum the sender left to offload, completed by
the relay), and the control core's counters that are not zero
(handshakes, heartbeats accepted, rejected and mismatched, routes, cheques).`,
		api.Backend.Stats, printStats)
}

func printStats(w io.Writer, s api.Stats) {
	t := newTable(w)
	fmt.Fprintln(t, "PORT\tRX PACKETS\tRX BYTES\tTX PACKETS\tTX BYTES\tMISSED")
	for _, p := range s.Ports {
		fmt.Fprintf(t, "%s\t%d\t%d\t%d\t%d\t%d\n", p.Name, p.RxPackets, p.RxBytes, p.TxPackets, p.TxBytes, p.Missed)
	}
	t.Flush()
	if len(s.Queues) > 0 {
		fmt.Fprintln(w)
		t = newTable(w)
		fmt.Fprintln(t, "PORT\tQUEUE\tCLASS\tSENT PACKETS\tSENT BYTES\tDROPPED\tDEPTH\tSHARE")
		for _, q := range s.Queues {
			fmt.Fprintf(t, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%.1f%%\n", q.Port, q.Queue, q.Class, q.SentPackets, q.SentBytes, q.Dropped, q.Depth, 100*q.Share)
		}
		t.Flush()
	}
	if len(s.Drops) > 0 {
		fmt.Fprintln(w)
		t = newTable(w)
		fmt.Fprintln(t, "DROP REASON\tPACKETS")
		for _, d := range s.Drops {
			fmt.Fprintf(t, "%s\t%d\n", d.Reason, d.Packets)
		}
		t.Flush()
	}
	if len(s.StaticPeers) > 0 {
		fmt.Fprintln(w)
		t = newTable(w)
		fmt.Fprintln(t, "STATIC PEER\tAUTH\tRELAYED FOR PACKETS\tRELAYED FOR BYTES\tRELAYED TO PACKETS\tRELAYED TO BYTES")
		for _, p := range s.StaticPeers {
			fmt.Fprintf(t, "%s\t%s\t%d\t%d\t%d\t%d\n", p.Name, p.Auth, p.RelayedForPackets, p.RelayedForBytes, p.RelayedToPackets, p.RelayedToBytes)
		}
		t.Flush()
	}
	if len(s.Events) > 0 {
		evs := make([]string, 0, len(s.Events))
		for n := range s.Events {
			evs = append(evs, n)
		}
		sort.Strings(evs)
		fmt.Fprintln(w)
		t = newTable(w)
		fmt.Fprintln(t, "DATA PLANE EVENT\tCOUNT")
		for _, n := range evs {
			fmt.Fprintf(t, "%s\t%d\n", n, s.Events[n])
		}
		t.Flush()
	}
	names := make([]string, 0, len(s.Control))
	for n, v := range s.Control {
		if v != 0 {
			names = append(names, n)
		}
	}
	if len(names) > 0 {
		sort.Strings(names)
		fmt.Fprintln(w)
		t = newTable(w)
		fmt.Fprintln(t, "CONTROL\tCOUNT")
		for _, n := range names {
			fmt.Fprintf(t, "%s\t%d\n", n, s.Control[n])
		}
		t.Flush()
	}
}

func runScore(e *env, args []string) error {
	return simple(e, args, "score", `
Show the relay's own generosity score with the totals behind it, what its
peers attest, and every peer's score and class as this relay measured them.
A peer's score is the same ratio for the peer (bytes it relayed for us over
bytes we relayed for it); its class is re-decided every class_tick and moves
only class_hysteresis_percent past a class boundary.

A peer's score follows its traffic with this relay, not the clock: each byte
exchanged either way ages the earlier ones, so the score weighs roughly the
last score_half_volume bytes (256 MiB by default). A peer that goes idle
keeps its score and class: a contributor is not demoted for resting, a heavy
consumer is not forgiven for waiting. A new identity starts at
newcomer_score (0.25, a heavy consumer) and rises only by relaying.

Frames relayed on behalf of a peer that has relayed less than
score_prior_bytes for us are charged as usual but do not count as the next
hop's contribution: identities without standing cannot pass standing to
each other (a partner pumping frames through us buys a colluder nothing).
Our own end nodes' frames always count. A heavy consumer that has relayed
less than score_prior_bytes for us has its frames leave with the POOL
header's deprioritised mark, and every relay after us queues them
deprioritised too.

In the incentive simulation (make sim, 10,000 relays, every egress at 1/1.5
of its demand) these two rules took a freerider's goodput from 0.912 to 0.581
of an honest relay's (0.5 was the aim: the README's Incentives section says
why it falls short) and a colluding pair's gain from trading from 0.110 to
-0.006.`+scoreHelp,
		api.Backend.Score, printScore)
}

func printScore(w io.Writer, s api.Score) {
	label(w, "Generosity score", "%.2f (%s)", s.Own, classMeaning(s.Class))
	label(w, "Total relayed", "%s", humanBytes(s.Relayed))
	label(w, "Total consumed", "%s", humanBytes(s.Consumed))
	label(w, "Computed as", "(%d + %d) / (%d + %d) bytes", s.Relayed, s.PriorBytes, s.Consumed, s.PriorBytes)
	a := s.Attested
	label(w, "Attested score", "%.2f (%s)", a.Score, classMeaning(a.Class))
	label(w, "Attested relayed", "%s", humanBytes(a.Relayed))
	label(w, "Attested consumed", "%s", humanBytes(a.Consumed))
	label(w, "Reporting peers", "%d", a.ReportingPeers)
	if len(s.Peers) == 0 {
		return
	}
	fmt.Fprintln(w)
	t := newTable(w)
	fmt.Fprintln(t, "PEER\tSCORE\tCLASS\tRELAYED BY\tRELAYED FOR")
	for _, p := range s.Peers {
		fmt.Fprintf(t, "%s\t%.2f\t%s\t%s\t%s\n", short(p.ID), p.Score, p.Class, humanBytes(p.RelayedBy), humanBytes(p.RelayedFor))
	}
	t.Flush()
}

func printRoutes(w io.Writer, rs []api.Route) {
	if len(rs) == 0 {
		fmt.Fprintln(w, "no routes")
		return
	}
	t := newTable(w)
	fmt.Fprintln(t, routeHeader)
	for _, r := range rs {
		printRoute(t, r)
	}
	t.Flush()
}

func printRoute(w io.Writer, r api.Route) {
	exp := "never"
	if !r.Expires.IsZero() {
		exp = r.Expires.UTC().Format(time.RFC3339)
	}
	static := "no"
	switch {
	case r.Config:
		static = fmt.Sprintf("config, %d sessions", max(r.Sessions, 1))
	case r.Static:
		static = "yes"
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Session, short(r.From), short(r.To), r.Port, r.NextHop, static, exp, routeTraffic(r))
}

func runRoute(e *env, args []string) error {
	const (
		addUsage = "route add SESSION --from PEER --to PEER --port NAME [--next-hop IP] [--ttl D] [--json] [--socket PATH]"
		delUsage = "route del SESSION [--json] [--socket PATH]"
		usage    = "route add SESSION --from PEER --to PEER --port NAME [--next-hop IP] [--ttl D] | route del SESSION"
		addHelp  = `
Add a static relayed route between two enrolled peers. SESSION is the hop
session id (32 hex digits); frames arriving with it are relayed for peer
--from (which pays) to peer --to, and frames of the reverse session back.
The port and next hop are --to's session endpoint; --port (and --next-hop,
when given) must agree with it. PEER is an id as pool_relay peers prints
it, any prefix of it only one enrolled peer has (an ambiguous one is refused
with the candidates), or the peer's address. A route added with --ttl is
removed after that long; any static route goes when either peer leaves.
Routes of enrolled peers are managed by the relay itself; static routes are
for tests and fixed topologies.`
		delHelp = `
Delete a relayed route, static or opened by a peer, named by its session id
(32 hex digits, as pool_relay routes prints it) or its reverse's: both
directions go, the close is journalled as ROUTE_CLOSE, and both peers are
told.`
	)
	u, help := usage, addHelp+"\n"+delHelp
	sub := ""
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			sub = a
			break
		}
	}
	switch sub {
	case "add":
		u, help = addUsage, addHelp
	case "del":
		u, help = delUsage, delHelp
	}
	fs, cf := ctlCommand(e, "route", u, help)
	var spec api.RouteSpec
	var ttl time.Duration
	if sub != "del" {
		fs.StringVar(&spec.From, "from", "", "peer the frames are relayed for (its id, any unambiguous prefix of it, or its address)")
		fs.StringVar(&spec.To, "to", "", "next-hop peer (id, prefix or address, as --from)")
		fs.StringVar(&spec.Port, "port", "", "egress port name")
		fs.StringVar(&spec.NextHop, "next-hop", "", "next hop's IP address (default: --to's)")
		fs.DurationVar(&ttl, "ttl", 0, "remove the route after this long (0: never)")
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || (pos[0] != "add" && pos[0] != "del") {
		fs.Usage()
		return usagef("expected: %s", u)
	}
	spec.Session, spec.TTL = pos[1], api.Duration(ttl)
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, cancel := callContext()
	defer cancel()
	if pos[0] == "del" {
		if err := c.RouteDel(ctx, spec.Session); err != nil {
			return ctlError(err)
		}
		if cf.json {
			return writeJSON(e.stdout, struct {
				Session string `json:"session"`
				Deleted bool   `json:"deleted"`
			}{spec.Session, true})
		}
		fmt.Fprintf(e.stdout, "route %s deleted\n", spec.Session)
		return nil
	}
	if spec.From == "" || spec.To == "" || spec.Port == "" {
		fs.Usage()
		return usagef("route add needs --from, --to and --port")
	}
	r, err := c.RouteAdd(ctx, spec)
	if err != nil {
		return ctlError(err)
	}
	if cf.json {
		return writeJSON(e.stdout, r)
	}
	t := newTable(e.stdout)
	fmt.Fprintln(t, routeHeader)
	printRoute(t, r)
	return t.Flush()
}

func runEnroll(e *env, args []string) error {
	return oneCall(e, args, "enroll", "enroll [POOL-ADDRESS@]IP[:PORT] [--json] [--socket PATH]", `
Enroll with the peer relay at IP:PORT (port 9254, POOL's relay port, when
omitted; an IPv6 address with a port in brackets, [2001:db8::7]:9254; no
host names): run the authenticated handshake, exchange SWAP terms, and open
an account. With POOL-ADDRESS@ before it (the relay's address, as
pool_relay identity prints it there), the peer must prove that identity or
the enrollment fails. The command returns once the peer is enrolled or the
handshake failed (after [control] enroll_timeout). Re-enrolling a known peer
keeps its account and any debt.`, 1,
		func(c api.Backend, ctx context.Context, pos []string) (api.Peer, error) { return c.Enroll(ctx, pos[0]) },
		func(w io.Writer, p api.Peer, _ []string) {
			fmt.Fprintf(w, "enrolled %s at %s (%s, score %.2f)\n", p.ID, p.Address, p.Class, p.Score)
		})
}

func runUnenroll(e *env, args []string) error {
	return oneCall(e, args, "unenroll", "unenroll PEER [--json] [--socket PATH]", `
Close the session with PEER and remove its routes: the peer is sent an
authenticated CLOSE and drops the session at once. PEER is its id as
pool_relay peers prints it, any prefix of the id that only one enrolled
peer has (a prefix several share is refused, listing them), or its address
(IP or IP:PORT). A relay peer also leaves the set the relay reconnects to
after a restart (peers.json in the data directory), also one shown as
reconnecting. The account stays: a debt survives unenrolling and
reconnecting.`, 1,
		func(c api.Backend, ctx context.Context, pos []string) (api.Unenrolled, error) {
			return c.Unenroll(ctx, pos[0])
		},
		func(w io.Writer, u api.Unenrolled, _ []string) {
			if u.Address != "" {
				fmt.Fprintf(w, "unenrolled %s at %s\n", u.Peer, u.Address)
				return
			}
			fmt.Fprintf(w, "unenrolled %s\n", u.Peer)
		})
}

func runStop(e *env, args []string) error {
	type result struct {
		Stopping bool `json:"stopping"`
	}
	return simple(e, args, "stop", `
Stop the running relay: it sends every peer an authenticated CLOSE, which
the data plane puts on the wire before its ports stop, so the peers drop
the sessions at once instead of after peer_timeout; then it stops the data
plane, checkpoints the ledger, makes the journal durable and exits. The
command returns once the relay has accepted the request; the relay's
process exits shortly after.`,
		func(c api.Backend, ctx context.Context) (result, error) {
			return result{Stopping: true}, c.Stop(ctx)
		}, func(w io.Writer, _ result) { fmt.Fprintln(w, "stopping") })
}
