package main

// pool_relay top: a live view of the relay, refreshed in place like top(1)
// or vppctl show runtime, over the control socket with read-only commands
// only (status, stats, routes, peers), so an operator in the socket's
// group needs no more rights than for pool_relay status.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/ctl/metrics"
)

func init() {
	register("top", command{summary: "live view of port rates, class shares, busiest routes and peers (q quits)", run: runTop})
}

// topSnapshot is what one refresh of top reads: the answers of four
// read-only commands, taken one after the other.
type topSnapshot struct {
	At     time.Time   `json:"at"`
	Status api.Status  `json:"status"`
	Stats  api.Stats   `json:"stats"`
	Routes []api.Route `json:"routes"`
	Peers  []api.Peer  `json:"peers"`
}

// Terminal control sequences (VT100/xterm): the alternate screen keeps the
// operator's scrollback intact, and the cursor is hidden while drawing.
const (
	enterScreen = "\x1b[?1049h\x1b[?25l"
	leaveScreen = "\x1b[?25h\x1b[?1049l"
	homeClear   = "\x1b[H\x1b[2J"
)

func runTop(e *env, args []string) error {
	const usage = "top [--interval D] [--routes N] [--once] [--json] [--socket PATH]"
	fs, cf := ctlCommand(e, "top", usage, `
Show the relay live, refreshed every --interval in place: each port's frame
and bit rates each way, and the relay's drop rate (all ports together); each
egress scheduler's class shares (the fraction of its bytes each class sent
over the last second); the --routes busiest routes by rate with their
frames, bytes and last seen; and every peer with its state, class, score
and link telemetry (RTT, jitter and loss measured here, throughput here and
as the peer claims it).

Press q (or Ctrl-C) to quit. When stdout is not a terminal (a pipe, a file,
a script), or with --once, top prints one snapshot and exits; --json prints
that snapshot as JSON. It only reads (status, stats, routes, peers), so any
member of the control socket's group can run it.`)
	interval := fs.Duration("interval", time.Second, "time between refreshes (at least 100ms)")
	nroutes := fs.Int("routes", 10, "number of busiest routes shown (0: none)")
	once := fs.Bool("once", false, "print one snapshot and exit, even on a terminal")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		fs.Usage()
		return usagef("unexpected arguments %q", pos)
	case *interval < 100*time.Millisecond:
		fs.Usage()
		return usagef("--interval %v: use at least 100ms", *interval)
	case *nroutes < 0:
		fs.Usage()
		return usagef("--routes %d: must be 0 or more", *nroutes)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	out, tty := e.stdout.(*os.File)
	tty = tty && term.IsTerminal(int(out.Fd()))
	if !tty || *once || cf.json {
		ctx, cancel := callContext()
		defer cancel()
		s, err := readTop(ctx, c)
		if err != nil {
			return ctlError(err)
		}
		if cf.json {
			return writeJSON(e.stdout, s)
		}
		renderTop(e.stdout, s, *nroutes, 0)
		return nil
	}
	return liveTop(out, c, *interval, *nroutes)
}

// topNow is the snapshot's clock (a test fixes it).
var topNow = time.Now

// readTop takes one snapshot.
func readTop(ctx context.Context, c api.Backend) (topSnapshot, error) {
	s := topSnapshot{At: topNow().UTC()}
	var err error
	if s.Status, err = c.Status(ctx); err != nil {
		return s, err
	}
	if s.Stats, err = c.Stats(ctx); err != nil {
		return s, err
	}
	if s.Routes, err = c.Routes(ctx); err != nil {
		return s, err
	}
	s.Peers, err = c.Peers(ctx)
	return s, err
}

