package lab

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/internal/netns"
	"github.com/poolrelay/poolrelay/internal/syncbuf"
)

func TestPrefixWriter(t *testing.T) {
	var out bytes.Buffer
	w := &PrefixWriter{W: &out, Prefix: "r1: "}
	for _, s := range []string{"one\ntw", "o\n", "", "three\nfour"} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	// "four" has no end yet: it waits.
	if got, want := out.String(), "r1: one\nr1: two\nr1: three\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestIndent(t *testing.T) {
	if got, want := Indent("a\nb\n\n"), "    a\n    b\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	n := 0
	err := Retry(ctx, time.Minute, time.Millisecond, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("Retry = %v after %d calls, want nil after 3", err, n)
	}

	start := time.Now()
	err = Retry(ctx, 30*time.Millisecond, 5*time.Millisecond, func() error { return errors.New("never") })
	if err == nil || err.Error() != "never" || time.Since(start) < 30*time.Millisecond {
		t.Errorf("Retry = %v after %v, want fn's last error after 30ms", err, time.Since(start))
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Retry(cctx, time.Minute, time.Millisecond, func() error { return errors.New("never") }); !errors.Is(err, context.Canceled) {
		t.Errorf("Retry on a cancelled context = %v", err)
	}
}

func TestDevice(t *testing.T) {
	r := &Relay{Ports: [2]string{"x-r2p0", "x-r2p1"}, index: 1}
	if got, want := r.Devices("af_packet"), [2]string{"net_af_packet2,iface=x-r2p0,qpairs=1", "net_af_packet3,iface=x-r2p1,qpairs=1"}; got != want {
		t.Errorf("af_packet: %q, want %q", got, want)
	}
	if got, want := r.Devices("af_xdp")[1], "net_af_xdp3,iface=x-r2p1,start_queue=0,queue_count=1"; got != want {
		t.Errorf("af_xdp: %q, want %q", got, want)
	}
}

// start runs a shell script under a Supervisor in the test's namespace,
// its log in the test's directory.
func start(t *testing.T, s *Supervisor, name, script string) *Proc {
	t.Helper()
	p, err := s.Start(netns.Root, logFile(t, name), "/bin/sh", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(time.Second) })
	return p
}

var logDirs = map[*testing.T]string{}

// logFile is the test's log file for process name.
func logFile(t *testing.T, name string) string {
	if logDirs[t] == "" {
		logDirs[t] = t.TempDir()
	}
	return filepath.Join(logDirs[t], name+".log")
}

// waitOutput waits until p has written want.
func waitOutput(t *testing.T, p *Proc, want string) {
	t.Helper()
	if err := WaitFor(context.Background(), 10*time.Second, 5*time.Millisecond, p, func() error {
		if !strings.Contains(p.Output(), want) {
			return errors.New("no " + want + " yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("%v; output %q", err, p.Output())
	}
}

func TestProcStop(t *testing.T) {
	var log syncbuf.Buffer
	s := &Supervisor{Log: &log}
	// A process that exits 0 on SIGTERM, as pool_relay does: Stop is nil,
	// and its output went to Output, the log file and the prefixed log.
	clean := start(t, s, "clean", `trap 'echo bye; exit 0' TERM; echo hello; while :; do sleep 0.05; done`)
	waitOutput(t, clean, "hello")
	if err := clean.Stop(5 * time.Second); err != nil {
		t.Errorf("Stop of a clean exit: %v", err)
	}
	if !clean.Exited() || clean.Err() != nil {
		t.Errorf("Exited %v, Err %v", clean.Exited(), clean.Err())
	}
	// (The shell may report its sleep's termination between the lines.)
	ok := func(s, prefix string) bool {
		return strings.HasPrefix(s, prefix+"hello\n") && strings.HasSuffix(s, prefix+"bye\n")
	}
	if got := clean.Output(); !ok(got, "") {
		t.Errorf("Output %q", got)
	}
	if got := log.String(); !ok(got, "clean: ") {
		t.Errorf("log %q", got)
	}
	if b, err := os.ReadFile(logFile(t, "clean")); err != nil || !ok(string(b), "") {
		t.Errorf("log file %q, %v", b, err)
	}
	if err := clean.Stop(time.Second); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	// One that ignores SIGTERM is killed after the grace period, and
	// Stop says so.
	stubborn := start(t, s, "stubborn", `trap '' TERM; echo up; while :; do sleep 0.05; done`)
	waitOutput(t, stubborn, "up")
	t0 := time.Now()
	err := stubborn.Stop(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "stubborn did not stop within 200ms") {
		t.Errorf("Stop of a process ignoring SIGTERM: %v", err)
	}
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Errorf("killed after %v, before the grace period", d)
	}

	// One that fails: Stop (it has exited already) and WaitFor report it.
	failed := start(t, s, "failed", `echo oops; exit 3`)
	<-failed.Done()
	if err := failed.Stop(time.Second); err == nil || !strings.Contains(err.Error(), "failed exited: exit status 3") {
		t.Errorf("Stop of a failed process: %v", err)
	}
	// WaitFor gives up at once, not after its minute.
	t0 = time.Now()
	err = WaitFor(context.Background(), time.Minute, time.Millisecond, failed, func() error { return errors.New("waiting") })
	if err == nil || !strings.Contains(err.Error(), "failed exited: exit status 3") || time.Since(t0) > 10*time.Second {
		t.Errorf("WaitFor on an exited process: %v after %v", err, time.Since(t0))
	}
	if got := failed.Tail(); got != "failed:\n    oops\n" {
		t.Errorf("Tail %q", got)
	}
}

func TestProcKillAndStopAll(t *testing.T) {
	s := &Supervisor{}
	var ps []*Proc
	for i := range 3 {
		ps = append(ps, start(t, s, "p"+strconv.Itoa(i), `echo up; while :; do sleep 0.05; done`))
	}
	for _, p := range ps {
		waitOutput(t, p, "up")
	}
	// Kill is SIGKILL, no grace: the process ends by the signal.
	ps[0].Kill()
	if !ps[0].Exited() || ps[0].Err() == nil || !strings.Contains(ps[0].Err().Error(), "killed") {
		t.Errorf("after Kill: exited %v, err %v", ps[0].Exited(), ps[0].Err())
	}
	s.StopAll(5 * time.Second)
	for _, p := range ps {
		if !p.Exited() {
			t.Errorf("%s still runs after StopAll", p.Name)
		}
	}
}

func TestTailKeepsLastLines(t *testing.T) {
	s := &Supervisor{}
	p := start(t, s, "many", `i=0; while [ $i -lt 100 ]; do echo line$i; i=$((i+1)); done`)
	<-p.Done()
	tail := p.Tail()
	lines := strings.Split(strings.TrimSuffix(tail, "\n"), "\n")
	if len(lines) != tailLines+1 || lines[0] != "many:" || lines[1] != "    line70" || lines[tailLines] != "    line99" {
		t.Errorf("Tail:\n%s", tail)
	}
}
