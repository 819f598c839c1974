// Package netns builds throwaway network topologies for tests and the demo:
// named network namespaces and veth pairs, created with iproute2's ip tool
// and always removed again.
//
// Every name an Env creates starts with its prefix, which carries the
// process id (Prefix), so test processes running in parallel never collide,
// and RemoveAll(prefix) or RemoveStale(base) clear whatever a killed run
// left behind. For tests, ForTest makes an Env whose Close is registered
// with t.Cleanup.
//
// Code runs inside a namespace in two ways: NS.Run runs a command through
// `ip netns exec`, and NS.Do runs a function on a locked OS thread switched
// into the namespace with setns(2). A socket opened inside Do stays in that
// namespace for good, whichever thread uses it later; that is how
// NS.ListenUDP and NS.DialUDP give a test a sender or receiver in a
// namespace without another process.
//
// The package needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and the ip and
// ethtool commands (Debian packages iproute2 and ethtool).
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Errors callers can test with errors.Is.
var (
	// ErrNameTooLong: an interface name is limited to 15 bytes (IFNAMSIZ).
	ErrNameTooLong = errors.New("netns: interface name longer than 15 bytes")
	// ErrClosed: the Env was closed.
	ErrClosed = errors.New("netns: environment closed")
	// ErrNotRoot: namespaces and veths need root.
	ErrNotRoot = errors.New("netns: root is needed")
)

// MaxIfName is the longest interface name Linux accepts (IFNAMSIZ - 1).
const MaxIfName = 15

// cmdTimeout bounds one ip or ethtool invocation: they return in
// milliseconds, and a hung one must not hang a test run.
const cmdTimeout = 10 * time.Second

// Prefix returns the name prefix of this process's objects for base: base,
// the pid and a dash ("nt1234-"). Keep base short: an Env's interface names
// are prefix plus the caller's short name, at most MaxIfName bytes.
func Prefix(base string) string { return base + strconv.Itoa(os.Getpid()) + "-" }

// Env creates namespaces and veth pairs under one prefix and removes them
// all on Close. It is safe for concurrent use.
type Env struct {
	prefix string
	log    zerolog.Logger

	mu     sync.Mutex
	closed bool
	nss    []*NS
	links  []string // veth ends created in the root namespace
}

// New returns an Env whose objects are named prefix+name. Use Prefix for a
// per-process prefix.
func New(prefix string, log zerolog.Logger) *Env {
	return &Env{prefix: prefix, log: log}
}

