package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// needRoot skips a test outside root, saying why, except in CI, where these
// tests must run and a missing root is a failure.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("netns tests must run as root in CI")
	}
	t.Skip("not root: network namespaces and veths need root")
}

func exists(t *testing.T, kind, name string) bool {
	t.Helper()
	switch kind {
	case "netns":
		_, err := os.Stat("/var/run/netns/" + name)
		return err == nil
	default:
		err := exec.Command("ip", "link", "show", "dev", name).Run()
		return err == nil
	}
}

// waitGone waits for the kernel's asynchronous teardown of a deleted
// namespace's interfaces.
func waitGone(t *testing.T, kind, name string) {
	t.Helper()
	for i := 0; i < 100 && exists(t, kind, name); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if exists(t, kind, name) {
		t.Errorf("%s %s still exists", kind, name)
	}
}

func TestNameTooLong(t *testing.T) {
	e := New("averylongprefix-", zerolog.Nop())
	defer e.Close()
	_, _, err := e.Veth(End{Name: "a"}, End{Name: "b"})
	if !errors.Is(err, ErrNameTooLong) {
		t.Fatalf("Veth with a 17-byte name: %v, want ErrNameTooLong", err)
	}
}

func TestPrefixCarriesPid(t *testing.T) {
	if p, want := Prefix("nt"), "nt"+strconv.Itoa(os.Getpid())+"-"; p != want {
		t.Fatalf("Prefix = %q, want %q", p, want)
	}
}

// TestUDPAcrossNamespaces builds two namespaces joined by a veth, sends a
// datagram from one to the other through sockets opened with DialUDP and
// ListenUDP, and checks that Close removes everything.
func TestUDPAcrossNamespaces(t *testing.T) {
	needRoot(t)
	e, err := ForTest(t, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.NewNS("x")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.NewNS("y")
	if err != nil {
		t.Fatal(err)
	}
	an, bn, err := e.Veth(End{"x0", a}, End{"y0", b})
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := netip.MustParsePrefix("10.202.0.1/24"), netip.MustParsePrefix("10.202.0.2/24")
	if err := a.Configure(an, Link{Addrs: []netip.Prefix{pa}, MTU: 1400}); err != nil {
		t.Fatal(err)
	}
	if err := b.Configure(bn, Link{Addrs: []netip.Prefix{pb}}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := a.Run(t.Context(), &out, "ip", "link", "show", an); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "mtu 1400") || !strings.Contains(out.String(), "UP") {
		t.Fatalf("Configure did not set MTU 1400 and up: %s", out.String())
	}
	rx, err := b.ListenUDP(netip.AddrPortFrom(pb.Addr(), 0))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := a.DialUDP(netip.AddrPort{}, rx.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	// The first datagram waits for ARP; resend until one arrives.
	buf := make([]byte, 64)
	got := false
	for i := 0; i < 20 && !got; i++ {
		if _, err := tx.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		rx.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, from, err := rx.ReadFromUDPAddrPort(buf)
		if err == nil {
			got = true
			if string(buf[:n]) != "hello" || from.Addr() != pa.Addr() {
				t.Fatalf("got %q from %v", buf[:n], from)
			}
		}
	}
	if !got {
		t.Fatal("no datagram crossed the veth")
	}
	// The sockets live in the namespaces: the root namespace has no such
	// address.
	if _, err := Root.ListenUDP(netip.AddrPortFrom(pb.Addr(), 0)); err == nil {
		t.Fatal("bound the namespace's address in the root namespace")
	}
	if hw, err := b.HardwareAddr(bn); err != nil || len(hw) != 6 {
		t.Fatalf("HardwareAddr: %v %v", hw, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "netns", a.Name)
	waitGone(t, "netns", b.Name)
	if _, err := e.NewNS("z"); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewNS after Close: %v, want ErrClosed", err)
	}
}

// TestRemoveAll leaves a namespace and a root-namespace veth behind, as a
// killed demo would, and removes them by prefix.
func TestRemoveAll(t *testing.T) {
	needRoot(t)
	prefix := fmt.Sprintf("ra%d-", os.Getpid())
	e := New(prefix, zerolog.Nop())
	ns, err := e.NewNS("n")
	if err != nil {
		t.Fatal(err)
	}
	root, _, err := e.Veth(End{"r", Root}, End{"n", ns})
	if err != nil {
		RemoveAll(prefix)
		t.Fatal(err)
	}
	if err := RemoveAll(prefix); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "link", root)
	waitGone(t, "netns", ns.Name)
	e.Close() // must not fail on objects already gone
}

// TestRemoveStale names objects after a process that has exited and checks
// that RemoveStale clears them and leaves this process's alone.
func TestRemoveStale(t *testing.T) {
	needRoot(t)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	base := "st"
	stale := New(base+strconv.Itoa(dead)+"-", zerolog.Nop())
	live := New(Prefix(base), zerolog.Nop())
	defer live.Close()
	sn, err := stale.NewNS("n")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := live.NewNS("n")
	if err != nil {
		stale.Close()
		t.Fatal(err)
	}
	if err := RemoveStale(base); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "netns", sn.Name)
	if !exists(t, "netns", ln.Name) {
		t.Fatal("RemoveStale removed a live process's namespace")
	}
}

// TestLine builds the data-plane topology and checks its wiring without a
// forwarder: the root ends are up and the namespaces route through the
// gateways.
func TestLine(t *testing.T) {
	needRoot(t)
	e, err := ForTest(t, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.NewLine(LineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range [][]byte{l.SenderMAC, l.ReceiverMAC, l.PortAMAC, l.PortBMAC} {
		if len(m) != 6 {
			t.Fatalf("MAC %v", m)
		}
	}
	var out bytes.Buffer
	if err := l.Sender.Run(t.Context(), &out, "ip", "route", "get", l.ReceiverAddr.String()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "via "+l.GatewayA.String()) {
		t.Fatalf("sender's route to the receiver: %s", out.String())
	}
	out.Reset()
	if err := Root.Run(t.Context(), &out, "ethtool", "-k", l.PortA); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "tx-checksumming: off") {
		t.Fatalf("TX checksum offload still on:\n%s", out.String())
	}
	// IPv6 is off inside the namespace, and only on the Line's interfaces.
	var v6 string
	l.Sender.Do(func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + l.SenderIf + "/disable_ipv6")
		v6 = strings.TrimSpace(string(b))
		return err
	})
	if v6 != "1" {
		t.Fatalf("disable_ipv6 on %s in its namespace: %q", l.SenderIf, v6)
	}
}

// TestDoRestores checks that Do runs fn in the namespace, returns fn's
// error, and leaves the thread in the namespace it started in.
func TestDoRestores(t *testing.T) {
	needRoot(t)
	e, err := ForTest(t, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ns, err := e.NewNS("d")
	if err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := func() string {
		l, err := os.Readlink("/proc/thread-self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	before := self()
	var inside string
	sentinel := errors.New("from fn")
	err = ns.Do(func() error { inside = self(); return sentinel })
	if !errors.Is(err, sentinel) {
		t.Fatalf("Do returned %v, want fn's error", err)
	}
	if inside == before {
		t.Fatalf("fn ran in %s, the caller's namespace", inside)
	}
	if after := self(); after != before {
		t.Fatalf("thread left in %s, started in %s", after, before)
	}
}
