package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/poolrelay/poolrelay/internal/syncbuf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// testpmdRun runs dpdk-testpmd in forwarding mode mode on the run's vdevs
// with one forwarding core, driving it through its command line on stdin:
// start, then "show port stats all" once a second (each answer carries the
// rates since the previous one), then stop and quit. It returns the
// per-second forwarding rates (frames sent on both ports, in Mpps) of the
// measured seconds, after the warm-up ones.
//
// Driving it beats --stats-period, whose period drifts to two seconds on
// these machines (it sleeps a second between checks of the period).
func testpmdRun(ctx context.Context, c *config, mem *memory, mode string) ([]float64, error) {
	tp, err := startTestpmd(c, mem, mode, c.devices(), nil)
	if err != nil {
		return nil, err
	}
	samples := c.warmup + c.seconds + 1 // the first answer is the baseline
	var runErr error
	select {
	case <-tp.out.started:
		tick := time.NewTicker(time.Second)
		for i := 0; i < samples && ctx.Err() == nil; i++ {
			select {
			case <-tick.C:
				tp.send("show port stats all")
			case <-ctx.Done():
			}
		}
		tick.Stop()
	case <-tp.out.done:
		runErr = errors.New("testpmd ended before forwarding started")
	case <-ctx.Done():
	}
	werr := tp.finish()
	if ctx.Err() != nil {
		return nil, errors.New("bench: interrupted")
	}
	rates := tp.out.rates(len(c.devices()))
	if runErr == nil && len(rates) < samples {
		runErr = fmt.Errorf("%d rate samples, want %d (%v)", len(rates), samples, werr)
	}
	if runErr != nil {
		return nil, fmt.Errorf("bench: testpmd %s: %w; its output ends:\n%s", mode, runErr, tail(tp.log.String(), 30))
	}
	return rates[1+c.warmup : samples], nil
}

// testpmdProc is a running dpdk-testpmd, forwarding in one mode with one
// forwarding core (the worker core) and driven through its stdin.
type testpmdProc struct {
	mode   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *testpmdOutput
	log    *syncbuf.Buffer
	killer *time.Timer
	prefix string
}

// startTestpmd starts dpdk-testpmd in forwarding mode mode on devices,
// with extra testpmd (not EAL) arguments, and sends it "start"; its
// out.started closes once it forwards. finish stops it.
func startTestpmd(c *config, mem *memory, mode string, devices, extra []string) (*testpmdProc, error) {
	prefix := fmt.Sprintf("poolrelay_bench_tp%d", os.Getpid())
	args := []string{
		"-l", fmt.Sprintf("%d,%d", c.mainCore, c.workCore), "--main-lcore", strconv.Itoa(c.mainCore),
		"--file-prefix", prefix, "--log-level", "4", "--no-pci",
	}
	args = append(args, mem.ealArgs(c.memMB)...)
	for _, d := range devices {
		args = append(args, "--vdev", d)
	}
	args = append(args, "--", "-i",
		"--forward-mode="+mode, "--nb-cores=1", "--burst="+strconv.Itoa(c.burst),
		"--total-num-mbufs="+strconv.Itoa(c.mbufs+1))
	args = append(args, extra...)
	cmd := exec.Command(c.testpmd, args...)
	// testpmd's stdout is block-buffered into a pipe: line buffering
	// (stdbuf, from coreutils) lets the driver see each answer as it comes.
	if stdbuf, err := exec.LookPath("stdbuf"); err == nil {
		cmd = exec.Command(stdbuf, append([]string{"-oL", c.testpmd}, args...)...)
	}
	tp := &testpmdProc{mode: mode, cmd: cmd, log: &syncbuf.Buffer{}, prefix: prefix}
	cmd.Stderr = tp.log
	var err error
	if tp.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "bench: %s %s\n", c.testpmd, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		os.RemoveAll(filepath.Join("/var/run/dpdk", prefix))
		return nil, fmt.Errorf("bench: start %s: %w", c.testpmd, err)
	}
	// Whatever happens, testpmd does not outlive the run.
	tp.killer = time.AfterFunc(time.Duration(c.warmup+c.seconds+60)*time.Second, func() { cmd.Process.Kill() })
	tp.out = newTestpmdOutput(io.TeeReader(stdout, tp.log))
	tp.send("start")
	return tp, nil
}

func (tp *testpmdProc) send(line string) { io.WriteString(tp.stdin, line+"\n") }

// finish stops forwarding, quits testpmd, waits for it and removes its
// runtime directory; it returns testpmd's exit status.
func (tp *testpmdProc) finish() error {
	defer os.RemoveAll(filepath.Join("/var/run/dpdk", tp.prefix))
	defer tp.killer.Stop()
	tp.send("stop")
	tp.send("quit")
	tp.stdin.Close()
	<-tp.out.done
	return tp.cmd.Wait()
}

// testpmdOutput reads testpmd's stdout: it signals when forwarding has
// started and collects every Tx-pps figure.
type testpmdOutput struct {
	started chan struct{}
	done    chan struct{}
	txpps   []float64 // valid once done is closed
}

func newTestpmdOutput(r io.Reader) *testpmdOutput {
	o := &testpmdOutput{started: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		started := false
		s := bufio.NewScanner(r)
		for s.Scan() {
			line := s.Text()
			switch {
			case !started && strings.Contains(line, "packet forwarding - ports="):
				started = true
				close(o.started)
			case strings.Contains(line, "Tx-pps:"):
				if f := strings.Fields(line); len(f) >= 2 {
					v, _ := strconv.ParseFloat(f[1], 64)
					o.txpps = append(o.txpps, v)
				}
			}
		}
	}()
	return o
}

// rates sums the Tx-pps of the ports in each answer, in Mpps. Call it once
// done is closed.
func (o *testpmdOutput) rates(ports int) []float64 {
	var r []float64
	for i := 0; i+ports <= len(o.txpps); i += ports {
		sum := 0.0
		for _, v := range o.txpps[i : i+ports] {
			sum += v
		}
		r = append(r, sum/1e6)
	}
	return r
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
