// Package labtest is what the tests of internal/lab and of the commands
// built on it (pool_demo, pool_crashtest) share: the real pool_relay and
// pool_node built once per test binary, the root requirement, a run with
// its output logged, and the check that a lab left nothing behind.
package labtest

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/internal/netns"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
	buildOut  []byte
)

// Main runs the package's tests and removes the binaries Binaries built.
// Use it as the package's TestMain: os.Exit(labtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}

// Binaries returns the directory of pool_relay and pool_node, built once
// per test binary (see Main). It skips the test, saying why, without root
// (what needs it: a lab makes network namespaces and runs DPDK) or in
// -short mode, and fails it when CI runs it without root: CI runs as root.
func Binaries(t *testing.T, what string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s needs root (network namespaces, DPDK); CI runs as root", what)
		}
		t.Skipf("skipping: %s needs root (network namespaces, DPDK)", what)
	}
	if testing.Short() {
		t.Skipf("skipping %s in -short mode", what)
	}
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "pool_labtest-bin-"); buildErr != nil {
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

// Leftovers fails the test if a lab of base (lab.Config.Base) in this
// process left namespaces or DPDK runtime directories behind.
func Leftovers(t *testing.T, base string) {
	t.Helper()
	prefix := netns.Prefix(base)
	if out, _ := exec.Command("ip", "netns", "list").Output(); bytes.Contains(out, []byte(prefix)) {
		t.Errorf("namespaces left behind:\n%s", out)
	}
	if left, _ := filepath.Glob("/var/run/dpdk/" + strings.TrimSuffix(prefix, "-") + "_*"); len(left) > 0 {
		t.Errorf("DPDK runtime directories left behind: %v", left)
	}
}

// Run calls a command's run function under timeout, with out its output
// and log the output of the processes it starts. It logs out and returns
// it; if run fails, it logs the last 200 lines of log and fails the test.
func Run(t *testing.T, timeout time.Duration, run func(ctx context.Context, log, out io.Writer) error) string {
	t.Helper()
	var out, log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := run(ctx, &log, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Logf("process output:\n%s", tail(log.String(), 200))
		t.Fatal(err)
	}
	return out.String()
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
