package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/poolrelay/poolrelay/internal/lab"
)

func run(ctx context.Context, o options, out io.Writer) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("root is needed: the demo makes network namespaces and runs DPDK")
	}
	logw := o.log
	if logw == nil {
		logw = io.Discard
	}
	// The veths keep the kernel's checksum offloads on, as a lab set up by
	// hand has them: the end nodes' UDP checksums reach r1 and r3 left to
	// offload, and the relays complete them (checksum_completed in stats).
	l, err := lab.New(lab.Config{
		Base: "demo", Work: "pool_demo-", What: "demo", Bin: o.bin, Net: 77, Relays: 3,
		ChecksumOffload: true, Keep: o.keep, Log: o.log, Poll: 500 * time.Millisecond,
	}, out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("cleanup: %w", cerr)
		}
	}()
	relays := l.Relays

	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }

	// Topology (built by lab.New).
	step("network namespaces and veth pairs (prefix %s)", l.Env.Prefix())

	// Relays.
	for _, r := range relays {
		step("starting relay %s (DPDK net_%s on %s and %s, --no-huge)", r.Name, o.vdev, r.Ports[0], r.Ports[1])
		if err := l.Start(r, relayConfig(r, o.vdev)); err != nil {
			return err
		}
	}
	for _, r := range relays {
		if err := l.WaitUp(ctx, r); err != nil {
			return err
		}
		if err := l.Identify(ctx, r); err != nil {
			return err
		}
		// The peer id first, as the PEER columns of the tables print it
		// (its first 8 hex digits); the POOL address carries a hash of
		// the key instead, which no table shows.
		fmt.Fprintf(out, "    %s is peer %s, POOL address %s\n", r.Name, r.ID, r.Addr)
	}

	// Relays enroll with their neighbour towards B, over the data plane.
	for i := 0; i+1 < len(relays); i++ {
		r, next := relays[i], relays[i+1]
		step("%s enrolls with %s at %s", r.Name, next.Name, next.Endpoint(0))
		if err := l.Enroll(ctx, r, next); err != nil {
			return err
		}
	}

	// End nodes.
	nodeA, err := l.NewNode(ctx, "a")
	if err != nil {
		return err
	}
	nodeB, err := l.NewNode(ctx, "b")
	if err != nil {
		return err
	}
	step("end node B (peer %s, %s) enrolls with r3 and waits for traffic", nodeB.Identity, nodeB.Address)
	procB, err := l.StartSink(ctx, relays[2], nodeB)
	if err != nil {
		return err
	}
	step("end node A enrolls with r1, opens a route through r1, r2, r3 to B and sends %d frames of %d bytes", o.frames, o.size)
	fmt.Fprintf(out, "    A is peer %s\n", nodeA.Identity)
	var outA bytes.Buffer
	cmdA := l.A.Command(ctx, l.NodeBin, l.SenderArgs(nodeA, nodeB.Address, relays[1:], o.frames, o.size, o.rate)...)
	cmdA.Stdout = &outA
	cmdA.Stderr = &lab.PrefixWriter{W: logw, Prefix: "a: "}
	cmdA.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmdA.Start(); err != nil {
		return fmt.Errorf("end node A: %w", err)
	}
	doneA := make(chan error, 1)
	go func() { doneA <- cmdA.Wait() }()
	// What an operator sees on r1 while A's frames flow: the routes by
	// rate and one snapshot of pool_relay top, printed once A is done.
	live := make(chan string, 1)
	go func() { live <- whileSending(ctx, l, relays[0], o) }()

	// While A's route is up, forge frames on it: A's route id, a MAC made
	// up. They must reach no one and be charged to no one.
	spoofed, spoofErr := spoof(ctx, l, nodeA.Identity, doneA)
	if err := <-doneA; err != nil {
		return fmt.Errorf("end node A: %w\n%s", err, outA.String())
	}
	fmt.Fprintf(out, "    A: %s", outA.String())
	if spoofErr != nil {
		return spoofErr
	}
	step("r1 while A was sending: pool_relay routes --sort rate, top --once")
	fmt.Fprint(out, lab.Indent(<-live))
	step("%d frames forged with A's route id and a bad MAC sent to r1 from A's subnet", spoofed)

	// Give the relays' control cores a few ticks: counters to the ledgers,
	// heartbeats exchanged and cross-checked, cheques sent and acknowledged.
	step("waiting for heartbeats and settlement")
	settled := l.WaitFor(ctx, 30*time.Second, relays[0].Proc, func() error {
		for _, r := range relays[:2] {
			s, err := l.CLI(ctx, "cheques", "--socket", r.Socket, "--json")
			if err != nil {
				return err
			}
			if !strings.Contains(s, `"direction":"issued"`) && !strings.Contains(s, `"direction": "issued"`) {
				return fmt.Errorf("%s has issued no cheque yet", r.Name)
			}
		}
		return nil
	})
	// Two more heartbeat rounds, so each relay's own score (what its peers'
	// signed counters say of it) covers the whole run.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2500 * time.Millisecond):
	}

	// The relays' own counts: forged frames dropped as bad_mac at r1, and
	// every heartbeat cross-check agreeing.
	var stats [3]lab.Stats
	for i, r := range relays {
		if stats[i], err = l.Stats(ctx, r); err != nil {
			return err
		}
	}

	for _, r := range relays {
		step("%s: pool_relay status, peers, routes, cheques", r.Name)
		for _, args := range [][]string{{"status"}, {"peers"}, {"routes"}, {"cheques"}} {
			s, err := l.CLI(ctx, append(args, "--socket", r.Socket)...)
			if err != nil {
				fmt.Fprintf(out, "    %s: %v\n", strings.Join(args, " "), err)
				continue
			}
			fmt.Fprint(out, lab.Indent(s))
		}
		if o.jsonDir != "" {
			if err := saveJSON(ctx, l, r, o.jsonDir); err != nil {
				return err
			}
		}
	}
	step("stopping B, then the relays (r1 with pool_relay stop, watched from r2), and verifying their journals")
	if err := procB.Stop(10 * time.Second); err != nil {
		fmt.Fprintf(out, "warning: end node B: %v\n", err)
	}
	fmt.Fprintf(out, "    B: %s\n", lastLine(procB.Output(), "received="))
	seen, err := stopSeen(ctx, l, relays[0], relays[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "    r2 saw r1 leave %d ms after pool_relay stop returned (stop_seen_ms=%d)\n", seen.Milliseconds(), seen.Milliseconds())
	for _, r := range relays {
		if err := r.Proc.Stop(20 * time.Second); err != nil {
			return fmt.Errorf("%s: %w\n%s", r.Name, err, r.Proc.Tail())
		}
	}
	var failed []string
	for _, r := range relays {
		s, err := l.CLI(ctx, "journal", "verify", "--config", r.Config)
		fmt.Fprintf(out, "    %s:\n%s", r.Name, lab.Indent(lab.Indent(s)))
		if err != nil {
			failed = append(failed, r.Name)
		}
	}
	received := lastNumber(procB.Output(), "received=")
	sent := lastNumber(outA.String(), "sent=")
	var accepted, mismatched uint64
	for i, st := range stats {
		accepted += st.Control["heartbeats_accepted"]
		mismatched += st.Control["heartbeat_mismatch"]
		fmt.Fprintf(out, "    %s: heartbeats accepted %d, mismatched %d; checksums completed %d; drops %v\n", relays[i].Name,
			st.Control["heartbeats_accepted"], st.Control["heartbeat_mismatch"], st.Events["checksum_completed"], st.DropMap())
	}
	forgedDropped := stats[0].Drop("bad_mac")
	fmt.Fprintf(out, "demo: sent=%d received=%d forged=%d forged_dropped=%d heartbeats=%d mismatches=%d cheques=%v journals_ok=%v\n",
		sent, received, spoofed, forgedDropped, accepted, mismatched, settled == nil, len(failed) == 0)
	switch {
	case forgedDropped != uint64(spoofed):
		return fmt.Errorf("r1 dropped %d frames as bad_mac, %d were forged", forgedDropped, spoofed)
	case received != sent:
		return fmt.Errorf("A sent %d frames, B received %d", sent, received)
	case accepted == 0 || mismatched != 0:
		return fmt.Errorf("heartbeat cross-checks: %d accepted, %d mismatched", accepted, mismatched)
	case len(failed) > 0:
		return fmt.Errorf("journal verification failed on %v", failed)
	case received <= 0:
		return errors.New("no frame reached B")
	case settled != nil:
		return fmt.Errorf("no settlement: %w", settled)
	}
	return nil
}

