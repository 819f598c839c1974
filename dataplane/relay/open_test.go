package relay

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/dpdktest"
)

// childEnv makes the test binary run engineChild instead of the tests: an
// engine that owns its EAL needs a process of its own, since the EAL starts
// once per process and TestMain's is already up.
const childEnv = "POOLRELAY_RELAY_TEST_CHILD"

// TestOpenOwnsEAL runs Open, Start and Stop in a child process and checks
// that Stop took everything down in order: the child exits cleanly, its EAL
// runtime directory is gone, and DPDK logged no complaint about ports
// stopped under a worker.
func TestOpenOwnsEAL(t *testing.T) {
	env.Need(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "child: ok") {
		t.Fatalf("child did not finish:\n%s", text)
	}
	for _, bad := range []string{"not ready", "Invalid port", "ERROR", `"level":"error"`, `"level":"warn"`} {
		if strings.Contains(text, bad) {
			t.Errorf("child output mentions %q:\n%s", bad, text)
		}
	}
}

// engineChild is the child's whole life: an engine on two net_null ports
// that owns its EAL, relaying for half a second, then Stop.
func engineChild() int {
	main, work, err := dpdktest.TwoCPUs(true)
	if err != nil {
		fmt.Println("child:", err)
		return 1
	}
	cfg := testConfig("net_null_c0,size=128", "net_null_c1,size=128")
	prefix := "poolrelay_relaychild_" + strconv.Itoa(os.Getpid())
	cfg.EAL = dataplane.EALConfig{Cores: fmt.Sprintf("%d,%d", main, work), NoHuge: true, MemoryMB: 256, FilePrefix: prefix, LogLevel: 5}
	e, err := Open(cfg, zerolog.New(os.Stdout))
	if err != nil {
		fmt.Println("child: open:", err)
		return 1
	}
	dir := "/var/run/dpdk/" + prefix
	if _, err := os.Stat(dir); err != nil {
		fmt.Println("child: no runtime directory while running:", err)
		return 1
	}
	if err := e.Start(); err != nil {
		fmt.Println("child: start:", err)
		return 1
	}
	time.Sleep(500 * time.Millisecond)
	// net_null hands out zeroed frames: all dropped as unknown EtherType.
	rx := e.Counters().Port(0).RxPackets
	if err := e.Stop(); err != nil {
		fmt.Println("child: stop:", err)
		return 1
	}
	if _, err := os.Stat(dir); err == nil {
		fmt.Println("child: runtime directory left behind:", dir)
		return 1
	}
	if rx == 0 {
		fmt.Println("child: the worker received nothing")
		return 1
	}
	fmt.Println("child: ok, received", rx)
	return 0
}
