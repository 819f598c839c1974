package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/poolrelay/poolrelay/internal/lab"
)

// options configure a run.
type options struct {
	bin      string
	kills    int
	scenario string
	seed     int64
	keep     bool
	timeout  time.Duration
	// log, when set, receives the processes' output (tests).
	log io.Writer
}

// rig is the running lab: r1 and r2 between end nodes A and B.
type rig struct {
	*lab.Lab
	r1, r2 *lab.Relay
	nodeA  lab.Node
	nodeB  lab.Node
	a, b   *lab.Proc
}

// rate and size of A's traffic: 2000 frames/s of 1000 bytes make r1 owe r2
// past the early-settlement point (half of payment_threshold below) about
// every half second, so cheques flow all the time.
const (
	frameRate = 2000
	frameSize = 1000
)

// newRig builds the topology, starts the relays (r1 enrolls with r2: the one
// operator action of the run) and the end nodes, and waits for r1's first
// cheque to r2. dataDir2, if set, is r2's data directory.
func newRig(ctx context.Context, o options, out io.Writer, dataDir2 string) (*rig, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("root is needed: the crash test makes network namespaces and runs DPDK")
	}
	l, err := lab.New(lab.Config{
		Base: "ct", Work: "pool_crashtest-", What: "run", Bin: o.bin, Net: 78, Relays: 2,
		Keep: o.keep, Log: o.log,
		// A relay killed with the driver leaves at once: the driver
		// kills relays itself, and none may outlive it.
		DeathSignal: syscall.SIGKILL,
		CLITimeout:  20 * time.Second,
		Poll:        50 * time.Millisecond,
	}, out)
	if err != nil {
		return nil, err
	}
	g := &rig{Lab: l, r1: l.Relays[0], r2: l.Relays[1]}
	if err := g.start(ctx, out, dataDir2); err != nil {
		l.Close()
		return nil, err
	}
	if _, err := g.waitCheques(ctx, 0, 30*time.Second); err != nil {
		l.Close()
		return nil, fmt.Errorf("no cheque from r1 to r2 after the start: %w", err)
	}
	return g, nil
}

func (g *rig) start(ctx context.Context, out io.Writer, dataDir2 string) (err error) {
	if dataDir2 != "" {
		g.r2.Dir = dataDir2
	}
	for _, r := range g.Relays {
		if err := g.Start(r, relayConfig(r)); err != nil {
			return err
		}
		if err := g.WaitUp(ctx, r); err != nil {
			return err
		}
		if err := g.Identify(ctx, r); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "==> r1 (peer %.8s) enrolls with r2 (peer %.8s) at %s: the run's only enroll\n", g.r1.ID, g.r2.ID, g.r2.Addr+"@"+g.r2.Endpoint(0))
	if err := g.Enroll(ctx, g.r1, g.r2); err != nil {
		return err
	}
	if g.nodeA, err = g.NewNode(ctx, "a"); err != nil {
		return err
	}
	if g.nodeB, err = g.NewNode(ctx, "b"); err != nil {
		return err
	}
	return g.startTraffic(ctx)
}

// startRelay starts r's daemon again and waits until its socket answers.
func (g *rig) startRelay(ctx context.Context, r *lab.Relay) error {
	if err := g.Restart(r); err != nil {
		return err
	}
	return g.WaitUp(ctx, r)
}

// startTraffic (re)starts the end nodes: B enrolled with r2 as a sink, A
// enrolled with r1 sending to B through r2 without end.
func (g *rig) startTraffic(ctx context.Context) error {
	g.stopTraffic()
	var err error
	if g.b, err = g.StartSink(ctx, g.r2, g.nodeB); err != nil {
		return err
	}
	g.a, err = g.Sup.Start(g.A, filepath.Join(g.Work, "a.log"), g.NodeBin,
		g.SenderArgs(g.nodeA, g.nodeB.Address, []*lab.Relay{g.r2}, 1000000000, frameSize, frameRate)...)
	return err
}

// stopTraffic stops the end nodes, if running.
func (g *rig) stopTraffic() {
	for _, p := range []*lab.Proc{g.a, g.b} {
		if p != nil {
			p.Stop(5 * time.Second)
		}
	}
	g.a, g.b = nil, nil
}

// relayConfig is a relay's TOML: the demo's small thresholds (cheques every
// half second at the lab's rate), a short tick so reconnection is seen
// soon, a checkpoint every 100 ms so that a crash loses little traffic
// charge not yet in the store, and forgiveness on r1 for A.
func relayConfig(r *lab.Relay) string {
	// End nodes pay no cheques: r1 forgives A's debt faster than A's
	// traffic makes it (about 2.5 MB/s), or A would be cut off for debt
	// within seconds. r2 forgives nothing, so r1 pays it all in cheques.
	forgive := 0
	if r.Name == "r1" {
		forgive = 4_000_000
	}
	return r.BaseConfig("pool_crashtest", "af_packet") + `
[control]
heartbeat_interval = "1s"
tick = "100ms"
peer_timeout = "10s"

` + lab.Settlement + fmt.Sprintf(`cheque_retry_max = "1s"
checkpoint_interval = "100ms"
score_half_volume = 1048576
class_tick = "1s"
score_prior_bytes = 65536
forgive_per_second = %d
`, forgive)
}

// control returns r's control counters (stats --json).
func (g *rig) control(ctx context.Context, r *lab.Relay) (map[string]uint64, error) {
	st, err := g.Stats(ctx, r)
	return st.Control, err
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