// stopSeen runs pool_relay stop on r and measures how long after it
// returned watcher's peers table shows r down: the CLOSE r sends on the way
// out makes it at once, where a lost CLOSE would take peer_timeout.
func stopSeen(ctx context.Context, l *lab.Lab, r, watcher *lab.Relay) (time.Duration, error) {
	if _, err := l.CLI(ctx, "stop", "--socket", r.Socket); err != nil {
		return 0, err
	}
	start := time.Now()
	for time.Since(start) < 10*time.Second {
		ps, err := l.Peers(ctx, watcher)
		if err != nil {
			return 0, err
		}
		for _, p := range ps {
			if p.ID == r.ID && !p.Connected {
				return time.Since(start), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	st, _ := l.CLI(ctx, "stats", "--socket", watcher.Socket)
	return 0, fmt.Errorf("%s still shows %s up 10 s after pool_relay stop; its stats:\n%s", watcher.Name, r.Name, st)
}

// saveJSON writes the relay's pool_relay status --json and peers --json
// output, exactly as printed, to dir/NAME.status.json and dir/NAME.peers.json.
func saveJSON(ctx context.Context, l *lab.Lab, r *lab.Relay, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--json-dir: %w", err)
	}
	for _, what := range []string{"status", "peers"} {
		s, err := l.CLI(ctx, what, "--json", "--socket", r.Socket)
		if err != nil {
			return fmt.Errorf("%s %s --json: %w", r.Name, what, err)
		}
		if err := os.WriteFile(filepath.Join(dir, r.Name+"."+what+".json"), []byte(s), 0o644); err != nil {
			return fmt.Errorf("--json-dir: %w", err)
		}
	}
	return nil
}

// relayConfig is the TOML of one demo relay: small thresholds so that the
// demo's traffic reaches early settlement, frequent heartbeats and class
// ticks so that the results show within seconds, and an idle back-off so
// three relays polling on one core leave it to the others when idle.
func relayConfig(r *lab.Relay, vdev string) string {
	return r.BaseConfig("pool_demo", vdev) + `metrics_listen = "127.0.0.1:9464"

[control]
heartbeat_interval = "1s"
tick = "500ms"

` + lab.Settlement + `cheque_retry_max = "2s"
score_half_volume = 4194304
class_tick = "1s"
score_prior_bytes = 65536
`
}

// whileSending waits until A has sent for a while (half its frames at its
// rate, at least 1.5 s: the relay's rates are one-second samples), then
// returns r1's routes by rate and a snapshot of top.
func whileSending(ctx context.Context, l *lab.Lab, r *lab.Relay, o options) string {
	wait := max(time.Duration(o.frames/2)*time.Second/time.Duration(max(o.rate, 1)), 1500*time.Millisecond)
	select {
	case <-ctx.Done():
		return ctx.Err().Error() + "\n"
	case <-time.After(wait):
	}
	var b strings.Builder
	for _, args := range [][]string{{"routes", "--sort", "rate"}, {"top", "--once"}} {
		s, err := l.CLI(ctx, append(args, "--socket", r.Socket)...)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", strings.Join(args, " "), err)
			continue
		}
		b.WriteString(s)
		b.WriteString("\n")
	}
	return b.String()
}

func lastLine(s, marker string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], marker) {
			return strings.TrimSpace(lines[i])
		}
	}
	return "(no " + strings.TrimSuffix(marker, "=") + " line)"
}