// Cleanuper is the part of testing.TB that ForTest needs.
type Cleanuper interface {
	Cleanup(func())
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// envSeq numbers ForTest's Envs, so that several tests of one process get
// distinct prefixes.
var envSeq atomic.Int64

// ForTest returns an Env with a prefix unique to this process and call
// ("nt<pid>-<n>"), registers its Close with t.Cleanup, and first removes
// what killed earlier test processes left (RemoveStale("nt")). The caller
// decides whether to skip when not root; ForTest fails with ErrNotRoot.
func ForTest(t Cleanuper, log zerolog.Logger) (*Env, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if err := RemoveStale(testBase); err != nil {
		t.Logf("netns: removing stale test namespaces: %v", err)
	}
	e := New(Prefix(testBase)+strconv.FormatInt(envSeq.Add(1), 10), log)
	t.Cleanup(func() {
		// Leftovers would collide with nothing (the names carry the pid)
		// but would accumulate: fail the test that left them.
		if err := e.Close(); err != nil {
			t.Errorf("netns: cleanup: %v", err)
		}
	})
	return e, nil
}

// testBase is the base of ForTest's prefixes.
const testBase = "nt"

// Name returns the full name of the object called name in this Env.
func (e *Env) Name(name string) string { return e.prefix + name }

// Prefix returns the Env's prefix.
func (e *Env) Prefix() string { return e.prefix }

// NS is a named network namespace (/var/run/netns/<Name>).
type NS struct {
	// Name is the namespace's full name, as `ip netns` shows it.
	Name string
	env  *Env
}

// Root stands for the namespace the process started in, wherever a
// namespace is asked for; its methods work on the root namespace.
var Root *NS

// NewNS creates the namespace prefix+name and brings its loopback up.
func (e *Env) NewNS(name string) (*NS, error) {
	full := e.Name(name)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	if err := ip(nil, "netns", "add", full); err != nil {
		return nil, err
	}
	ns := &NS{Name: full, env: e}
	e.nss = append(e.nss, ns)
	if err := ip(ns, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	e.log.Debug().Str("netns", full).Msg("namespace created")
	return ns, nil
}

// End is one end of a veth pair: its short name (the Env adds its prefix)
// and the namespace it lives in (nil or Root: the root namespace).
type End struct {
	Name string
	NS   *NS
}

// Veth creates a veth pair between a and b, named prefix+a.Name and
// prefix+b.Name, in their namespaces, and returns the full names. Both ends
// stay down; see Configure.
func (e *Env) Veth(a, b End) (string, string, error) {
	an, bn := e.Name(a.Name), e.Name(b.Name)
	for _, n := range []string{an, bn} {
		if len(n) > MaxIfName {
			return "", "", fmt.Errorf("%w: %q", ErrNameTooLong, n)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", "", ErrClosed
	}
	// Created in the root namespace and moved by `netns`: one command, so
	// a failure leaves nothing half-made.
	args := []string{"link", "add", an}
	if a.NS != nil {
		args = append(args, "netns", a.NS.Name)
	}
	args = append(args, "type", "veth", "peer", "name", bn)
	if b.NS != nil {
		args = append(args, "netns", b.NS.Name)
	}
	if err := ip(nil, args...); err != nil {
		return "", "", err
	}
	// Deleting either end deletes the pair; ends in a namespace go with it.
	if a.NS == nil {
		e.links = append(e.links, an)
	} else if b.NS == nil {
		e.links = append(e.links, bn)
	}
	e.log.Debug().Str("a", an).Str("b", bn).Msg("veth pair created")
	return an, bn, nil
}

// Link describes how Configure sets up an interface.
type Link struct {
	// Addrs are addresses in CIDR form ("10.0.0.1/24").
	Addrs []netip.Prefix
	// MTU: 0 leaves the default.
	MTU int
	// MAC: nil leaves the random one the kernel chose.
	MAC net.HardwareAddr
	// ChecksumOffload keeps the veth's checksum offloads on (the kernel's
	// default). Off by default here: a veth with TX offload on sends UDP
	// datagrams whose checksum is only the pseudo-header's sum
	// (CHECKSUM_PARTIAL), which the kernel on the other veth trusts but a
	// DPDK AF_PACKET or AF_XDP port reads as it is. The relay completes
	// such checksums (wire.UDPChecksumNotReady; the veth tests with
	// offloads on show it), but tests that compare frames byte for byte
	// or forward them unchanged want the sender's real checksum.
	ChecksumOffload bool
}

// Configure sets dev's MAC, MTU, addresses and offloads in ns and brings
// it up.
func (ns *NS) Configure(dev string, l Link) error {
	if l.MAC != nil {
		if err := ip(ns, "link", "set", "dev", dev, "address", l.MAC.String()); err != nil {
			return err
		}
	}
	if l.MTU > 0 {
		if err := ip(ns, "link", "set", "dev", dev, "mtu", strconv.Itoa(l.MTU)); err != nil {
			return err
		}
	}
	for _, a := range l.Addrs {
		if err := ip(ns, "addr", "add", a.String(), "dev", dev); err != nil {
			return err
		}
	}
	if !l.ChecksumOffload {
		if err := ns.Run(context.Background(), nil, "ethtool", "-K", dev, "tx", "off", "rx", "off"); err != nil {
			return err
		}
	}
	return ip(ns, "link", "set", "dev", dev, "up")
}

// HardwareAddr returns dev's MAC address in ns.
func (ns *NS) HardwareAddr(dev string) (net.HardwareAddr, error) {
	var hw net.HardwareAddr
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err == nil {
			hw = ifi.HardwareAddr
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: %s: %w", dev, err)
	}
	return hw, nil
}

// Neighbor adds a permanent neighbour entry for addr on dev in ns, so that
// traffic leaves without ARP (a DPDK port in the path answers none).
func (ns *NS) Neighbor(dev string, addr netip.Addr, mac net.HardwareAddr) error {
	return ip(ns, "neigh", "replace", addr.String(), "lladdr", mac.String(), "dev", dev, "nud", "permanent")
}

// Route adds a route to dst via gw on dev in ns.
func (ns *NS) Route(dst netip.Prefix, gw netip.Addr, dev string) error {
	return ip(ns, "route", "replace", dst.String(), "via", gw.String(), "dev", dev)
}

// WriteSysctl sets the sysctl at path, relative to /proc/sys
// ("net/ipv6/conf/eth0/disable_ipv6"), to value in ns. It writes the file
// from a thread inside ns, since /proc/sys/net shows the namespace of the
// thread that opens it, and so needs no sysctl command.
func (ns *NS) WriteSysctl(path, value string) error {
	err := ns.Do(func() error { return os.WriteFile("/proc/sys/"+path, []byte(value), 0) })
	if err != nil {
		return fmt.Errorf("netns: sysctl %s=%s in %s: %w", path, value, nsName(ns), err)
	}
	return nil
}

// Run runs a command in ns (through `ip netns exec`; directly for Root)
// and returns its error with its output. With out non-nil, the command's
// standard output is written there.
func (ns *NS) Run(ctx context.Context, out *bytes.Buffer, name string, args ...string) error {
	if ns != nil {
		args = append([]string{"netns", "exec", ns.Name, name}, args...)
		name = "ip"
	}
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	if out == nil {
		cmd.Stdout = &stderr
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("netns: %s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// Command returns an exec.Cmd that runs name in ns, for long-running
// commands the caller starts and stops itself.
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if ns == nil {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Do runs fn on an OS thread switched into ns, and switches it back, even
// if fn panics. The goroutine fn runs on is locked to that thread;
// goroutines fn starts run elsewhere, in the root namespace. Sockets fn
// opens belong to ns for their whole life. If the thread cannot be switched
// back, it is left locked so that it ends with the goroutine instead of
// serving others in ns.
func (ns *NS) Do(fn func() error) (err error) {
	if ns == nil {
		return fn()
	}
	target, err := unix.Open("/var/run/netns/"+ns.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: open %s: %w", ns.Name, err)
	}
	defer unix.Close(target)
	runtime.LockOSThread()
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: open this thread's namespace: %w", err)
	}
	defer unix.Close(self)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: enter %s: %w", ns.Name, err)
	}
	// Runs before the deferred Close of self.
	defer func() {
		if rerr := unix.Setns(self, unix.CLONE_NEWNET); rerr != nil {
			// Still locked: the thread exits with this goroutine.
			err = errors.Join(err, fmt.Errorf("netns: leave %s: %w", ns.Name, rerr))
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// ListenUDP opens a UDP socket bound to addr inside ns.
func (ns *NS) ListenUDP(addr netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := ns.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: listen %s in %s: %w", addr, nsName(ns), err)
	}
	return c, nil
}

// DialUDP opens a UDP socket inside ns bound to laddr (port 0: any) and
// connected to raddr.
func (ns *NS) DialUDP(laddr, raddr netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := ns.Do(func() error {
		var err error
		c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(laddr), net.UDPAddrFromAddrPort(raddr))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: dial %s in %s: %w", raddr, nsName(ns), err)
	}
	return c, nil
}

func nsName(ns *NS) string {
	if ns == nil {
		return "the root namespace"
	}
	return ns.Name
}

// Close removes every namespace and root-namespace veth end the Env
// created (veths inside a namespace go with it), newest first, and returns
// the errors joined. Removal goes on past errors; a second Close does
// nothing. The kernel frees a deleted namespace's interfaces
// asynchronously, so their names may linger for a moment.
func (e *Env) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var errs []error
	for i := len(e.links) - 1; i >= 0; i-- {
		if err := ip(nil, "link", "del", e.links[i]); err != nil && !gone(err) {
			errs = append(errs, err)
		}
	}
	for i := len(e.nss) - 1; i >= 0; i-- {
		if err := ip(nil, "netns", "del", e.nss[i].Name); err != nil && !gone(err) {
			errs = append(errs, err)
		}
	}
	e.links, e.nss = nil, nil
	return errors.Join(errs...)
}

// gone reports whether an ip error says the object no longer exists (its
// peer's deletion took it, or its namespace's).
func gone(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Cannot find device") || strings.Contains(s, "No such file") ||
		strings.Contains(s, "does not exist")
}

// RemoveAll removes every named namespace and root-namespace interface
// whose name starts with prefix: what an Env with that prefix (or a killed
// process) left. The demo calls it before it starts and when it stops.
func RemoveAll(prefix string) error {
	return remove(func(name string) bool { return strings.HasPrefix(name, prefix) })
}

// RemoveStale removes the objects of Prefix(base) for every process id that
// is no longer running: the leftovers of killed test runs.
func RemoveStale(base string) error {
	return remove(func(name string) bool {
		rest, ok := strings.CutPrefix(name, base)
		if !ok {
			return false
		}
		digits, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(digits)
		return ok && err == nil && pid > 0 && pid != os.Getpid() && unix.Kill(pid, 0) == unix.ESRCH
	})
}

// remove deletes the root-namespace interfaces and the namespaces whose
// names match.
func remove(match func(string) bool) error {
	var errs []error
	links, err := rootLinks()
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range links {
		if match(l) {
			if err := ip(nil, "link", "del", l); err != nil && !gone(err) {
				errs = append(errs, err)
			}
		}
	}
	nss, err := namespaces()
	if err != nil {
		errs = append(errs, err)
	}
	for _, n := range nss {
		if match(n) {
			if err := ip(nil, "netns", "del", n); err != nil && !gone(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// rootLinks lists the interface names of the root namespace.
func rootLinks() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("netns: list interfaces: %w", err)
	}
	names := make([]string, len(ifs))
	for i, f := range ifs {
		names[i] = f.Name
	}
	return names, nil
}

// namespaces lists the named namespaces (the files of /var/run/netns).
func namespaces() ([]string, error) {
	ents, err := os.ReadDir("/var/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netns: list namespaces: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, nil
}

// ip runs `ip [-n ns] args...`.
func ip(ns *NS, args ...string) error {
	if ns != nil {
		args = append([]string{"-n", ns.Name}, args...)
	}
	return Root.Run(context.Background(), nil, "ip", args...)
}
