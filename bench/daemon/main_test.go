package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/ctl/api"
)

// bins holds pool_relay and pool_gen built for these tests; skip says why
// the tests cannot run here.
var bins, skip string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		switch {
		case os.Geteuid() != 0:
			skip = "needs root (DPDK vdevs, hugetlbfs-free memfd memory, /var/run/dpdk)"
		default:
			if _, err := exec.LookPath("go"); err != nil {
				skip = "the go command is not on PATH: cannot build pool_relay and pool_gen"
			}
		}
		if skip != "" {
			if os.Getenv("CI") != "" {
				fmt.Fprintln(os.Stderr, "bench/daemon: the daemon tests must run in CI:", skip)
				return 1
			}
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "poolrelay-bench-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/poolrelay/poolrelay/cmd/pool_relay", "github.com/poolrelay/poolrelay/cmd/pool_gen")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bench/daemon: building the binaries: %v\n%s", err, out)
			return 1
		}
		bins = dir
		return m.Run()
	}())
}

func need(t *testing.T) {
	t.Helper()
	if skip != "" {
		t.Skip(skip)
	}
}

// counts are the relay's counters that the tests follow.
type counts struct {
	rx, relayed, dropped uint64
	drops                map[string]uint64
}

func readCounts(t *testing.T, l *lab) counts {
	t.Helper()
	st, err := l.client().Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := counts{drops: map[string]uint64{}}
	c.relayed, c.dropped = relayCounts(st)
	for _, p := range st.Ports {
		if p.Name == "p0" {
			c.rx = p.RxPackets
		}
	}
	for _, d := range st.Drops {
		c.drops[d.Reason] = d.Packets
	}
	return c
}