var numberAfter = map[string]*regexp.Regexp{}

func lastNumber(s, marker string) int {
	re, ok := numberAfter[marker]
	if !ok {
		re = regexp.MustCompile(regexp.QuoteMeta(marker) + `(\d+)`)
		numberAfter[marker] = re
	}
	m := re.FindAllStringSubmatch(s, -1)
	if len(m) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// spoof waits for A's route at r1 and sends forged frames on it from A's
// namespace (another UDP port than A's): a well-formed outer POOL DATA
// header with A's route id, a fresh seq, a payload, and a MAC field that no
// key produced. It returns how many it sent.
func spoof(ctx context.Context, l *lab.Lab, identityA string, doneA <-chan error) (int, error) {
	var session []byte
	deadline := time.Now().Add(30 * time.Second)
	for session == nil {
		js, err := l.CLI(ctx, "routes", "--json", "--socket", l.Relays[0].Socket)
		if err != nil {
			return 0, err
		}
		var routes []struct{ Session, From string }
		if err := json.Unmarshal([]byte(js), &routes); err != nil {
			return 0, fmt.Errorf("routes: %w", err)
		}
		for _, r := range routes {
			if r.From == identityA {
				if session, err = hex.DecodeString(r.Session); err != nil || len(session) != 16 {
					return 0, fmt.Errorf("routes: bad session %q", r.Session)
				}
			}
		}
		if session != nil {
			break
		}
		if time.Now().After(deadline) {
			return 0, errors.New("A's route never appeared at r1")
		}
		select {
		case err := <-doneA:
			return 0, fmt.Errorf("A ended before its route appeared at r1: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	conn, err := l.A.DialUDP(netip.AddrPortFrom(l.AAddr.Addr(), 0), netip.MustParseAddrPort(l.Relays[0].Endpoint(0)))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	const n, payload = 20, 200
	frame := make([]byte, 80+payload)
	frame[0] = 1<<4 | 3 // version 1, DATA
	copy(frame[20:36], session)
	binary.BigEndian.PutUint16(frame[44:], payload)
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint64(frame[4:], uint64(1<<40+i)) // seq
		for j := 48; j < 64; j++ {
			frame[j] = byte(i*31 + j) // a MAC no key made
		}
		if _, err := conn.Write(frame); err != nil {
			return i, err
		}
	}
	return n, nil
}
