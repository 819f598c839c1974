package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/ctl/socket"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/ledger/cheque"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/journal"
	"github.com/poolrelay/poolrelay/ledger/peer"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Deterministic identities: Ed25519 signing is deterministic, so cheques
// signed with these keys are byte-identical on every run.
var (
	selfKey  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	peerAKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	peerBKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	peerCKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32))
)

func id(k ed25519.PrivateKey) peer.ID {
	p, err := peer.FromPublicKey(k.Public().(ed25519.PublicKey))
	if err != nil {
		panic(err)
	}
	return p
}

var t0 = time.Date(2026, 11, 21, 4, 0, 0, 0, time.UTC)

func signed(t *testing.T, issuer, beneficiary ed25519.PrivateKey, cum, seq uint64) cheque.Signed {
	t.Helper()
	s, err := cheque.Sign(cheque.Cheque{Network: 1, Issuer: id(issuer), Beneficiary: id(beneficiary),
		Cumulative: cum, Sequence: seq, Date: uint64(t0.Unix())}, issuer)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeDaemon is a test double of the relay daemon's Backend: fixed, realistic
// answers, so that the CLI's formatting, argument handling and exit codes
// are checked end to end over a real control socket. It records what the
// CLI asked for.
type fakeDaemon struct {
	t       *testing.T
	mu      sync.Mutex
	calls   []string
	pending *api.PendingConfig
	config  string
}

func (d *fakeDaemon) note(s string) {
	d.mu.Lock()
	d.calls = append(d.calls, s)
	d.mu.Unlock()
}

func (d *fakeDaemon) Status(context.Context) (api.Status, error) {
	d.note("status")
	return api.Status{
		Version: "v0.3.0", Identity: id(selfKey).String(), Network: 1, Started: t0.Add(-time.Hour),
		Score: 4.09, Class: "major_contributor", Relayed: 160_000_000, Consumed: 39_000_512,
		ControlIn: 12_800, ControlOut: 11_520,
		Attested:    api.Attested{Score: 4.0, Class: "major_contributor", Relayed: 158_000_000, Consumed: 39_000_000, ReportingPeers: 2},
		ActivePeers: 3, Routes: 12,
		Journal: api.JournalHead{Records: 77, Head: strings.Repeat("ab", 32)},
		Ports: []api.PortRate{
			{Name: "p0", Device: "0000:03:00.0", Up: true, RxPPS: 1_234_567, TxPPS: 1_200_000, RxBPS: 9.87e9, TxBPS: 9.6e9, DropPPS: 12},
			{Name: "p1", Device: "0000:03:00.1", Up: false, DropPPS: 12}, // the relay's total, as on every port
		},
		PendingConfig: d.pending,
	}, nil
}

func (d *fakeDaemon) Peers(context.Context) ([]api.Peer, error) {
	d.note("peers")
	return []api.Peer{
		{ID: id(peerAKey).String(), Address: "192.0.2.7:9254", Connected: true, Class: "balanced", Score: 1.3,
			Balance: -4200, ControlCharged: 128, Limit: 125_000_000, RelayedForBytes: 30_000_000, RelayedByBytes: 39_000_000,
			ChequesIn: 5_000_000, ChequesOut: 6_000_000, RTT: api.Duration(1234 * time.Microsecond), FirstSeen: t0,
			Telemetry: &api.PeerTelemetry{Heartbeats: 42,
				Local: api.LinkTelemetry{RTT: api.Duration(1234 * time.Microsecond), Jitter: api.Duration(80 * time.Microsecond), LossPPM: 0,
					ThroughputBPS: 48_000_000, MTU: 1500, Uptime: api.Duration(3*time.Hour + 25*time.Second)},
				Claimed: api.LinkTelemetry{RTT: api.Duration(1302 * time.Microsecond), Jitter: api.Duration(95 * time.Microsecond), LossPPM: 2500,
					ThroughputBPS: 47_500_000, MTU: 1492, Uptime: api.Duration(36 * time.Hour), QueueDepth: 3}}},
		{ID: id(peerBKey).String(), Address: "[2001:db8::9]:9254", Connected: true, Choked: true, Class: "heavy_consumer",
			Score: 0.21, Balance: 130_000_000, Limit: 125_000_000, RelayedForBytes: 130_000_000, RelayedByBytes: 512, FirstSeen: t0},
		// A static lab peer: up, but no session, so no telemetry; the
		// tables name it, not its id.
		{ID: id(peerCKey).String(), Address: "192.0.2.1:40000", Connected: true, Class: "heavy_consumer", Score: 0,
			Balance: 739_060_800, RelayedForBytes: 424_000_000, FirstSeen: t0, Static: "gen0", Auth: "hop"},
	}, nil
}

func (d *fakeDaemon) Stats(context.Context) (api.Stats, error) {
	d.note("stats")
	return api.Stats{
		Ports: []api.PortStats{{Name: "p0", RxPackets: 1000, RxBytes: 128000, TxPackets: 990, TxBytes: 126720, Missed: 3},
			{Name: "p1", RxPackets: 990, RxBytes: 126720, TxPackets: 1000, TxBytes: 128000}},
		Queues: []api.QueueStats{
			{Port: "p1", Queue: 0, Class: "control", SentPackets: 10, SentBytes: 1280, Share: 0.01},
			{Port: "p1", Queue: 0, Class: "priority", SentPackets: 600, SentBytes: 76800, Share: 0.6},
			{Port: "p1", Queue: 0, Class: "normal", SentPackets: 290, SentBytes: 37120, Depth: 4, Share: 0.29},
			{Port: "p1", Queue: 0, Class: "deprioritised", SentPackets: 100, SentBytes: 12800, Dropped: 55, Depth: 2048, Share: 0.1},
		},
		Drops:  []api.DropStats{{Reason: "debt", Packets: 42}, {Reason: "bad hop MAC", Packets: 7}},
		Events: map[string]uint64{"checksum_completed": 990},
	}, nil
}

func (d *fakeDaemon) Routes(context.Context) ([]api.Route, error) {
	d.note("routes")
	return []api.Route{
		{Session: strings.Repeat("0f", 16), From: id(peerAKey).String(), To: id(peerBKey).String(), Port: "p1", NextHop: "198.51.100.9",
			Packets: 1_500_000, Bytes: 1_230_000_000, PPS: 1200, BPS: 9.6e6, LastSeen: t0.Add(-time.Second),
			Forward: api.RouteTraffic{Packets: 1_000_000, Bytes: 1_000_000_000, PPS: 1000, BPS: 8e6, LastSeen: t0.Add(-time.Second)},
			Reverse: api.RouteTraffic{Packets: 500_000, Bytes: 230_000_000, PPS: 200, BPS: 1.6e6, LastSeen: t0.Add(-2 * time.Second)}},
		{Session: strings.Repeat("a0", 16), From: id(peerBKey).String(), To: id(peerAKey).String(), Port: "p0", NextHop: "192.0.2.7", Static: true, Expires: t0.Add(time.Hour),
			Packets: 4_000_000, Bytes: 2_000_000_000, PPS: 10, BPS: 40_000, LastSeen: t0.Add(-time.Minute),
			Forward: api.RouteTraffic{Packets: 4_000_000, Bytes: 2_000_000_000, PPS: 10, BPS: 40_000, LastSeen: t0.Add(-time.Minute)}},
		{Session: strings.Repeat("c3", 16), From: id(peerAKey).String(), To: id(peerBKey).String(), Port: "p1", NextHop: "198.51.100.9"},
	}, nil
}

func (d *fakeDaemon) RouteAdd(_ context.Context, s api.RouteSpec) (api.Route, error) {
	d.note("route.add " + s.Session + " " + s.From + " " + s.To + " " + s.Port + " " + s.NextHop + " " + time.Duration(s.TTL).String())
	if len(s.Session) != 32 {
		return api.Route{}, api.Errorf(api.CodeInvalidArgument, "session %q is not 32 hex digits", s.Session)
	}
	return api.Route{Session: s.Session, From: id(peerAKey).String(), To: id(peerBKey).String(), Port: s.Port, NextHop: s.NextHop, Static: true, Expires: t0.Add(time.Duration(s.TTL))}, nil
}

func (d *fakeDaemon) RouteDel(_ context.Context, s string) error {
	d.note("route.del " + s)
	return api.Errorf(api.CodeNotFound, "no route with session %s", s)
}

func (d *fakeDaemon) Score(context.Context) (api.Score, error) {
	d.note("score")
	return api.Score{Own: 4.09, Class: "major_contributor", Relayed: 160_000_000, Consumed: 39_000_512, PriorBytes: 1 << 20,
		Attested: api.Attested{Score: 0.4, Class: "heavy_consumer", Relayed: 158_000_000, Consumed: 39_000_000, ReportingPeers: 1},
		Peers: []api.PeerScore{
			{ID: id(peerAKey).String(), Score: 1.3, Class: "balanced", RelayedBy: 39_000_000, RelayedFor: 30_000_000},
			{ID: id(peerBKey).String(), Score: 0.21, Class: "heavy_consumer", RelayedBy: 512, RelayedFor: 130_000_000},
		}}, nil
}

func (d *fakeDaemon) Cheques(context.Context) ([]api.Cheque, error) {
	d.note("cheques")
	var out []api.Cheque
	for _, en := range d.chequeEntries() {
		out = append(out, api.ChequeFromEntry(en))
	}
	return out, nil
}

func (d *fakeDaemon) chequeEntries() []cheque.Entry {
	in := signed(d.t, peerAKey, selfKey, 5_000_000, 3)
	outA := signed(d.t, selfKey, peerAKey, 6_000_000, 2)
	return []cheque.Entry{
		{Direction: cheque.Received, Peer: id(peerAKey), Signed: in},
		{Direction: cheque.Issued, Peer: id(peerAKey), Signed: outA},
	}
}

func (d *fakeDaemon) Enroll(_ context.Context, addr string) (api.Peer, error) {
	d.note("enroll " + addr)
	return api.Peer{ID: id(peerAKey).String(), Address: addr, Connected: true, Class: "heavy_consumer", Score: 0.25}, nil
}

func (d *fakeDaemon) Unenroll(_ context.Context, p string) (api.Unenrolled, error) {
	d.note("unenroll " + p)
	if p != short(id(peerAKey).String()) {
		return api.Unenrolled{}, api.Errorf(api.CodeNotFound, "no peer %s", p)
	}
	return api.Unenrolled{Peer: id(peerAKey).String(), Address: "192.0.2.7:9254"}, nil
}

func (d *fakeDaemon) Stop(context.Context) error { d.note("stop"); return nil }

func (d *fakeDaemon) ConfigShow(context.Context) (api.ConfigState, error) {
	d.note("config.show")
	return api.ConfigState{Config: d.config, Pending: d.pending}, nil
}

func (d *fakeDaemon) ConfigApply(_ context.Context, a api.ConfigApplyArgs) (api.ConfigState, error) {
	d.note("config.apply " + time.Duration(a.ConfirmWithin).String())
	if d.pending != nil {
		return api.ConfigState{}, api.Errorf(api.CodeConflict, "a configuration is pending confirmation")
	}
	d.config = a.Config
	if a.ConfirmWithin > 0 {
		d.pending = &api.PendingConfig{Applied: t0, Deadline: t0.Add(time.Duration(a.ConfirmWithin))}
	}
	return api.ConfigState{Config: d.config, Pending: d.pending}, nil
}

func (d *fakeDaemon) ConfigConfirm(context.Context) (api.ConfigState, error) {
	d.note("config.confirm")
	if d.pending == nil {
		return api.ConfigState{}, api.Errorf(api.CodeConflict, "no configuration is pending confirmation")
	}
	d.pending = nil
	return api.ConfigState{Config: d.config}, nil
}

func (d *fakeDaemon) ConfigRollback(context.Context) (api.ConfigState, error) {
	d.note("config.rollback")
	return api.ConfigState{}, api.Errorf(api.CodeConflict, "no configuration is pending confirmation")
}

func (d *fakeDaemon) Trace(_ context.Context, a api.TraceArgs) (api.Trace, error) {
	d.note("trace " + a.Port)
	if a.Port != "p0" {
		return api.Trace{}, api.Errorf(api.CodeNotFound, "no port %q", a.Port)
	}
	tr := api.Trace{Port: a.Port, LinkType: 1}
	for i := range a.Count {
		data := bytes.Repeat([]byte{byte(i)}, 60+i)
		tr.Frames = append(tr.Frames, api.TraceFrame{Time: t0.Add(time.Duration(i) * time.Millisecond), Length: len(data), Data: data})
	}
	return tr, nil
}

func (d *fakeDaemon) JournalVerify(context.Context) (api.JournalSummary, error) {
	d.note("journal.verify")
	return api.JournalSummary{Records: 77}, nil
}

// startDaemon serves a fakeDaemon double on a fresh socket and returns it and
// the socket path.
func startDaemon(t *testing.T) (*fakeDaemon, string) {
	t.Helper()
	d := &fakeDaemon{t: t, config: "[log]\nlevel = \"info\"\n"}
	path := filepath.Join(t.TempDir(), "ctl.sock")
	s, err := socket.Listen(socket.Options{Path: path, Backend: d, Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return d, path
}

// golden compares got with testdata/NAME.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got ---\n%s\n--- want ---\n%s", name, path, got, want)
	}
}

func TestGoldenOutput(t *testing.T) {
	_, sock := startDaemon(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"status", []string{"status"}},
		{"status_json", []string{"status", "--json"}},
		{"peers", []string{"peers"}},
		{"peers_json", []string{"peers", "--json"}},
		{"stats", []string{"stats"}},
		{"score", []string{"score"}},
		{"routes", []string{"routes"}},
		{"routes_rate_top", []string{"routes", "--sort", "rate", "--top", "2"}},
		{"routes_bytes_json", []string{"routes", "--sort", "bytes", "--top", "1", "--json"}},
		{"route_add", []string{"route", "add", strings.Repeat("5a", 16), "--from", "8139770e", "--to", "ed4928c6", "--port", "p1", "--next-hop", "198.51.100.9", "--ttl", "10m"}},
		{"cheques", []string{"cheques"}},
		{"cheques_json", []string{"cheques", "--json"}},
		{"enroll", []string{"enroll", "192.0.2.7:9254"}},
		{"stop", []string{"stop"}},
		{"config_show", []string{"config", "show"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append(tc.args, "--socket", sock)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			golden(t, tc.name, out)
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The seed's status lines, verbatim in their layout.
func TestStatusMatchesSeed(t *testing.T) {
	_, sock := startDaemon(t)
	_, out, _ := runCLI(t, "status", "--socket", sock)
	for _, want := range []string{
		"Generosity score:     4.09 (major contributor, priority routing)\n",
		"Total relayed:        160 MB\n",
		"Total consumed:       39.0 MB\n",
		"Active peers:         3\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

func TestConfigApplyConfirmRollback(t *testing.T) {
	d, sock := startDaemon(t)
	def := filepath.Join("..", "..", "configs", "default.toml")
	code, out, errOut := runCLI(t, "config", "apply", def, "--confirm-within", "90s", "--socket", sock)
	if code != 0 || !strings.Contains(out, "rolled back at 2026-11-21T04:01:30Z unless confirmed") {
		t.Fatalf("apply: exit %d, out %q, err %q", code, out, errOut)
	}
	// The digest names the bytes applied, so the operator can match the
	// journal's CONFIG entry to a file.
	sum := sha256.Sum256(mustRead(t, def))
	if !strings.HasPrefix(out, "applied "+def+" (sha256 "+hex.EncodeToString(sum[:6])+")\n") {
		t.Fatalf("apply output %q", out)
	}
	code, out, _ = runCLI(t, "config", "show", "--socket", sock)
	if code != 0 || !strings.HasPrefix(out, "# pending: applied 2026-11-21T04:00:00Z, rolled back at 2026-11-21T04:01:30Z") || !strings.Contains(out, "[ledger]") {
		t.Fatalf("show while pending: %q", out)
	}
	code, _, errOut = runCLI(t, "config", "apply", def, "--socket", sock)
	if code != exitFailure || !strings.Contains(errOut, "pending confirmation (conflict)") {
		t.Fatalf("second apply: exit %d, err %q", code, errOut)
	}
	code, out, _ = runCLI(t, "config", "confirm", "--socket", sock)
	if code != 0 || out != "configuration confirmed\n" {
		t.Fatalf("confirm: exit %d out %q", code, out)
	}
	code, _, errOut = runCLI(t, "config", "rollback", "--socket", sock)
	if code != exitFailure || !strings.Contains(errOut, "no configuration is pending") {
		t.Fatalf("rollback with nothing pending: exit %d err %q", code, errOut)
	}
	code, out, _ = runCLI(t, "config", "apply", def, "--confirm-within", "0", "--socket", sock, "--json")
	if code != 0 || !strings.Contains(out, `"config": "# poolrelay configuration`) || strings.Contains(out, "pending") {
		t.Fatalf("permanent apply --json: exit %d out %q", code, out)
	}

	// A file that does not validate is refused here, before any call.
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[ctl]\nsocket = \"relative\"\n"), 0o600)
	before := len(d.calls)
	code, _, errOut = runCLI(t, "config", "apply", bad, "--socket", sock)
	if code != exitUsage || !strings.Contains(errOut, "ctl.socket") || !strings.Contains(errOut, "nothing applied") {
		t.Fatalf("bad file: exit %d err %q", code, errOut)
	}
	if len(d.calls) != before {
		t.Fatal("a file that does not validate reached the relay")
	}
	want := "config.apply 1m30s,config.show,config.apply 1m0s,config.confirm,config.rollback,config.apply 0s"
	if got := strings.Join(d.calls, ","); got != want {
		t.Fatalf("calls %s, want %s", got, want)
	}
}

func TestErrorsAndExitCodes(t *testing.T) {
	_, sock := startDaemon(t)
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"unenroll", "ffffffff"}, exitFailure, "pool_relay unenroll: no peer ffffffff (not_found)\n"},
		{[]string{"route", "del", "00"}, exitFailure, "no route with session 00 (not_found)"},
		{[]string{"route", "add", "00", "--from", "a", "--to", "b", "--port", "p0"}, exitUsage, "is not 32 hex digits (invalid_argument)"},
		{[]string{"route", "add", "00"}, exitUsage, "route add needs --from, --to and --port"},
		{[]string{"route", "move", "00"}, exitUsage, "expected: route add"},
		{[]string{"trace", "p9", "-n", "2", "-w", filepath.Join(t.TempDir(), "x.pcap")}, exitFailure, `no port "p9" (not_found)`},
		{[]string{"trace", "p0", "-n", "0", "-w", "x"}, exitUsage, "-n 0 is out of range"},
		{[]string{"trace", "p0"}, exitUsage, "expected: trace PORT"},
		{[]string{"status", "extra"}, exitUsage, "unexpected arguments"},
		{[]string{"status", "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"enroll"}, exitUsage, "expected: enroll [POOL-ADDRESS@]IP[:PORT]"},
		{[]string{"config", "frob"}, exitUsage, "unknown config command"},
		{[]string{"config", "apply"}, exitUsage, "expected: pool_relay config apply FILE"},
		{[]string{"config"}, exitUsage, "expected a subcommand"},
		{[]string{"journal"}, exitUsage, "expected a subcommand"},
		{[]string{"journal", "frob"}, exitUsage, "unknown journal command"},
		{[]string{"cheques", "import", "x"}, exitUsage, "expected: cheques"},
	} {
		code, _, errOut := runCLI(t, append(tc.args, "--socket", sock)...)
		if code != tc.code || !strings.Contains(errOut, tc.err) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.err)
		}
	}
	// No relay on the socket.
	code, _, errOut := runCLI(t, "status", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	if code != exitFailure || !strings.Contains(errOut, "is pool_relay running?") {
		t.Errorf("no fakeDaemon: exit %d, stderr %q", code, errOut)
	}
}

// TestHelpWalk asks every command and every subcommand for --help: each
// answers on standard output with exit 0, starts with its usage line,
// explains itself in a paragraph, and lists under "Flags:" every flag its
// usage line names.
func TestHelpWalk(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != exitOK || !strings.Contains(out, "Usage: pool_relay COMMAND") {
		t.Fatalf("pool_relay --help: exit %d\n%s", code, out)
	}
	flagRE := regexp.MustCompile(`(?:^|[ \[|])--?([a-z][a-z-]*)`)
	walked := 0
	for name, c := range commands {
		if !strings.Contains(out, "  "+name+" ") {
			t.Errorf("pool_relay --help does not list %s", name)
		}
		paths := [][]string{{name}}
		for _, sub := range c.subs {
			paths = append(paths, []string{name, sub})
		}
		for _, p := range paths {
			for _, h := range []string{"--help", "-h"} {
				walked++
				cmd := strings.Join(p, " ")
				code, out, errOut := runCLI(t, append(append([]string(nil), p...), h)...)
				if code != exitOK || errOut != "" {
					t.Errorf("%s %s: exit %d, stderr %q", cmd, h, code, errOut)
					continue
				}
				first, rest, _ := strings.Cut(out, "\n")
				if !strings.HasPrefix(first, "Usage: pool_relay "+cmd) {
					t.Errorf("%s %s: first line %q", cmd, h, first)
				}
				text, flags, _ := strings.Cut(rest, "\nFlags:\n")
				prose := 0
				for _, l := range strings.Split(text, "\n") {
					if strings.TrimSpace(l) != "" {
						prose++
					}
				}
				if prose < 3 {
					t.Errorf("%s %s explains too little (%d lines):\n%s", cmd, h, prose, out)
				}
				if strings.Contains(out, "SUBCOMMAND --help shows") {
					continue // a group's page: each subcommand lists its flags
				}
				for _, m := range flagRE.FindAllStringSubmatch(first, -1) {
					if !strings.Contains(flags, "  -"+m[1]+" ") && !strings.Contains(flags, "  -"+m[1]+"\n") {
						t.Errorf("%s %s: usage names -%s, which Flags does not list:\n%s", cmd, h, m[1], out)
					}
				}
			}
		}
	}
	if walked < 2*(len(commands)+8) {
		t.Errorf("walked %d help pages", walked)
	}
}

func TestUnenrollAndStop(t *testing.T) {
	d, sock := startDaemon(t)
	code, out, _ := runCLI(t, "unenroll", short(id(peerAKey).String()), "--socket", sock)
	// Named by a prefix, the peer is echoed by its full id.
	if code != 0 || out != "unenrolled "+id(peerAKey).String()+" at 192.0.2.7:9254\n" {
		t.Fatalf("unenroll: %d %q", code, out)
	}
	code, out, _ = runCLI(t, "stop", "--json", "--socket", sock)
	if code != 0 || out != "{\n  \"stopping\": true\n}\n" {
		t.Fatalf("stop --json: %d %q", code, out)
	}
	if got := strings.Join(d.calls, ","); got != "unenroll 8139770e,stop" {
		t.Fatalf("calls %s", got)
	}
}

func TestTraceWritesPcap(t *testing.T) {
	_, sock := startDaemon(t)
	file := filepath.Join(t.TempDir(), "p0.pcap")
	// Flags after the positional argument, as operators type them.
	code, out, errOut := runCLI(t, "trace", "p0", "-n", "3", "-w", file, "--snaplen", "61", "--socket", sock)
	if code != 0 || out != "captured 3 frames on p0 to "+file+"\n" {
		t.Fatalf("trace: exit %d out %q err %q", code, out, errOut)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if le.Uint32(b) != 0xa1b2c3d4 || le.Uint16(b[4:]) != 2 || le.Uint16(b[6:]) != 4 || le.Uint32(b[16:]) != 61 || le.Uint32(b[20:]) != 1 {
		t.Fatalf("pcap header % x", b[:24])
	}
	b = b[24:]
	for i := range 3 {
		sec, usec, incl, orig := le.Uint32(b), le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint32(b[12:])
		wantIncl := min(60+i, 61)
		if int64(sec) != t0.Unix() || usec != uint32(i*1000) || int(incl) != wantIncl || int(orig) != 60+i {
			t.Fatalf("frame %d header: %d %d %d %d", i, sec, usec, incl, orig)
		}
		if !bytes.Equal(b[16:16+incl], bytes.Repeat([]byte{byte(i)}, wantIncl)) {
			t.Fatalf("frame %d data", i)
		}
		b = b[16+incl:]
	}
	if len(b) != 0 {
		t.Fatalf("%d trailing bytes", len(b))
	}
}

// writeChequeJournal writes a journal holding cheques as the ledger
// journals them, older ones superseded by newer ones.
func writeChequeJournal(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.pjr")
	j, _, err := journal.Open(path, journal.Options{Clock: clock.NewFake(t0), Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	add := func(typ event.Type, s cheque.Signed) {
		if _, err := j.AppendEvent(typ, &event.ChequeEntry{Signed: s, Increase: 1}); err != nil {
			t.Fatal(err)
		}
	}
	add(event.ChequeReceived, signed(t, peerAKey, selfKey, 1_000_000, 1))
	add(event.ChequeIssued, signed(t, selfKey, peerAKey, 6_000_000, 2))
	j.AppendEvent(event.Config, &event.Text{Note: "unrelated"})
	add(event.ChequeReceived, signed(t, peerAKey, selfKey, 5_000_000, 3))
	add(event.ChequeReceived, signed(t, peerBKey, selfKey, 700, 1))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestChequesOfflineFromJournal(t *testing.T) {
	path := writeChequeJournal(t)
	code, out, errOut := runCLI(t, "cheques", "--journal", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "cheques_offline", out)

	// No relay running: the CLI says so and falls back to the journal the
	// configuration names.
	dir := t.TempDir()
	cfgText, _ := os.ReadFile(filepath.Join("..", "..", "configs", "default.toml"))
	cfg := strings.Replace(string(cfgText), `journal_file = ""`, `journal_file = "`+path+`"`, 1)
	cfg = strings.Replace(cfg, `socket = "/run/pool_relay/ctl.sock"`, `socket = "`+filepath.Join(dir, "none.sock")+`"`, 1)
	cfgPath := filepath.Join(dir, "relay.toml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	export := filepath.Join(dir, "settlement.jsonl")
	code, out, errOut = runCLI(t, "cheques", "export", export, "--config", cfgPath)
	if code != 0 || !strings.Contains(errOut, "reading the journal instead") || !strings.Contains(errOut, "wrote 3 cheques") {
		t.Fatalf("export without a relay: exit %d out %q err %q", code, out, errOut)
	}
	f, err := os.Open(export)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := cheque.ReadJSONL(f) // verifies every signature
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range entries {
		got = append(got, string(en.Direction)+" "+en.Peer.Short()+" "+
			hex.EncodeToString([]byte{byte(en.Signed.Sequence)}))
	}
	// Latest per peer and direction only, sorted by peer, received first.
	want := []string{"received 8139770e 03", "issued 8139770e 02", "received ed4928c6 01"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("settlement entries %v, want %v", got, want)
	}
}

// Online, the export holds exactly what the relay returned, verified.
func TestChequesExportOnline(t *testing.T) {
	d, sock := startDaemon(t)
	code, out, errOut := runCLI(t, "cheques", "export", "-", "--socket", sock)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var want bytes.Buffer
	cheque.WriteJSONL(&want, d.chequeEntries())
	if out != want.String() {
		t.Fatalf("export:\n%s\nwant:\n%s", out, want.String())
	}
}

func TestParseArgsInterleaved(t *testing.T) {
	e := &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	fs := newFlags(e, "x", "x")
	n := fs.Int("n", 0, "")
	w := fs.String("w", "", "")
	pos, err := parseArgs(fs, []string{"-n", "3", "p0", "-w", "f", "extra", "--", "-n"})
	if err != nil || *n != 3 || *w != "f" || strings.Join(pos, " ") != "p0 extra -n" {
		t.Fatalf("pos %q n %d w %q err %v", pos, *n, *w, err)
	}
}

func TestHumanUnits(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"}, {999, "999 B"}, {1000, "1.00 kB"}, {1234, "1.23 kB"}, {99_949, "99.9 kB"},
		{142_000_000, "142 MB"}, {109_400_000, "109 MB"}, {999_600, "1.00 MB"}, {1 << 62, "4.61 EB"},
	} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := humanRate(9.87e9, "bit/s"); got != "9.87 Gbit/s" {
		t.Errorf("humanRate = %q", got)
	}
	if got := humanRate(12.5, "pps"); got != "12.5 pps" {
		t.Errorf("humanRate = %q", got)
	}
}
