//go:build linux && cgo

package dpdk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/poolrelay/poolrelay/dataplane"
)

// The EAL can start only once per process, so TestMain starts it once for
// every test here, on ordinary pages (--no-huge) under a file prefix of
// this process's own, and checks after the run that nothing is left in
// /var/run/dpdk or /dev/hugepages. Tests that need a fresh process (a
// failing init) re-run the test binary.

// Devices given to the EAL at init; other tests hot-plug theirs.
const (
	nullA = "net_null0,size=128"
	nullB = "net_null1,size=128"
	ring0 = "net_ring0"
)

var env struct {
	eal       *EAL
	skip      string // why DPDK tests skip; empty when they run
	mainCore  int
	workCore  int
	pools     *Pools
	logs      *syncBuffer // the binding's log output, for tests that check warnings
	tmp       string
	portsOnce sync.Once
	a, b, r   *Port
	portsErr  error
}

// syncBuffer is a log sink safe for the binding's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		env.skip = "not root: DPDK needs root for its runtime directory and memory"
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "dpdk tests must run as root in CI:", env.skip)
			return 1
		}
		return m.Run()
	}
	sweepStale()
	var err error
	env.mainCore, env.workCore, err = twoCPUs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.tmp, err = os.MkdirTemp("", "dpdk-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(env.tmp)
	env.logs = &syncBuffer{}
	cfg := testEALConfig()
	env.eal, err = Init(cfg, []string{nullA, nullB, ring0}, zerolog.New(env.logs))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dpdk: EAL init failed:", err)
		return 1
	}
	env.pools = env.eal.NewPools("test", 8191, 256, 0)
	code := m.Run()
	runtimeDir := env.eal.RuntimeDir()
	if err := env.eal.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "dpdk: EAL close:", err)
		code = 1
	}
	if left := leftovers(runtimeDir, cfg.FilePrefix); len(left) > 0 {
		fmt.Fprintln(os.Stderr, "dpdk: files left behind after Close:", left)
		code = 1
	}
	return code
}

// testEALConfig is the EAL of the test process: the file prefix carries the
// pid, so parallel test processes (and a crashed earlier run) never share
// runtime files.
func testEALConfig() dataplane.EALConfig {
	return dataplane.EALConfig{
		Cores:      fmt.Sprintf("%d,%d", env.mainCore, env.workCore),
		NoHuge:     true,
		MemoryMB:   256,
		FilePrefix: "poolrelay_test_" + strconv.Itoa(os.Getpid()),
		LogLevel:   5,
	}
}

// sweepStale removes the runtime directories of earlier test processes that
// died without closing the EAL (a panicking test skips TestMain's cleanup).
func sweepStale() {
	dirs, _ := filepath.Glob("/var/run/dpdk/poolrelay_test_*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "poolrelay_test_"))
		if err == nil && pid != os.Getpid() && unix.Kill(pid, 0) == unix.ESRCH {
			os.RemoveAll(d)
		}
	}
}

// twoCPUs returns two CPUs the process may run on (the same one twice on a
// single-CPU machine): the EAL's main core and the worker core.
func twoCPUs() (int, int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, 0, err
	}
	var cpus []int
	for c := 0; c < len(set)*64 && len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return 0, 0, errors.New("no CPU in the affinity mask")
	}
	if len(cpus) == 1 {
		return cpus[0], cpus[0], nil
	}
	return cpus[0], cpus[1], nil
}

// leftovers lists what a closed EAL left in its runtime directory or in the
// hugetlbfs mounts under its prefix.
func leftovers(runtimeDir, prefix string) []string {
	var left []string
	if _, err := os.Stat(runtimeDir); err == nil {
		left = append(left, runtimeDir)
	}
	for _, dir := range []string{"/dev/hugepages", "/mnt/huge"} {
		m, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
		left = append(left, m...)
	}
	return left
}

// needDPDK skips a test outside root, saying why; TestMain has already
// failed the run instead in CI.
func needDPDK(t testing.TB) *EAL {
	t.Helper()
	if env.skip != "" {
		t.Skip(env.skip)
	}
	return env.eal
}

// testPorts opens the ports every test shares: two net_null ports of
// 128-byte frames and a net_ring loopback port, one queue each.
func testPorts(t testing.TB) (a, b, r *Port) {
	e := needDPDK(t)
	env.portsOnce.Do(func() {
		open := func(dev string) *Port {
			if env.portsErr != nil {
				return nil
			}
			p, err := e.OpenPort(portConfig(dev), 1, env.pools)
			env.portsErr = err
			return p
		}
		env.a, env.b, env.r = open(nullA), open(nullB), open(ring0)
	})
	if env.portsErr != nil {
		t.Fatal(env.portsErr)
	}
	return env.a, env.b, env.r
}

func portConfig(dev string) dataplane.PortConfig {
	c := dataplane.DefaultPortConfig()
	c.Name, c.Device = PortName(dev), dev
	return c
}

// The child process modes, selected by childEnv.
const (
	childEnv     = "POOLRELAY_DPDK_TEST_CHILD"
	childBadInit = "bad-init"
)

// runChild runs in a fresh process started by a test, where the EAL has not
// been initialised; it prints what it found and returns the exit code.
func runChild(mode string) int {
	if mode != childBadInit {
		fmt.Println("unknown child mode", mode)
		return 2
	}
	cfg := dataplane.EALConfig{Cores: "0", NoHuge: true, MemoryMB: 64, LogLevel: 1,
		FilePrefix: "poolrelay_test_" + strconv.Itoa(os.Getpid())}
	e1, err1 := Init(cfg, []string{"net_no_such_driver0"}, zerolog.Nop())
	e2, err2 := Init(dataplane.EALConfig{}, nil, zerolog.Nop())
	var de *Error
	switch {
	case e1 != nil || err1 == nil:
		fmt.Println("init with an unknown vdev succeeded")
	case !errors.As(err1, &de) || de.Text == "" || de.Errno == 0:
		fmt.Printf("init error %v carries no DPDK errno and text\n", err1)
	case e2 != nil || err2 != err1:
		fmt.Printf("second Init returned %v, %v; want the first result %v\n", e2, err2, err1)
	default:
		if left := leftovers("/var/run/dpdk/"+cfg.FilePrefix, cfg.FilePrefix); len(left) > 0 {
			fmt.Println("failed init left", left)
			return 1
		}
		fmt.Println("ok:", err1)
		return 0
	}
	return 1
}

// TestInitFailure starts the EAL with a device no driver claims, in a child
// process, and expects the DPDK error, the same error from a second Init,
// and no runtime directory left behind.
func TestInitFailure(t *testing.T) {
	needDPDK(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+childBadInit)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok:") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child: %s", bytes.TrimSpace(out[bytes.LastIndex(out, []byte("ok:")):]))
}
