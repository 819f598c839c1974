package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/journal"
	"github.com/poolrelay/poolrelay/ledger/peer"
)

type options struct {
	kills            int
	dir              string
	seed             uint64
	minLife, maxLife time.Duration
	exe              string
	out              io.Writer
}

// Result is the outcome of a run.
type Result struct {
	Kills int
	// Lost counts acknowledged writes missing after a reopen.
	Lost int
	// Inconsistent counts peers whose stored cheque totals disagree with
	// the journal after a reopen.
	Inconsistent int
	// ChainOK is false once any reopen or verification failed.
	ChainOK bool
	// Torn counts reopens that found and repaired a torn tail.
	Torn int
	// Acked counts acknowledgements received.
	Acked int
}

// Line is the summary line the crash test ends with.
func (r Result) Line() string {
	return fmt.Sprintf("kills=%d lost=%d chain_ok=%t", r.Kills, r.Lost+r.Inconsistent, r.ChainOK)
}

// OK reports a clean run.
func (r Result) OK() bool { return r.Lost == 0 && r.Inconsistent == 0 && r.ChainOK }

// acked is everything the children acknowledged, over all rounds.
type acked struct {
	journal  map[uint64]journal.Hash
	received [numPeers]uint64
	issued   [numPeers]uint64
	by, for_ [numPeers]uint64
	n        int
}

func (a *acked) parse(line string) error {
	f := strings.Fields(line)
	bad := fmt.Errorf("bad acknowledgement %q", line)
	if len(f) < 3 {
		return bad
	}
	nums := make([]uint64, 0, 3)
	for _, s := range f[1:] {
		if f[0] == "J" && len(nums) == 1 {
			break
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return bad
		}
		nums = append(nums, v)
	}
	if f[0] != "J" && nums[0] >= numPeers {
		return bad
	}
	switch f[0] {
	case "J":
		h, err := hex.DecodeString(f[2])
		if err != nil || len(h) != journal.HashSize {
			return bad
		}
		a.journal[nums[0]] = journal.Hash(h)
	case "R":
		a.received[nums[0]] = max(a.received[nums[0]], nums[1])
	case "I":
		a.issued[nums[0]] = max(a.issued[nums[0]], nums[1])
	case "C":
		if len(nums) != 3 {
			return bad
		}
		a.by[nums[0]] = max(a.by[nums[0]], nums[1])
		a.for_[nums[0]] = max(a.for_[nums[0]], nums[2])
	default:
		return bad
	}
	a.n++
	return nil
}

func run(o options) (Result, error) {
	res := Result{ChainOK: true}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "poolrelay-crashtest-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	rng := rand.New(rand.NewPCG(o.seed, 7))
	fmt.Fprintf(o.out, "crashtest: %d kills, seed %d, child life %v..%v, dir %s\n", o.kills, o.seed, o.minLife, o.maxLife, o.dir)
	ack := &acked{journal: make(map[uint64]journal.Hash)}
	start := time.Now()
	for res.Kills < o.kills {
		if err := round(o, rng, ack); err != nil {
			return res, fmt.Errorf("round %d: %w", res.Kills+1, err)
		}
		res.Kills++
		if rng.IntN(4) == 0 {
			if err := tearTail(filepath.Join(o.dir, "journal.pjr"), rng); err != nil {
				return res, err
			}
		}
		lost, inconsistent, torn, err := check(o.dir, ack)
		res.Lost, res.Inconsistent, res.Acked = lost, inconsistent, ack.n
		if torn {
			res.Torn++
		}
		if err != nil {
			res.ChainOK = false
			return res, fmt.Errorf("after kill %d: %w", res.Kills, err)
		}
		if lost > 0 || inconsistent > 0 {
			return res, fmt.Errorf("after kill %d: %d acknowledged writes lost, %d peers inconsistent", res.Kills, lost, inconsistent)
		}
		if res.Kills%25 == 0 || res.Kills == o.kills {
			fmt.Fprintf(o.out, "crashtest: %d kills, %d acknowledgements checked, %d torn tails repaired, %.1fs\n",
				res.Kills, ack.n, res.Torn, time.Since(start).Seconds())
		}
	}
	return res, nil
}

