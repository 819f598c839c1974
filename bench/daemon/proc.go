package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/ctl/socket"
	"github.com/poolrelay/poolrelay/internal/syncbuf"
)

// lab is one benchmark's private world: a directory holding the
// configuration (the shipped one with its paths moved in here), the key
// files, the relay's data, the vhost-user sockets and the control socket;
// the EAL file prefixes of the processes it starts; and those processes.
// close removes all of it, also after an interrupt.
type lab struct {
	dir    string
	bins   string // where pool_relay and pool_gen are
	config string // the shipped configuration's path
	text   string // its text with paths moved into dir
	tag    string // unique per lab: file prefixes

	mu       sync.Mutex
	procs    []*proc
	prefixes []string
}

// Device strings of the generator's side of the pair, and the MACs the
// shipped bench configurations give the static peers.
const (
	genMAC0  = "02:00:00:00:00:01"
	genMAC1  = "02:00:00:00:00:03"
	relayMAC = "02:00:00:00:00:02"
)

// newLab makes the directory and the configuration: every path the shipped
// file names under /var/lib/pool_relay-bench and /run/pool_relay/bench moves
// into the lab, the EAL file prefix becomes the lab's, and the metrics
// exporter is off (its port would collide with another lab's). The key
// files the configuration names are created, mode 0600.
func newLab(bins, config string) (*lab, error) {
	raw, err := os.ReadFile(config)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	dir, err := os.MkdirTemp("", "poolrelay-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	l := &lab{dir: dir, bins: bins, config: config, tag: fmt.Sprintf("%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)}
	text := string(raw)
	text = strings.ReplaceAll(text, "/var/lib/pool_relay-bench", filepath.Join(dir, "data"))
	text = strings.ReplaceAll(text, "/run/pool_relay/bench", filepath.Join(dir, "bench"))
	text = regexp.MustCompile(`(?m)^file_prefix = .*$`).ReplaceAllString(text, fmt.Sprintf("file_prefix = %q", l.relayPrefix()))
	text = regexp.MustCompile(`(?m)^metrics_listen = .*$`).ReplaceAllString(text, `metrics_listen = ""`)
	l.text = text
	l.prefixes = append(l.prefixes, l.relayPrefix())
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		l.close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	for _, m := range regexp.MustCompile(`(?m)^key_file = "([^"]+)"`).FindAllStringSubmatch(text, -1) {
		if err := writeKey(m[1]); err != nil {
			l.close()
			return nil, err
		}
	}
	if err := os.WriteFile(l.configPath(), []byte(text), 0o600); err != nil {
		l.close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	return l, nil
}

// writeKey writes a fresh pre-shared key file: 32 random bytes, 0600.
func writeKey(path string) error {
	k := make([]byte, hopmac.KeySize)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	if _, err := f.Read(k); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(path, k, 0o600); err != nil {
		return fmt.Errorf("bench: key file: %w", err)
	}
	return nil
}

func (l *lab) configPath() string   { return filepath.Join(l.dir, "relay.toml") }
func (l *lab) ctlSocket() string    { return filepath.Join(l.dir, "bench.sock") }
func (l *lab) vhost(n int) string   { return filepath.Join(l.dir, fmt.Sprintf("bench-p%d.sock", n)) }
func (l *lab) keyFile(n int) string { return filepath.Join(l.dir, "data", fmt.Sprintf("gen%d.key", n)) }
func (l *lab) relayPrefix() string  { return "poolrelay_bench_" + l.tag }

// genPorts are pool_gen's (or Pktgen's) two virtio-user ports on the
// relay's vhost-user sockets: the first sends into p0, the second receives
// from p1.
func (l *lab) genPorts() []string {
	return []string{
		fmt.Sprintf("net_virtio_user0,path=%s,queues=1,mac=%s", l.vhost(0), genMAC0),
		fmt.Sprintf("net_virtio_user1,path=%s,queues=1,mac=%s", l.vhost(1), genMAC1),
	}
}

// client is the relay's control socket.
func (l *lab) client() *socket.Client {
	return &socket.Client{Path: l.ctlSocket(), Timeout: 10 * time.Second}
}

// proc is a child process in its own process group, killed with its group.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	err  error
}

// start runs bin with args in its own process group, dying with the bench
// (Pdeathsig) should the bench be killed outright; stdout and stderr are
// kept.
func (l *lab) start(name string, bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = l.dir
	p := &proc{name: name, cmd: cmd, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p, nil
}

// stop sends SIGTERM to p's group and waits up to grace before SIGKILL.
func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return p.err
}