// charged is the ledger's count of frames relayed for the static peer
// name, once it has caught up with want (the ledger reads the data plane's
// counters each tick) or after a few seconds.
func charged(t *testing.T, l *lab, name string, want uint64) api.Peer {
	t.Helper()
	var p api.Peer
	deadline := time.Now().Add(5 * time.Second)
	for {
		ps, err := l.client().Peers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range ps {
			if q.Static == name {
				p = q
			}
		}
		if p.RelayedForPackets >= want || time.Now().After(deadline) {
			return p
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// gen runs pool_gen for a second at 128 B over 1024 sessions and checks
// that every frame it handed to its port reached the relay and is
// accounted for there: relayed, or dropped for a named reason.
func gen(t *testing.T, l *lab, keyFile, rxKey string) (genRun, counts) {
	t.Helper()
	before := readCounts(t, l)
	g, err := l.runGen(context.Background(), genOptions{size: 128, sessions: 1024, duration: time.Second, keyFile: keyFile, rxKey: rxKey})
	if err != nil {
		t.Fatal(err)
	}
	after := readCounts(t, l)
	d := counts{rx: after.rx - before.rx, relayed: after.relayed - before.relayed, dropped: after.dropped - before.dropped, drops: map[string]uint64{}}
	for r, n := range after.drops {
		if n != before.drops[r] {
			d.drops[r] = n - before.drops[r]
		}
	}
	if g.tx == 0 {
		t.Fatalf("pool_gen sent nothing:\n%s", g.out)
	}
	if d.rx != g.tx || d.relayed+d.dropped != d.rx {
		t.Fatalf("pool_gen sent %d; the relay received %d, relayed %d and dropped %d (%v): not every frame accounted for", g.tx, d.rx, d.relayed, d.dropped, d.drops)
	}
	t.Logf("pool_gen tx %d rx %d (bad MAC %d) in %.2f s; relay received %d, relayed %d, dropped %v", g.tx, g.rx, g.badMAC, g.secs, d.rx, d.relayed, d.drops)
	return g, d
}

// The daemon started from each shipped bench configuration forwards
// pool_gen's frames, and accounts for every one; the authenticated one
// refuses frames under the wrong key or none (all bad_mac, charged to
// nobody) and a configuration apply it cannot take; the unauthenticated
// one relays unsigned frames and charges them to its peer.
func TestShippedBenchConfigs(t *testing.T) {
	need(t)
	files, err := filepath.Glob("../../configs/bench-*.toml")
	if err != nil || len(files) < 2 {
		t.Fatalf("shipped bench configurations: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			l, err := newLab(bins, f)
			if err != nil {
				t.Fatal(err)
			}
			prefixes := func() []string { l.mu.Lock(); defer l.mu.Unlock(); return append([]string(nil), l.prefixes...) }
			defer func() {
				ps := prefixes()
				if err := l.close(); err != nil {
					t.Error(err)
				}
				for _, p := range ps {
					if _, err := os.Stat(filepath.Join("/var/run/dpdk", p)); err == nil {
						t.Errorf("/var/run/dpdk/%s left behind", p)
					}
				}
				if _, err := os.Stat(l.dir); err == nil {
					t.Errorf("%s left behind", l.dir)
				}
			}()
			if _, err := l.startRelay(context.Background()); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(l.text, "unauthenticated = true") {
				unauthenticated(t, l)
			} else {
				authenticated(t, l)
			}
		})
	}
}

func authenticated(t *testing.T, l *lab) {
	g, d := gen(t, l, l.keyFile(0), l.keyFile(1))
	// Most, not all: on a machine busy with other tests a class queue may
	// overflow (egress_full), which the accounting above still covers.
	if d.relayed == 0 || d.relayed < d.rx/2 || g.rx == 0 || g.badMAC != 0 {
		t.Fatalf("signed frames: relayed %d of %d (drops %v); pool_gen got %d back, %d failing the relay's MAC", d.relayed, d.rx, d.drops, g.rx, g.badMAC)
	}
	gen0 := charged(t, l, "gen0", d.relayed)
	if gen0.RelayedForPackets != d.relayed || gen0.Balance <= 0 || gen0.Auth != "hop" {
		t.Fatalf("gen0 charged for %d frames (balance %d, auth %q), relayed %d", gen0.RelayedForPackets, gen0.Balance, gen0.Auth, d.relayed)
	}

	// The wrong pre-shared key: all bad_mac, charged to nobody.
	wrong := filepath.Join(l.dir, "wrong.key")
	if err := writeKey(wrong); err != nil {
		t.Fatal(err)
	}
	_, d = gen(t, l, wrong, "")
	if d.relayed != 0 || d.drops["bad_mac"] != d.rx {
		t.Fatalf("wrong key: relayed %d, drops %v of %d", d.relayed, d.drops, d.rx)
	}
	// No key at all, as a replay tool sends: refused, since gen0 is not
	// declared unauthenticated; as replays (the seqs start at 1, long
	// behind the window, which is checked before the MAC) or bad MACs.
	_, d = gen(t, l, "", "")
	if d.relayed != 0 || d.drops["bad_mac"]+d.drops["replay"] != d.rx {
		t.Fatalf("unsigned frames to an authenticated peer: relayed %d, drops %v of %d", d.relayed, d.drops, d.rx)
	}
	time.Sleep(1500 * time.Millisecond) // a ledger tick
	for _, name := range []string{"gen0", "gen1"} {
		if p := charged(t, l, name, 0); (name == "gen0" && p.RelayedForPackets != gen0.RelayedForPackets) || (name == "gen1" && p.RelayedForPackets != 0) {
			t.Fatalf("%s charged for %d frames after the refused runs", name, p.RelayedForPackets)
		}
	}

	// A configuration apply that fails validation leaves the relay as it
	// was, and it still forwards.
	bad := l.text + "\n[[control.static_route]]\nfrom = \"gen1\"\nto = \"gen0\"\nsession = \"706f6f6c2d67656e2d686f7000000100\"\ncount = 1\n"
	if _, err := l.client().ConfigApply(context.Background(), api.ConfigApplyArgs{Config: bad}); err == nil ||
		!strings.Contains(err.Error(), "overlap") || !strings.Contains(err.Error(), "line ") {
		t.Fatalf("apply of overlapping ranges: %v", err)
	}
	rs, err := l.client().Routes(context.Background())
	if err != nil || len(rs) != 1 || rs[0].Sessions != 1024 || !rs[0].Config {
		t.Fatalf("routes after a refused apply: %+v, %v", rs, err)
	}
	if _, d = gen(t, l, l.keyFile(0), l.keyFile(1)); d.relayed == 0 {
		t.Fatal("nothing relayed after a refused apply")
	}
}

func unauthenticated(t *testing.T, l *lab) {
	st, err := l.client().Status(context.Background())
	if err != nil || len(st.Unauthenticated) != 2 {
		t.Fatalf("status lists unauthenticated peers %v (%v)", st.Unauthenticated, err)
	}
	_, d := gen(t, l, "", "")
	if d.relayed == 0 || d.relayed < d.rx/2 {
		t.Fatalf("unsigned frames from an unauthenticated peer: relayed %d of %d (drops %v)", d.relayed, d.rx, d.drops)
	}
	p := charged(t, l, "pktgen0", d.relayed)
	if p.RelayedForPackets != d.relayed || p.Balance <= 0 || p.Auth != "none" {
		t.Fatalf("pktgen0 charged for %d frames (balance %d, auth %q), relayed %d", p.RelayedForPackets, p.Balance, p.Auth, d.relayed)
	}
}
