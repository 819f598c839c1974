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

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/dpdktest"
	"github.com/poolrelay/poolrelay/internal/syncbuf"
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
	dpdktest.Env[*EAL]
	pools     *Pools
	logs      *syncbuf.Buffer // the binding's log output, for tests that check warnings
	tmp       string
	portsOnce sync.Once
	a, b, r   *Port
	portsErr  error
}

// testPrefix is the test processes' file prefix, before the pid.
const testPrefix = "poolrelay_test_"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	defer func() {
		if env.tmp != "" {
			os.RemoveAll(env.tmp)
		}
	}()
	o := dpdktest.Options{Name: "dpdk", Prefix: testPrefix, MemoryMB: 256, LogLevel: 5}
	return dpdktest.Run(m, &env.Env, o, func(cfg dataplane.EALConfig) (*EAL, error) {
		var err error
		if env.tmp, err = os.MkdirTemp("", "dpdk-test-"); err != nil {
			return nil, err
		}
		env.logs = &syncbuf.Buffer{}
		e, err := Init(cfg, []string{nullA, nullB, ring0}, zerolog.New(env.logs))
		if err != nil {
			return nil, err
		}
		env.pools = e.NewPools("test", 8191, 256, 0)
		return e, nil
	})
}

// needDPDK skips a test outside root, saying why; TestMain has already
// failed the run instead in CI.
func needDPDK(t testing.TB) *EAL {
	t.Helper()
	return env.Need(t)
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
		FilePrefix: testPrefix + strconv.Itoa(os.Getpid())}
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
		if left := dpdktest.Leftovers(filepath.Join(dpdktest.RuntimeRoot, cfg.FilePrefix), cfg.FilePrefix); len(left) > 0 {
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
