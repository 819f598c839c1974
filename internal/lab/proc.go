package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/poolrelay/poolrelay/internal/netns"
	"github.com/poolrelay/poolrelay/internal/syncbuf"
)

// tailLines is how many of a process's last lines Tail returns.
const tailLines = 30

// Supervisor owns a lab's processes and stops whatever still runs when the
// lab closes, however the run ends.
type Supervisor struct {
	// Log receives every process's output, each line prefixed with the
	// process's name; nil discards it.
	Log io.Writer
	// DeathSignal is what the kernel sends a process if the driver dies
	// (a driver that is SIGKILLed runs no cleanup): SIGTERM lets a relay
	// remove its DPDK runtime files, SIGKILL leaves nothing running for
	// even a moment. 0 is SIGTERM.
	DeathSignal syscall.Signal

	mu    sync.Mutex
	procs []*Proc
}

// Proc is a process of the lab in a namespace, in its own process group,
// whose output is kept.
type Proc struct {
	// Name is what Tail, errors and the log call it: its log file's name
	// without .log.
	Name string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	werr error
}

// Start runs bin with args in ns (netns.Root: the driver's own), its
// output appended to logFile, kept for Output and copied to s.Log.
func (s *Supervisor) Start(ns *netns.NS, logFile, bin string, args ...string) (*Proc, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	name := strings.TrimSuffix(filepath.Base(logFile), ".log")
	p := &Proc{Name: name, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	// Not a context: a process is stopped with SIGTERM and a grace period
	// (Stop), not with the SIGKILL a cancelled context sends.
	p.cmd = ns.Command(context.Background(), bin, args...)
	log := s.Log
	if log == nil {
		log = io.Discard
	}
	w := io.MultiWriter(f, p.out, &PrefixWriter{W: log, Prefix: name + ": "})
	p.cmd.Stdout, p.cmd.Stderr = w, w
	sig := s.DeathSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	// Own process group, so that Stop reaches the process and its
	// children.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: sig}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("lab: starting %s: %w", name, err)
	}
	go func() {
		p.werr = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

// StopAll stops every process started, newest first (Stop, errors
// ignored: it is cleanup).
func (s *Supervisor) StopAll(grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].Stop(grace)
	}
}

// Stop sends SIGTERM to the process group and SIGKILL after grace. It
// returns nil if the process exited with status 0 (now or before), an
// error otherwise, also when it had to be killed.
func (p *Proc) Stop(grace time.Duration) error {
	if p.Exited() {
		return p.exitErr()
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(grace):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("lab: %s did not stop within %v after SIGTERM; killed", p.Name, grace)
	}
}

// Kill sends SIGKILL to the process alone (not its group: a relay killed
// as a crash is) and waits until it is gone.
func (p *Proc) Kill() {
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *Proc) exitErr() error {
	if p.werr != nil {
		return fmt.Errorf("lab: %s exited: %w", p.Name, p.werr)
	}
	return nil
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process ended (exec.Cmd.Wait's error), nil while it runs.
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.werr
}

// Output is everything the process wrote so far, stdout and stderr.
func (p *Proc) Output() string { return p.out.String() }

// Tail is the process's name and its last lines, indented, for error
// messages.
func (p *Proc) Tail() string {
	lines := strings.Split(strings.TrimRight(p.out.String(), "\n"), "\n")
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return p.Name + ":\n" + Indent(strings.Join(lines, "\n"))
}

// Indent indents every line of s by four spaces and ends it with a newline.
func Indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// PrefixWriter writes each complete line to W with Prefix before it (which
// process said it); a partial line waits for its end. It is safe for
// concurrent use.
type PrefixWriter struct {
	W      io.Writer
	Prefix string

	mu   sync.Mutex
	part []byte
}

// Write implements io.Writer.
func (p *PrefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.part = append(p.part, b...)
	for {
		i := bytes.IndexByte(p.part, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.W, "%s%s\n", p.Prefix, p.part[:i])
		p.part = p.part[i+1:]
	}
	return len(b), nil
}

// Retry calls fn every poll until it returns nil, d passes (its last error)
// or ctx ends.
func Retry(ctx context.Context, d, poll time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// WaitFor is Retry that gives up at once when p exits, with an error
// saying so.
func WaitFor(ctx context.Context, d, poll time.Duration, p *Proc, fn func() error) error {
	var exited error
	err := Retry(ctx, d, poll, func() error {
		if p.Exited() {
			exited = fmt.Errorf("lab: %s exited: %v", p.Name, p.werr)
			return nil // stops Retry
		}
		return fn()
	})
	if exited != nil {
		return exited
	}
	return err
}

// Main is a lab command's main after its flags: it runs run with standard
// output and a context that SIGINT and SIGTERM cancel and timeout ends, and
// exits with 130 if run failed because it was interrupted, 1 if it failed
// otherwise, after printing "name: error" to standard error. SIGPIPE is
// ignored: a closed standard output (`pool_demo | head`) must not kill the
// driver before it has stopped its processes and removed its namespaces;
// the write fails instead and the cleanup runs.
func Main(name string, timeout time.Duration, run func(ctx context.Context, out io.Writer) error) {
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	err := run(ctx, os.Stdout)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		if errors.Is(err, context.Canceled) {
			os.Exit(130)
		}
		os.Exit(1)
	}
}
