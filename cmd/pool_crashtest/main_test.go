package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
	buildOut  []byte
)

// binaries builds pool_relay and pool_node once for the package's tests.
func binaries(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the crash test needs root (network namespaces, DPDK, tmpfs); CI runs as root")
		}
		t.Skip("skipping: the crash test needs root (network namespaces, DPDK, tmpfs)")
	}
	if testing.Short() {
		t.Skip("skipping the daemon crash test in -short mode")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "pool_crashtest-bin-")
		if buildErr != nil {
			return
		}
		buildOut, buildErr = exec.Command("go", "build", "-o", binDir+"/",
			"github.com/poolrelay/poolrelay/cmd/pool_relay", "github.com/poolrelay/poolrelay/cmd/pool_node").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// TestDaemonKills is the short version of make crash-test-daemon: a few
// SIGKILLs of running relays during cheque traffic, each restarted with no
// operator action, and the run's summary line must say nothing was lost.
func TestDaemonKills(t *testing.T) {
	bin := binaries(t)
	var out, log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	err := run(ctx, options{bin: bin, kills: 5, scenario: "kill", seed: time.Now().UnixNano(), log: &log}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Logf("process output:\n%s", tail(log.String(), 100))
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
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
	leftovers(t)
}

// TestDiskFull: r2's data directory on a small tmpfs this test mounts,
// filled during cheque traffic, freed, filled again, and unmounted.
func TestDiskFull(t *testing.T) {
	bin := binaries(t)
	var out, log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := run(ctx, options{bin: bin, scenario: "diskfull", log: &log}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Logf("process output:\n%s", tail(log.String(), 100))
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^diskfull_ok=true degraded_s=[0-9.]+ resumed_s=[0-9.]+$`).MatchString(out.String()) {
		t.Fatal("no successful summary line")
	}
	for _, want := range []string{"Journal state:        DEGRADED since", "no space left on device", "cheques_refused_by_peer=", "journal: gap:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if mounts, _ := os.ReadFile("/proc/self/mounts"); bytes.Contains(mounts, []byte("pool_crashtest-tmpfs-")) {
		t.Error("the tmpfs is still mounted")
	}
	leftovers(t)
}

// leftovers fails the test if the run left namespaces or DPDK runtime
// directories behind.
func leftovers(t *testing.T) {
	t.Helper()
	prefix := "ct" + strconv.Itoa(os.Getpid()) + "-"
	if out, _ := exec.Command("ip", "netns", "list").Output(); bytes.Contains(out, []byte(prefix)) {
		t.Errorf("namespaces left behind:\n%s", out)
	}
	if left, _ := filepath.Glob("/var/run/dpdk/ct" + strconv.Itoa(os.Getpid()) + "_*"); len(left) > 0 {
		t.Errorf("DPDK runtime directories left behind: %v", left)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