// liveTop redraws a snapshot every interval on the terminal out until q,
// Ctrl-C or a signal. Keys are read from the controlling terminal on stdin
// in raw mode (no echo, no line buffering), restored on the way out.
func liveTop(out *os.File, c api.Backend, interval time.Duration, nroutes int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	quit := make(chan struct{})
	in := int(os.Stdin.Fd())
	if term.IsTerminal(in) {
		old, err := term.MakeRaw(in)
		if err != nil {
			return fmt.Errorf("top: %w", err)
		}
		defer term.Restore(in, old)
		go readKeys(os.Stdin, quit)
	}
	fmt.Fprint(out, enterScreen)
	defer fmt.Fprint(out, leaveScreen)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		width, _, err := term.GetSize(int(out.Fd()))
		if err != nil {
			width = 0
		}
		rctx, cancel := context.WithTimeout(ctx, max(interval, 2*time.Second))
		s, err := readTop(rctx, c)
		cancel()
		var b strings.Builder
		b.WriteString(homeClear)
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(&b, "pool_relay top: %v (retrying every %v; q quits)\n", ctlError(err), interval)
		} else if err == nil {
			renderTop(&b, s, nroutes, width)
			b.WriteString("\nq quits\n")
		}
		// Raw mode: a newline only moves down; the carriage return
		// goes back to the first column.
		io.WriteString(out, strings.ReplaceAll(b.String(), "\n", "\r\n"))
		select {
		case <-quit:
			return nil
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// readKeys closes quit at q, Q, Ctrl-C (raw mode delivers it as a byte,
// not a signal) or the end of input.
func readKeys(r io.Reader, quit chan<- struct{}) {
	defer close(quit)
	b := make([]byte, 16)
	for {
		n, err := r.Read(b)
		for _, k := range b[:n] {
			if k == 'q' || k == 'Q' || k == 3 {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// renderTop draws a snapshot; width (0: unknown) cuts lines that would wrap
// on the terminal.
func renderTop(w io.Writer, s topSnapshot, nroutes, width int) {
	var b strings.Builder
	st := &s.Status
	fmt.Fprintf(&b, "pool_relay top  %s  relay %s  score %.2f (%s)  peers %d  routes %d\n",
		s.At.Format(time.RFC3339), short(st.Identity), st.Score, st.Class, st.ActivePeers, st.Routes)

	b.WriteString("\nPorts\n")
	t := newTable(&b)
	fmt.Fprintln(t, "PORT\tLINK\tRX\tTX\tRX RATE\tTX RATE")
	for _, p := range st.Ports {
		link := "down"
		if p.Up {
			link = "up"
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, link, humanRate(p.RxPPS, "pps"), humanRate(p.TxPPS, "pps"),
			humanRate(p.RxBPS, "bit/s"), humanRate(p.TxBPS, "bit/s"))
	}
	t.Flush()
	if len(st.Ports) > 0 {
		b.WriteString(droppedLine(st.Ports) + "\n")
	}

	if len(s.Stats.Queues) > 0 {
		b.WriteString("\nClass shares (last second, by port and TX queue)\n")
		t = newTable(&b)
		fmt.Fprintln(t, "PORT\tQUEUE\tCONTROL\tPRIORITY\tNORMAL\tDEPRIORITISED\tDROPPED")
		type key struct {
			port  string
			queue int
		}
		var order []key
		share := map[key]map[string]float64{}
		dropped := map[key]uint64{}
		for _, q := range s.Stats.Queues {
			k := key{q.Port, q.Queue}
			if share[k] == nil {
				share[k] = map[string]float64{}
				order = append(order, k)
			}
			share[k][q.Class] = q.Share
			dropped[k] += q.Dropped
		}
		for _, k := range order {
			m := share[k]
			fmt.Fprintf(t, "%s\t%d\t%.1f%%\t%.1f%%\t%.1f%%\t%.1f%%\t%d\n", k.port, k.queue,
				100*m["control"], 100*m["priority"], 100*m["normal"], 100*m["deprioritised"], dropped[k])
		}
		t.Flush()
	}

	if nroutes > 0 {
		busiest := metrics.Busiest(s.Routes, nroutes)
		fmt.Fprintf(&b, "\nBusiest routes (%d of %d, by rate)\n", len(busiest), len(s.Routes))
		if len(busiest) > 0 {
			t = newTable(&b)
			fmt.Fprintln(t, "SESSION\tFROM\tTO\tRATE\tPPS\tPACKETS\tBYTES\tLAST SEEN")
			for _, r := range busiest {
				fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Session, short(r.From), short(r.To),
					humanRate(r.BPS, "bit/s"), humanRate(r.PPS, "pps"), r.Packets, humanBytes(r.Bytes), ago(s.At, r.LastSeen))
			}
			t.Flush()
		}
	}

	fmt.Fprintf(&b, "\nPeers (%d)\n", len(s.Peers))
	if len(s.Peers) > 0 {
		t = newTable(&b)
		fmt.Fprintln(t, "PEER\tSTATE\tCLASS\tSCORE\tRTT\tJITTER\tLOSS\tTHROUGHPUT (LOCAL / CLAIMED)\tRELAYED FOR\tRELAYED BY")
		for _, p := range s.Peers {
			rtt, jit, lossS, thr := "-", "-", "-", "-"
			if tel := p.Telemetry; tel != nil {
				rtt, jit, lossS = dur(tel.Local.RTT), dur(tel.Local.Jitter), loss(tel.Local.LossPPM)
				thr = humanRate(float64(tel.Local.ThroughputBPS), "bit/s") + " / " + humanRate(float64(tel.Claimed.ThroughputBPS), "bit/s")
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\n", peerCell(p), peerState(p), p.Class, p.Score,
				rtt, jit, lossS, thr, humanBytes(p.RelayedForBytes), humanBytes(p.RelayedByBytes))
		}
		t.Flush()
	}
	text := b.String()
	if width > 0 {
		lines := strings.Split(text, "\n")
		for i, l := range lines {
			if r := []rune(l); len(r) > width {
				lines[i] = string(r[:width])
			}
		}
		text = strings.Join(lines, "\n")
	}
	io.WriteString(w, text)
}

// peerState is a peer's session state as peers shows it.
func peerState(p api.Peer) string {
	switch {
	case p.Choked:
		return "choked"
	case p.Connected:
		return "up"
	case p.Reconnecting:
		return "reconnecting"
	}
	return "down"
}

// ago is how long before now t was, "never" for zero.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String() + " ago"
}
