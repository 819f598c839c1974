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
	prefix := fmt.Sprintf("poolrelay_bench_tp%d", os.Getpid())
	defer os.RemoveAll(filepath.Join("/var/run/dpdk", prefix))
	args := []string{
		"-l", fmt.Sprintf("%d,%d", c.mainCore, c.workCore), "--main-lcore", strconv.Itoa(c.mainCore),
		"--file-prefix", prefix, "--log-level", "4", "--no-pci",
	}
	args = append(args, mem.ealArgs(c.memMB)...)
	for _, d := range c.devices() {
		args = append(args, "--vdev", d)
	}
	args = append(args, "--", "-i",
		"--forward-mode="+mode, "--nb-cores=1", "--burst="+strconv.Itoa(c.burst),
		"--total-num-mbufs="+strconv.Itoa(c.mbufs+1))
	cmd := exec.Command(c.testpmd, args...)
	// testpmd's stdout is block-buffered into a pipe: line buffering
	// (stdbuf, from coreutils) lets the driver see each answer as it comes.
	if stdbuf, err := exec.LookPath("stdbuf"); err == nil {
		cmd = exec.Command(stdbuf, append([]string{"-oL", c.testpmd}, args...)...)
	}
	log := &syncbuf.Buffer{}
	cmd.Stderr = log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "bench: %s %s\n", c.testpmd, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", c.testpmd, err)
	}
	// Whatever happens below, testpmd does not outlive the run.
	killer := time.AfterFunc(time.Duration(c.warmup+c.seconds+60)*time.Second, func() { cmd.Process.Kill() })
	defer killer.Stop()
	out := newTestpmdOutput(io.TeeReader(stdout, log))
	send := func(line string) { io.WriteString(stdin, line+"\n") }

	send("start")
	samples := c.warmup + c.seconds + 1 // the first answer is the baseline
	var runErr error
	select {
	case <-out.started:
		tick := time.NewTicker(time.Second)
		for i := 0; i < samples && ctx.Err() == nil; i++ {
			select {
			case <-tick.C:
				send("show port stats all")
			case <-ctx.Done():
			}
		}
		tick.Stop()
		send("stop")
	case <-out.done:
		runErr = errors.New("testpmd ended before forwarding started")
	case <-ctx.Done():
	}
	send("quit")
	stdin.Close()
	<-out.done
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return nil, errors.New("bench: interrupted")
	}
	rates := out.rates(len(c.devices()))
	if runErr == nil && len(rates) < samples {
		runErr = fmt.Errorf("%d rate samples, want %d (%v)", len(rates), samples, werr)
	}
	if runErr != nil {
		return nil, fmt.Errorf("bench: testpmd %s: %w; its output ends:\n%s", mode, runErr, tail(log.String(), 30))
	}
	return rates[1+c.warmup : samples], nil
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
