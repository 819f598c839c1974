package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/internal/lab/labtest"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// TestDemo is the demo as `make test` runs it, once with the relays' ports
// on AF_PACKET and once on AF_XDP: three relays on DPDK and two end nodes
// in namespaces. It checks what the demo promises: every frame reaches B,
// forged ones reach no one and are charged to no one, heartbeat cross-checks
// agree, every relay serves status and peers, cheques are issued and
// received, the journals verify, and nothing is left behind.
func TestDemo(t *testing.T) {
	bin := labtest.Binaries(t, "the demo")
	for _, vdev := range []string{"af_packet", "af_xdp"} {
		t.Run(vdev, func(t *testing.T) { runDemo(t, bin, vdev) })
	}
	// Nothing left: namespaces, DPDK runtime directories.
	labtest.Leftovers(t, "demo")
}

// runDemo runs the demo once with the relays' ports on vdev and checks its
// summary.
func runDemo(t *testing.T, bin, vdev string) {
	jsonDir := t.TempDir()
	s := labtest.Run(t, 4*time.Minute, func(ctx context.Context, log, out io.Writer) error {
		return run(ctx, options{bin: bin, vdev: vdev, frames: 1000, size: 1000, rate: 1000, log: log, jsonDir: jsonDir}, out)
	})
	m := regexp.MustCompile(`demo: sent=(\d+) received=(\d+) forged=(\d+) forged_dropped=(\d+) heartbeats=(\d+) mismatches=0 cheques=true journals_ok=true`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no successful summary line")
	}
	if m[1] != m[2] || m[1] != "1000" {
		t.Errorf("sent %s frames, B received %s", m[1], m[2])
	}
	if m[3] != m[4] || m[3] == "0" {
		t.Errorf("forged %s frames, r1 dropped %s as bad_mac", m[3], m[4])
	}
	if m[5] == "0" {
		t.Error("no heartbeat was accepted")
	}
	for _, want := range []string{"Generosity score:", "Total relayed:", "Active peers:"} {
		if strings.Count(s, want) != 3 {
			t.Errorf("%q appears %d times, want once per relay", want, strings.Count(s, want))
		}
	}
	checkTotals(t, jsonDir)
	// The veths keep their checksum offloads on: r1 completed the
	// checksums of A's frames, which A's kernel left to offload.
	if m := regexp.MustCompile(`r1: heartbeats accepted \d+, mismatched \d+; checksums completed (\d+)`).FindStringSubmatch(s); m == nil {
		t.Error("no r1 checksum line")
	} else if n, _ := strconv.Atoi(m[1]); n < 1000 {
		t.Errorf("r1 completed %d checksums, want at least A's 1000 frames", n)
	}
	// pool_relay stop is seen by the peer at once (its CLOSE went out),
	// not after peer_timeout.
	if m := regexp.MustCompile(`stop_seen_ms=(\d+)`).FindStringSubmatch(s); m == nil {
		t.Error("no stop_seen_ms line")
	} else if ms, _ := strconv.Atoi(m[1]); ms > 1000 {
		t.Errorf("r2 saw r1's stop after %d ms, want within a second", ms)
	}
}

// checkTotals reads the --json-dir files and checks what status promises:
// its totals are the sums over the peers table, every relay relayed, and
// what peers attest comes with the number of peers that reported.
func checkTotals(t *testing.T, dir string) {
	t.Helper()
	for _, r := range []string{"r1", "r2", "r3"} {
		var st struct {
			Relayed  uint64 `json:"relayed_bytes"`
			Consumed uint64 `json:"consumed_bytes"`
			Attested struct {
				Relayed        uint64 `json:"relayed_bytes"`
				ReportingPeers int    `json:"reporting_peers"`
			} `json:"attested"`
		}
		var peers []struct {
			ID       string `json:"id"`
			RelayedF uint64 `json:"relayed_for_bytes"`
			RelayedB uint64 `json:"relayed_by_bytes"`
		}
		for name, v := range map[string]any{r + ".status.json": &st, r + ".peers.json": &peers} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		var sumFor, sumBy uint64
		for _, p := range peers {
			sumFor += p.RelayedF
			sumBy += p.RelayedB
		}
		t.Logf("%s: relayed %d consumed %d; peers relayed for %d by %d; attested relayed %d by %d peers",
			r, st.Relayed, st.Consumed, sumFor, sumBy, st.Attested.Relayed, st.Attested.ReportingPeers)
		if st.Relayed != sumFor || st.Consumed != sumBy {
			t.Errorf("%s: status relayed %d consumed %d, peers sum to %d and %d", r, st.Relayed, st.Consumed, sumFor, sumBy)
		}
		if st.Relayed == 0 || len(peers) != 2 {
			t.Errorf("%s: relayed %d bytes with %d peers, want traffic and 2 peers", r, st.Relayed, len(peers))
		}
		if st.Attested.ReportingPeers == 0 || st.Attested.ReportingPeers > len(peers) {
			t.Errorf("%s: %d reporting peers of %d", r, st.Attested.ReportingPeers, len(peers))
		}
	}
}