// round starts a child, lets it write for a random time, kills it and
// collects every acknowledgement it got out.
func round(o options, rng *rand.Rand, ack *acked) error {
	cmd := exec.Command(o.exe)
	cmd.Env = append(os.Environ(), childEnv+"="+o.dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	lines := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var perr error
		for sc.Scan() {
			if err := ack.parse(sc.Text()); err != nil && perr == nil {
				perr = err
			}
		}
		lines <- perr
	}()
	life := o.minLife + time.Duration(rng.Int64N(int64(o.maxLife-o.minLife)+1))
	exited := make(chan struct{})
	go func() {
		select {
		case <-time.After(life):
			cmd.Process.Signal(syscall.SIGKILL)
		case <-exited:
		}
	}()
	perr := <-lines // EOF: the child is dead
	err = cmd.Wait()
	close(exited)
	if perr != nil {
		return perr
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		return fmt.Errorf("child ended by itself (%v): %s", err, stderr.String())
	}
	return nil
}

// tearTail appends what a power loss during an unsynced write may leave:
// zeros, or the start of a record followed by noise.
func tearTail(path string, rng *rand.Rand) error {
	var b []byte
	switch rng.IntN(3) {
	case 0:
		b = make([]byte, 1+rng.IntN(512))
	case 1:
		b = append([]byte("pjr1"), 0, 0, 0, byte(rng.IntN(200)))
		for range rng.IntN(100) {
			b = append(b, byte(rng.Uint32()))
		}
	default:
		b = make([]byte, 1+rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(b)
	return err
}

// check reopens the ledger like a restarting relay would, and counts
// acknowledged writes that are missing and peers whose stored cheque totals
// disagree with the journal.
func check(dir string, ack *acked) (lost, inconsistent int, torn bool, err error) {
	l, rec, err := openLedger(dir)
	if err != nil {
		return 0, 0, false, err
	}
	torn = rec.Journal.Torn != nil
	seen := 0
	var jReceived, jIssued [numPeers]uint64
	ids := make(map[peer.ID]int, numPeers)
	for i := range numPeers {
		_, id := peerKey(i)
		ids[id] = i
	}
	err = l.Journal().Records(1, func(r *journal.Record) error {
		if h, ok := ack.journal[r.Index]; ok {
			if h != r.Hash {
				return fmt.Errorf("journal record %d has hash %s, acknowledged %s", r.Index, r.Hash, h)
			}
			seen++
		}
		if r.Type == event.ChequeReceived || r.Type == event.ChequeIssued {
			b, err := r.Event()
			if err != nil {
				return err
			}
			s := b.(*event.ChequeEntry).Signed
			if r.Type == event.ChequeReceived {
				i := ids[s.Issuer]
				jReceived[i] = max(jReceived[i], s.Cumulative)
			} else {
				i := ids[s.Beneficiary]
				jIssued[i] = max(jIssued[i], s.Cumulative)
			}
		}
		return nil
	})
	if err != nil {
		l.Close()
		return 0, 0, torn, err
	}
	lost = len(ack.journal) - seen
	for id, i := range ids {
		v, err := l.Peer(id)
		if errors.Is(err, ledger.ErrUnknownPeer) {
			v = ledger.View{}
		} else if err != nil {
			l.Close()
			return lost, 0, torn, err
		}
		a := v.Account
		for _, c := range []struct{ have, acked uint64 }{
			{a.ReceivedTotal, ack.received[i]}, {a.SentTotal, ack.issued[i]},
			{a.Usage.RelayedBy.Bytes, ack.by[i]}, {a.Usage.RelayedFor.Bytes, ack.for_[i]},
		} {
			if c.have < c.acked {
				lost++
			}
		}
		if a.ReceivedTotal != jReceived[i] || a.SentTotal != jIssued[i] {
			inconsistent++
		}
	}
	if err := l.Close(); err != nil {
		return lost, inconsistent, torn, err
	}
	// The repaired journal must now verify clean, read-only.
	s, err := journal.Verify(filepath.Join(dir, "journal.pjr"), nil)
	if err == nil && s.Torn != nil {
		err = fmt.Errorf("journal still torn after reopen: %s", s.Torn)
	}
	return lost, inconsistent, torn, err
}
