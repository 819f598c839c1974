// Command pool_crashtest kills running relays and checks that they come
// back by themselves with nothing acknowledged lost (`make
// crash-test-daemon`, root). Two relays and two end nodes run in network
// namespaces wired with veth pairs, as in the demo:
//
//	[a] a0 ─ r1p0 [r1] r1p1 ─ r2p0 [r2] r2p1 ─ b0 [b]
//
// each relay a pool_relay process on DPDK (net_af_packet on its veth ends,
// --no-huge), each end node a pool_node process. r1 enrolls with r2 once;
// A sends to B through r1 and r2 without pause, so r1 owes r2 and pays it
// with cheques. Then, --kills times, a relay chosen at random is SIGKILLed
// at a random moment and started again with the same configuration, and no
// enroll command follows: the relays must find each other again by
// themselves. After each kill the driver checks that
//
//   - every cheque r2 had acknowledged is still held by r2 and recorded as
//     issued by r1 (cumulative totals on both sides never lower);
//   - both journals verify (the killed one as the kill left it, a torn tail
//     of an unsynced batch allowed and reported; the running one beside its
//     writer);
//   - the peers are connected again, both ends on the new session, and how
//     long that took from the kill;
//   - once the restarted relay accepted a heartbeat from its peer (whose
//     signed lifetime counters reconcile the charges the kill lost since
//     the last checkpoint: see ledger.Ledger.CheckClaim) and the end nodes
//     stopped, the balances the two relays keep of each other mirror within
//     one frame's price (waiting up to 15 s for cheques and frames in
//     flight); what was adopted and the gap are printed;
//   - cheques flow again once the end nodes resumed.
//
// At the end the traffic stops, the balances are compared once more, both
// relays stop cleanly, and both journals must verify without a torn tail.
// A balance that does not mirror fails the run as a loss does.
// The last line is
//
//	daemon_kills=N lost=0 chain_ok=true reconnect_p99_s=X
//
// With --scenario diskfull it runs the full-disk case instead: r2's data
// directory on a small tmpfs that the driver mounts, fills during cheque
// traffic, frees, and unmounts; r2 must show its journal degraded, refuse
// cheques with a reason r1 counts, resume by itself when space returns with
// the gap journalled, and stop without a torn tail. Its last line is
// diskfull_ok=true degraded_s=X resumed_s=Y.
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
	flag.IntVar(&o.kills, "kills", 100, "relay kills")
	flag.StringVar(&o.scenario, "scenario", "kill", "kill (SIGKILL relays --kills times) or diskfull (r2's state on a tmpfs that fills up)")
	flag.Int64Var(&o.seed, "seed", 0, "random seed for the kill moments and targets; 0 picks one (printed)")
	flag.BoolVar(&o.keep, "keep", false, "leave the work directory (configs, journals, logs) behind")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Minute, "give up after this long")
	flag.Parse()
	if o.scenario != "kill" && o.scenario != "diskfull" {
		fmt.Fprintln(os.Stderr, "pool_crashtest: --scenario must be kill or diskfull")
		os.Exit(2)
	}
	lab.Main("pool_crashtest", o.timeout, func(ctx context.Context, out io.Writer) error { return run(ctx, o, out) })
}