// wait waits for p to end, or ctx; on ctx it stops p.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		_ = p.stop(5 * time.Second)
		return ctx.Err()
	}
}

// tail is the last n lines of p's output.
func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.out.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startRelay starts `pool_relay start` on the lab's configuration and
// waits until its control socket answers.
func (l *lab) startRelay(ctx context.Context) (*proc, error) {
	p, err := l.start("pool_relay", filepath.Join(l.bins, "pool_relay"), "start", "--config", l.configPath(), "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := l.client().Status(cctx)
		cancel()
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("bench: pool_relay ended at start (%v); its output ends:\n%s", p.err, p.tail(20))
		case <-ctx.Done():
			_ = p.stop(10 * time.Second)
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = p.stop(10 * time.Second)
			return nil, fmt.Errorf("bench: pool_relay's socket did not answer within 60s: %v; its output ends:\n%s", err, p.tail(20))
		}
	}
}

// genRun is what one pool_gen run reported.
type genRun struct {
	tx, rx, badMAC uint64
	secs           float64
	out            string
}

var (
	reGenRow  = regexp.MustCompile(`(?m)^(tx|rx_pool|rx_bad_mac)\s+(\d+)\s`)
	reGenSecs = regexp.MustCompile(`(?m)^run: .* ([0-9.]+) s$`)
)

// genOptions choose pool_gen's keys: the lab's own key files (signed, as
// the static peers expect), a key file of another key, or none.
type genOptions struct {
	size     int
	sessions int
	duration time.Duration
	keyFile  string // "" sends unsigned frames
	rxKey    string // "" verifies nothing coming back
}

// runGen runs pool_gen on the generator's side of the pair and parses its
// report.
func (l *lab) runGen(ctx context.Context, o genOptions) (genRun, error) {
	prefix := fmt.Sprintf("poolrelay_gen_%s_%d", l.tag, o.size)
	l.mu.Lock()
	l.prefixes = append(l.prefixes, prefix)
	l.mu.Unlock()
	ports := l.genPorts()
	args := []string{"--cores", "1,0", "--no-huge", "--memory-mb", "512", "--file-prefix", prefix,
		"--port", ports[0], "--port", ports[1], "--dst-mac", relayMAC,
		"--sessions", strconv.Itoa(o.sessions), "--size", strconv.Itoa(o.size),
		"--duration", o.duration.String(), "--log-level", "warn"}
	if o.keyFile != "" {
		args = append(args, "--key-file", o.keyFile)
	}
	if o.rxKey != "" {
		args = append(args, "--rx-key-file", o.rxKey)
	}
	p, err := l.start("pool_gen", filepath.Join(l.bins, "pool_gen"), args...)
	if err != nil {
		return genRun{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, o.duration+60*time.Second)
	defer cancel()
	if err := p.wait(wctx); err != nil {
		if ctx.Err() != nil {
			return genRun{}, errors.New("bench: interrupted")
		}
		return genRun{}, fmt.Errorf("bench: pool_gen: %v; its output ends:\n%s", err, p.tail(30))
	}
	r := genRun{out: p.out.String()}
	for _, m := range reGenRow.FindAllStringSubmatch(r.out, -1) {
		n, _ := strconv.ParseUint(m[2], 10, 64)
		switch m[1] {
		case "tx":
			r.tx = n
		case "rx_pool":
			r.rx = n
		case "rx_bad_mac":
			r.badMAC = n
		}
	}
	m := reGenSecs.FindStringSubmatch(r.out)
	if m == nil {
		return r, fmt.Errorf("bench: pool_gen printed no run line; its output ends:\n%s", p.tail(30))
	}
	r.secs, _ = strconv.ParseFloat(m[1], 64)
	return r, nil
}

// close stops every process the lab started (SIGTERM, then SIGKILL) and
// removes the directory, the EAL runtime directories of its file prefixes
// and any hugepage files they left.
func (l *lab) close() error {
	l.mu.Lock()
	procs, prefixes := l.procs, l.prefixes
	l.procs = nil
	l.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		_ = procs[i].stop(15 * time.Second)
	}
	for _, pf := range prefixes {
		if err := os.RemoveAll(filepath.Join("/var/run/dpdk", pf)); err != nil {
			errs = append(errs, err)
		}
		for _, mnt := range hugeMounts() {
			files, _ := filepath.Glob(filepath.Join(mnt, pf+"map_*"))
			for _, f := range files {
				if err := os.Remove(f); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := os.RemoveAll(l.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// hugeMounts are the mounted hugetlbfs file systems.
func hugeMounts() []string {
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == "hugetlbfs" {
			out = append(out, f[1])
		}
	}
	return out
}
