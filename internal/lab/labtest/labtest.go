// Package labtest is what the tests of internal/lab and of the commands
// built on it (pool_demo, pool_crashtest) share: the real pool_relay and
// pool_node built once per test binary, the root requirement, and the check
// that a lab left nothing behind.
package labtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
