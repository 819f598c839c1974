package relay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/egress"
)

// The EAL starts once per process: TestMain starts it for every DPDK test
// here, on ordinary pages (--no-huge) under a file prefix carrying the pid,
// and checks after the run that closing it left nothing behind. Engines in
// the tests run on it with OpenOn and hot-plug their own vdevs.
var env struct {
	eal  *dpdk.EAL
	skip string // why DPDK tests skip; empty when they run
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(engineChild())
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ci := os.Getenv("CI") != ""
	if os.Geteuid() != 0 {
		env.skip = "not root: DPDK needs root for its runtime directory and memory"
		if ci {
			fmt.Fprintln(os.Stderr, "relay: DPDK tests must run as root in CI")
			return 1
		}
		return m.Run()
	}
	main, work, err := twoCPUs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		return 1
	}
	prefix := "poolrelay_relaytest_" + strconv.Itoa(os.Getpid())
	cfg := dataplane.EALConfig{Cores: fmt.Sprintf("%d,%d", main, work), NoHuge: true, MemoryMB: 384, FilePrefix: prefix, LogLevel: 4}
	env.eal, err = dpdk.Init(cfg, nil, zerolog.New(os.Stderr).Level(zerolog.WarnLevel))
	if errors.Is(err, dpdk.ErrNoDPDK) && !ci {
		env.skip = err.Error()
		return m.Run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay: EAL init:", err)
		return 1
	}
	code := m.Run()
	dir := env.eal.RuntimeDir()
	if err := env.eal.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "relay: EAL close:", err)
		code = 1
	}
	if _, err := os.Stat(dir); err == nil {
		fmt.Fprintln(os.Stderr, "relay: EAL runtime directory left behind:", dir)
		code = 1
	}
	if m, _ := filepath.Glob("/dev/hugepages/" + prefix + "*"); len(m) > 0 {
		fmt.Fprintln(os.Stderr, "relay: hugepage files left behind:", m)
		code = 1
	}
	return code
}

// twoCPUs returns the first two CPUs of the affinity mask: the EAL's main
// core and the one worker core.
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
	if len(cpus) < 2 {
		return 0, 0, errors.New("the DPDK tests need two CPUs")
	}
	return cpus[0], cpus[1], nil
}

// needEAL skips a test when DPDK cannot run (never in CI: TestMain has
// failed the run there already).
func needEAL(t testing.TB) *dpdk.EAL {
	t.Helper()
	if env.skip != "" {
		t.Skip(env.skip)
	}
	return env.eal
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
