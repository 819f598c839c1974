package egress

import (
	"fmt"
	"os"
	"testing"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/dpdktest"
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
	dpdktest.Env[*dpdk.EAL]
	pool       *dpdk.Mempool
	null, ring *dpdk.Port
}

func TestMain(m *testing.M) {
	o := dpdktest.Options{Name: "egress", Prefix: "poolrelay_egress_test_", MemoryMB: 256, LogLevel: 5,
		Unavailable: dpdk.ErrNoDPDK}
	os.Exit(dpdktest.Run(m, &env.Env, o, setup))
}

// setup starts the EAL and opens the ports.
func setup(cfg dataplane.EALConfig) (*dpdk.EAL, error) {
	e, err := dpdk.Init(cfg, []string{nullDev, ringDev}, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	pools := e.NewPools("egress", 16383, 256, 0)
	env.pool, err = pools.For(-1)
	if err == nil {
		env.null, err = e.OpenPort(portConfig(nullDev), 1, pools)
	}
	if err == nil {
		env.ring, err = e.OpenPort(portConfig(ringDev), 1, pools)
	}
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("test setup: %w", err)
	}
	return e, nil
}

func portConfig(dev string) dataplane.PortConfig {
	c := dataplane.DefaultPortConfig()
	c.Name, c.Device = dpdk.PortName(dev), dev
	return c
}

func needDPDK(t testing.TB) {
	t.Helper()
	env.Need(t)
}
