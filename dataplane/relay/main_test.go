package relay

import (
	"fmt"
	"os"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/dpdktest"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/dpdktest/testmain"
	"github.com/poolrelay/poolrelay/dataplane/egress"
)

// The EAL starts once per process: TestMain starts it for every DPDK test
// here, on ordinary pages (--no-huge) under a file prefix carrying the pid,
// and checks after the run that closing it left nothing behind. Engines in
// the tests run on it with OpenOn and hot-plug their own vdevs.
var env dpdktest.Env[*dpdk.EAL]

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(engineChild())
	}
	o := dpdktest.Options{Name: "relay", Prefix: "poolrelay_relaytest_", MemoryMB: 384, LogLevel: 4,
		Distinct: true}
	os.Exit(testmain.Run(m, &env, o))
}

// testConfig is an engine on the given port devices, sized for tests.
func testConfig(devices ...string) Config {
	c := Config{Dataplane: dataplane.DefaultConfig(), Peers: 16, KeySlots: 16}
	c.Dataplane.Mbufs = 2047
	c.Dataplane.MaxRoutes = 1024
	for i, d := range devices {
		pc := dataplane.DefaultPortConfig()
		pc.Name, pc.Device = fmt.Sprintf("p%d", i), d
		// Within egress.AdviseTxDescriptors: the default 512 on an
		// unshaped port draws the egress warning TestOpenOwnsEAL refuses.
		pc.TxDescriptors = egress.AdviseTxDescriptors
		pc.Addresses = []string{"192.0.2.2/24", "2001:db8::2/64"}
		c.Ports = append(c.Ports, pc)
	}
	return c
}
