package main

// The traffic views: routes with their counters, the peers' link
// telemetry, and the pieces top shares with them.

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/poolrelay/poolrelay/ctl/api"
)

func init() {
	register("routes", command{summary: "list relayed routes with their traffic (--sort bytes|rate, --top N)", run: runRoutes})
}

// routeHeader is the header of the routes table; routeTraffic fills its
// last four columns.
const routeHeader = "SESSION\tFROM\tTO\tPORT\tNEXT HOP\tSTATIC\tEXPIRES\tPACKETS\tBYTES\tRATE\tLAST SEEN"

func runRoutes(e *env, args []string) error {
	const usage = "routes [--sort session|bytes|rate] [--top N] [--json] [--socket PATH]"
	fs, cf := ctlCommand(e, "routes", usage, `
List the relayed routes installed in the data plane: the hop session id, the
peer the frames are relayed for (and charged to), the next hop, the egress
port and next-hop address, whether the route is static (route add), when it
expires, and its traffic in both directions since it was installed: frames,
bytes (outer POOL bytes, what the peers are charged), the rate over the
relay's last one-second sample, and when a frame was last relayed on it.
--json adds each direction's figures (forward: the session from FROM to TO;
reverse: back).`)
	sortBy := fs.String("sort", "session", "order: session (by id), bytes (most first) or rate (busiest first)")
	top := fs.Int("top", 0, "show only the first N routes in that order (0: all)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		fs.Usage()
		return usagef("unexpected arguments %q", pos)
	}
	if err := sortRoutes(nil, *sortBy); err != nil {
		fs.Usage()
		return err
	}
	if *top < 0 {
		fs.Usage()
		return usagef("--top %d: must be 0 (all) or more", *top)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, cancel := callContext()
	defer cancel()
	rs, err := c.Routes(ctx)
	if err != nil {
		return ctlError(err)
	}
	_ = sortRoutes(rs, *sortBy)
	if *top > 0 && len(rs) > *top {
		rs = rs[:*top]
	}
	if cf.json {
		return writeJSON(e.stdout, rs)
	}
	printRoutes(e.stdout, rs)
	return nil
}

// sortRoutes orders rs by session id, bytes or rate (the largest first,
// ties by session id), or reports an unknown order.
func sortRoutes(rs []api.Route, by string) error {
	var f func(a, b api.Route) int
	switch by {
	case "session", "":
		f = func(a, b api.Route) int { return cmp.Compare(a.Session, b.Session) }
	case "bytes":
		f = func(a, b api.Route) int {
			return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(a.Session, b.Session))
		}
	case "rate":
		f = func(a, b api.Route) int {
			return cmp.Or(cmp.Compare(b.BPS, a.BPS), cmp.Compare(b.PPS, a.PPS), cmp.Compare(a.Session, b.Session))
		}
	default:
		return usagef("--sort %q: use session, bytes or rate", by)
	}
	slices.SortStableFunc(rs, f)
	return nil
}

// routeTraffic is a route's last four columns: packets, bytes, rate and
// last seen.
func routeTraffic(r api.Route) string {
	return fmt.Sprintf("%d\t%s\t%s\t%s", r.Packets, humanBytes(r.Bytes), humanRate(r.BPS, "bit/s"), lastSeen(r.LastSeen))
}

func lastSeen(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// printTelemetry prints the peers' link telemetry, each figure as this
// relay measured it and as the peer claimed it in its last heartbeat.
func printTelemetry(w io.Writer, ps []api.Peer) {
	var with []api.Peer
	for _, p := range ps {
		if p.Telemetry != nil {
			with = append(with, p)
		}
	}
	if len(with) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Link telemetry, local / claimed by the peer's last heartbeat:")
	t := newTable(w)
	fmt.Fprintln(t, "PEER\tRTT\tJITTER\tLOSS\tTHROUGHPUT\tMTU\tUPTIME\tHEARTBEAT")
	for _, p := range with {
		l, c := &p.Telemetry.Local, &p.Telemetry.Claimed
		fmt.Fprintf(t, "%s\t%s / %s\t%s / %s\t%s / %s\t%s / %s\t%s / %s\t%s / %s\t%d\n", short(p.ID),
			dur(l.RTT), dur(c.RTT), dur(l.Jitter), dur(c.Jitter), loss(l.LossPPM), loss(c.LossPPM),
			humanRate(float64(l.ThroughputBPS), "bit/s"), humanRate(float64(c.ThroughputBPS), "bit/s"),
			mtu(l.MTU), mtu(c.MTU), uptime(l.Uptime), uptime(c.Uptime), p.Telemetry.Heartbeats)
	}
	t.Flush()
}

// dur is a short duration, "-" when unknown (zero).
func dur(d api.Duration) string {
	if d <= 0 {
		return "-"
	}
	v := time.Duration(d)
	switch {
	case v < time.Millisecond:
		return v.Round(time.Microsecond).String()
	case v < time.Second:
		return v.Round(10 * time.Microsecond).String()
	}
	return v.Round(time.Millisecond).String()
}

func loss(ppm uint32) string { return fmt.Sprintf("%.2f%%", float64(ppm)/1e4) }

func mtu(m uint16) string {
	if m == 0 {
		return "-"
	}
	return fmt.Sprint(m)
}

func uptime(d api.Duration) string {
	if d <= 0 {
		return "-"
	}
	return time.Duration(d).Round(time.Second).String()
}
