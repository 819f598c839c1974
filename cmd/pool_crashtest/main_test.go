package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/internal/lab/labtest"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// TestDaemonKills is the short version of make crash-test-daemon: a few
// SIGKILLs of running relays during cheque traffic, each restarted with no
// operator action, and the run's summary line must say nothing was lost.
func TestDaemonKills(t *testing.T) {
	bin := labtest.Binaries(t, "the crash test")
	seed := time.Now().UnixNano()
	out := labtest.Run(t, 4*time.Minute, func(ctx context.Context, log, out io.Writer) error {
		return run(ctx, options{bin: bin, kills: 5, scenario: "kill", seed: seed, log: log}, out)
	})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	m := regexp.MustCompile(`^daemon_kills=(\d+) lost=0 chain_ok=true reconnect_p99_s=([0-9.]+)$`).FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("last line %q is not a successful summary", lines[len(lines)-1])
	}
	if m[1] != "5" {
		t.Errorf("%s kills, want 5", m[1])
	}
	// The reconnection is the relays' own doing and quick: far below
	// peer_timeout (10 s in the lab), which a stale session would need.
	if p99, _ := strconv.ParseFloat(m[2], 64); p99 <= 0 || p99 > 10 {
		t.Errorf("reconnect p99 %.2fs", p99)
	}
	labtest.Leftovers(t, "ct")
}

// TestDiskFull: r2's data directory on a small tmpfs this test mounts,
// filled during cheque traffic, freed, filled again, and unmounted.
func TestDiskFull(t *testing.T) {
	bin := labtest.Binaries(t, "the crash test")
	out := labtest.Run(t, 3*time.Minute, func(ctx context.Context, log, out io.Writer) error {
		return run(ctx, options{bin: bin, scenario: "diskfull", log: log}, out)
	})
	if !regexp.MustCompile(`(?m)^diskfull_ok=true degraded_s=[0-9.]+ resumed_s=[0-9.]+$`).MatchString(out) {
		t.Fatal("no successful summary line")
	}
	for _, want := range []string{"Journal state:        DEGRADED since", "no space left on device", "cheques_refused_by_peer=", "journal: gap:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if mounts, _ := os.ReadFile("/proc/self/mounts"); bytes.Contains(mounts, []byte("pool_crashtest-tmpfs-")) {
		t.Error("the tmpfs is still mounted")
	}
	labtest.Leftovers(t, "ct")
}
