package egress

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
)

// The tests run real mbufs through real ports: the EAL starts once for the
// process (as in package dpdk's tests), on ordinary pages under a file
// prefix of this process's own, with a net_null port (takes every frame,
// receives generated ones) and a net_ring loopback port (its TX ring fills
// when nobody receives, so its PMD really refuses frames).

const (
	nullDev = "net_null0,size=128"
	ringDev = "net_ring0"
)

var env struct {
	skip       string
	eal        *dpdk.EAL
	pool       *dpdk.Mempool
	null, ring *dpdk.Port
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if reason := setup(); reason != "" {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "egress: DPDK tests must run in CI:", reason)
			return 1
		}
		env.skip = reason
		return m.Run()
	}
	code := m.Run()
	if err := env.eal.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "egress: EAL close:", err)
		code = 1
	}
	return code
}

// setup starts the EAL and opens the ports; it returns why the DPDK tests
// cannot run, or "".
func setup() string {
	if os.Geteuid() != 0 {
		return "not root: DPDK needs root for its runtime directory and memory"
	}
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &cpus); err != nil {
		return "no CPU affinity: " + err.Error()
	}
	core := 0
	for !cpus.IsSet(core) && core < len(cpus)*64 {
		core++
	}
	cfg := dataplane.EALConfig{
		Cores:      strconv.Itoa(core),
		NoHuge:     true,
		MemoryMB:   256,
		FilePrefix: "poolrelay_egress_test_" + strconv.Itoa(os.Getpid()),
		LogLevel:   5,
	}
	e, err := dpdk.Init(cfg, []string{nullDev, ringDev}, zerolog.Nop())
	if errors.Is(err, dpdk.ErrNoDPDK) {
		return err.Error()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "egress: EAL init:", err)
		os.Exit(1)
	}
	env.eal = e
	pools := e.NewPools("egress", 16383, 256, 0)
	env.pool, err = pools.For(-1)
	if err == nil {
		env.null, err = e.OpenPort(portConfig(nullDev), 1, pools)
	}
	if err == nil {
		env.ring, err = e.OpenPort(portConfig(ringDev), 1, pools)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "egress: test setup:", err)
		e.Close()
		os.Exit(1)
	}
	return ""
}

func portConfig(dev string) dataplane.PortConfig {
	c := dataplane.DefaultPortConfig()
	c.Name, c.Device = dpdk.PortName(dev), dev
	return c
}

func needDPDK(t testing.TB) {
	t.Helper()
	if env.skip != "" {
		t.Skip(env.skip)
	}
}
