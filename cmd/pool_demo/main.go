// Command pool_demo is the one-command demo (`make demo`): three relays and
// two end nodes in network namespaces, wired with veth pairs,
//
//	[a] a0 ─ r1p0 [r1] r1p1 ─ r2p0 [r2] r2p1 ─ r3p0 [r3] r3p1 ─ b0 [b]
//
// each relay a pool_relay process on DPDK (net_af_packet, or net_af_xdp
// with --vdev af_xdp, on its two veth ends, --no-huge), each end node a
// pool_node process on a kernel UDP socket. The relays enroll with their neighbours over the data plane, the end nodes
// with their relay; A opens a route through r1, r2 and r3 to B and sends POOL
// traffic, B counts it. Then it prints each relay's status, peers and cheques
// and verifies each journal, and removes every namespace, process and file
// it made, also when interrupted.
//
// The ledger thresholds are small so that the traffic of a demo is enough for
// r1 to owe r2 (and r2 r3) past the early-settlement point: each sends the
// next a signed cheque, which the receiver verifies and journals.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/poolrelay/poolrelay/internal/lab"
)

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory holding pool_relay and pool_node")
	flag.IntVar(&o.frames, "frames", 1000, "end-to-end frames A sends to B")
	flag.IntVar(&o.size, "size", 1000, "payload bytes per frame")
	flag.IntVar(&o.rate, "rate", 500, "frames per second A sends")
	flag.StringVar(&o.vdev, "vdev", "af_packet", "the relays' DPDK ports on their veths: af_packet or af_xdp")
	flag.BoolVar(&o.keep, "keep", false, "leave the work directory (configs, journals, logs) behind")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "give up after this long")
	flag.StringVar(&o.jsonDir, "json-dir", "", "write each relay's final pool_relay status --json and peers --json output to DIR/r1.status.json, DIR/r1.peers.json, ...")
	flag.Parse()
	if o.vdev != "af_packet" && o.vdev != "af_xdp" {
		fmt.Fprintln(os.Stderr, "pool_demo: --vdev must be af_packet or af_xdp")
		os.Exit(2)
	}
	lab.Main("pool_demo", o.timeout, func(ctx context.Context, out io.Writer) error { return run(ctx, o, out) })
}

// options configure a demo run.
type options struct {
	bin    string
	frames int
	size   int
	rate   int
	keep   bool
	// jsonDir, when set, receives each relay's final status and peers as
	// JSON (NAME.status.json, NAME.peers.json).
	jsonDir string
	// vdev is af_packet or af_xdp.
	vdev    string
	timeout time.Duration
	// log, when set, receives the processes' output (tests).
	log io.Writer
}
