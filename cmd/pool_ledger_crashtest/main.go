// Command pool_ledger_crashtest is the ledger's crash test: it runs a child
// process that writes to the ledger and the journal as fast as it can,
// acknowledging each write to the parent over a pipe only once the write is
// durable, SIGKILLs
// it at random instants, reopens the ledger (verifying the journal chain,
// repairing a torn tail, replaying cheques) and checks that everything the
// child acknowledged is still there. It repeats this -kills times and ends
// with the line
//
//	kills=N lost=L chain_ok=B
//
// exiting non-zero when anything acknowledged was lost or the chain did not
// verify. `make crash-test` runs it with 200 kills.
//
// What the child acknowledges:
//
//	J index hash   a journal entry appended (durable group commit)
//	R peer total   a cheque accepted from a peer (ReceiveCheque returned)
//	I peer total   a cheque issued to a peer (handed out by Due)
//	C peer by for  a checkpoint holding the peer's lifetime byte counters
//
// After every kill the parent also checks that the store and the journal
// agree on each peer's cheque totals. In a quarter of the rounds it appends
// garbage to the journal before reopening, as a power loss in the middle of
// an unsynced write would leave it, so the torn-tail repair runs too.
//
// A kill -9 leaves the page cache intact, so this tests the software's
// ordering (nothing acknowledged before it is durable, replay idempotent,
// recovery itself crash-safe), not the disk's honesty about fsync.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

// childEnv names the data directory in the child's environment; its
// presence is what makes the process a child.
const childEnv = "POOLRELAY_CRASHTEST_CHILD"

func main() {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := child(dir); err != nil {
			fmt.Fprintln(os.Stderr, "crashtest child:", err)
			os.Exit(2)
		}
		return
	}
	var o options
	flag.IntVar(&o.kills, "kills", 200, "number of SIGKILLs")
	flag.StringVar(&o.dir, "dir", "", "data directory (default: a new temporary directory, removed afterwards)")
	flag.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "random seed for kill instants and torn tails")
	flag.DurationVar(&o.minLife, "min-life", 5*time.Millisecond, "shortest child life before the kill")
	flag.DurationVar(&o.maxLife, "max-life", 400*time.Millisecond, "longest child life before the kill")
	flag.Parse()
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashtest:", err)
		os.Exit(2)
	}
	o.exe, o.out = exe, os.Stdout
	res, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashtest:", err)
	}
	fmt.Println(res.Line())
	if err != nil || !res.OK() {
		os.Exit(1)
	}
}
