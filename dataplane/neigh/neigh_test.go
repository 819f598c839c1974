package neigh

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/confcheck"
)

var (
	mac0 = MAC{0x02, 0, 0, 0, 0, 0x10}
	mac1 = MAC{0x02, 0, 0, 0, 0, 0x11}
	macA = MAC{0x02, 0xaa, 0, 0, 0, 1}
	macB = MAC{0x02, 0xbb, 0, 0, 0, 2}
)

func testPorts(t *testing.T) []Port {
	t.Helper()
	ports, err := PortsFromConfig([]dataplane.PortConfig{
		{Name: "p0", Addresses: []string{"192.0.2.1/24", "2001:db8::1/64", "198.51.100.1/24"}},
		{Name: "p1", Addresses: []string{"203.0.113.1/24"}},
	}, []MAC{mac0, mac1})
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

type fixture struct {
	r     *Resolver
	pub   *Published
	clock *clock.Fake
	logs  *bytes.Buffer
}

func newFixture(t *testing.T, static ...dataplane.Neighbor) *fixture {
	t.Helper()
	f := &fixture{pub: &Published{}, clock: clock.NewFake(time.Unix(1_700_000_000, 0)), logs: &bytes.Buffer{}}
	var err error
	f.r, err = New(DefaultConfig(), testPorts(t), static, f.clock, zerolog.New(f.logs).Level(zerolog.DebugLevel), f.pub)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) published(port uint16, ip string) (MAC, bool) {
	return f.pub.Load().Lookup(port, netip.MustParseAddr(ip))
}

func (f *fixture) lines(msg string) int { return strings.Count(f.logs.String(), `"message":"`+msg+`"`) }

func TestStaticNeighbours(t *testing.T) {
	f := newFixture(t,
		dataplane.Neighbor{IP: "192.0.2.2", MAC: "02:00:00:00:00:02", Port: "p0"},
		dataplane.Neighbor{IP: "2001:db8::2", MAC: "02:00:00:00:00:03", Port: "p0"},
	)
	if m, ok := f.published(0, "192.0.2.2"); !ok || m != (MAC{2, 0, 0, 0, 0, 2}) {
		t.Fatalf("static IPv4 neighbour: %v %x", ok, m)
	}
	if m, ok := f.pub.Load().Lookup16(0, netip.MustParseAddr("2001:db8::2").As16()); !ok || m != (MAC{2, 0, 0, 0, 0, 3}) {
		t.Fatalf("static IPv6 neighbour: %v %x", ok, m)
	}
	if _, ok := f.published(1, "192.0.2.2"); ok {
		t.Fatal("a neighbour of port 0 is visible on port 1")
	}
	// Static entries are neither probed nor overwritten.
	probes, err := f.r.Request(nil, 0, netip.MustParseAddr("192.0.2.2"))
	if err != nil || len(probes) != 0 {
		t.Fatalf("request of a static neighbour: %v %v", probes, err)
	}
	if f.r.Learn(0, netip.MustParseAddr("192.0.2.2"), macA) {
		t.Fatal("a reply overwrote a static neighbour")
	}
	f.r.Release(0, netip.MustParseAddr("192.0.2.2"))
	f.clock.Advance(time.Hour)
	if p := f.r.Tick(nil); len(p) != 0 {
		t.Fatalf("static neighbours probed: %v", p)
	}
	if m, ok := f.published(0, "192.0.2.2"); !ok || m != (MAC{2, 0, 0, 0, 0, 2}) {
		t.Fatal("static neighbour lost")
	}
	if _, ok := f.r.Next(); ok {
		t.Fatal("Next has work with only static neighbours")
	}
	for _, bad := range []dataplane.Neighbor{
		{IP: "192.0.2.9", MAC: "02:00:00:00:00:02", Port: "nope"},
		{IP: "192.0.2", MAC: "02:00:00:00:00:02", Port: "p0"},
		{IP: "192.0.2.9", MAC: "02:00:00:00:02", Port: "p0"},
	} {
		if _, err := New(DefaultConfig(), testPorts(t), []dataplane.Neighbor{bad}, f.clock, zerolog.Nop(), &Published{}); err == nil {
			t.Errorf("static neighbour %+v accepted", bad)
		}
	}
}

func TestResolveAndRefresh(t *testing.T) {
	f := newFixture(t)
	ip := netip.MustParseAddr("192.0.2.77")
	probes, err := f.r.Request(nil, 0, ip)
	if err != nil {
		t.Fatal(err)
	}
	want := Probe{Port: 0, SrcMAC: mac0, Src: netip.MustParseAddr("192.0.2.1"), Target: ip}
	if len(probes) != 1 || probes[0] != want {
		t.Fatalf("first probe %+v, want %+v", probes, want)
	}
	if _, ok := f.published(0, "192.0.2.77"); ok {
		t.Fatal("unresolved neighbour published")
	}
	// Asking again sends nothing: the attempt is under way.
	if p, _ := f.r.Request(nil, 0, ip); len(p) != 0 {
		t.Fatalf("second request probed again: %v", p)
	}
	f.clock.Advance(100 * time.Millisecond)
	if !f.r.Learn(0, ip, macA) {
		t.Fatal("the reply was refused")
	}
	if m, ok := f.published(0, "192.0.2.77"); !ok || m != macA {
		t.Fatalf("resolved neighbour published as %v %x", ok, m)
	}
	if _, st, _ := f.r.Lookup(0, ip); st != Reachable {
		t.Fatalf("state %v", st)
	}
	// Nothing to do until the answer is ReachableTime old.
	f.clock.Advance(29 * time.Second)
	if p := f.r.Tick(nil); len(p) != 0 {
		t.Fatalf("probed a reachable neighbour: %v", p)
	}
	if next, ok := f.r.Next(); !ok || next.Sub(f.clock.Now()) != time.Second {
		t.Fatalf("Next = %v (in %v)", next, next.Sub(f.clock.Now()))
	}
	f.clock.Advance(time.Second)
	p := f.r.Tick(nil)
	if len(p) != 1 || p[0] != want {
		t.Fatalf("refresh probe %+v", p)
	}
	// While refreshing, the old MAC stays in use.
	if m, ok := f.published(0, "192.0.2.77"); !ok || m != macA {
		t.Fatal("MAC withdrawn while refreshing")
	}
	if _, st, _ := f.r.Lookup(0, ip); st != Refreshing {
		t.Fatalf("state %v", st)
	}
	// The neighbour's NIC changed: the new MAC is published and logged.
	f.r.Learn(0, ip, macB)
	if m, _ := f.published(0, "192.0.2.77"); m != macB {
		t.Fatal("new MAC not published")
	}
	if f.lines("neighbour MAC changed") != 1 {
		t.Fatalf("MAC change not logged:\n%s", f.logs)
	}
	// Release withdraws it.
	f.r.Release(0, ip)
	if _, ok := f.published(0, "192.0.2.77"); ok {
		t.Fatal("released neighbour still published")
	}
	if _, _, ok := f.r.Lookup(0, ip); ok {
		t.Fatal("released neighbour still known")
	}
}

// TestRetriesAndBackoff follows an unanswering neighbour on fake time: three
// probes 0.5, 1 and 2 s apart, failure, then attempts spaced by a doubling
// backoff capped at MaxBackoff, with one log line per failed attempt.
func TestRetriesAndBackoff(t *testing.T) {
	f := newFixture(t)
	ip := netip.MustParseAddr("2001:db8::99")
	start := f.clock.Now()
	probes, err := f.r.Request(nil, 0, ip)
	if err != nil || len(probes) != 1 {
		t.Fatalf("%v %v", probes, err)
	}
	if probes[0].Src != netip.MustParseAddr("2001:db8::1") || probes[0].Target != ip {
		t.Fatalf("IPv6 probe %+v", probes[0])
	}
	// Step through time in 50 ms ticks and record when probes go out.
	var sent []time.Duration
	sent = append(sent, 0)
	failures := 0
	for f.clock.Now().Sub(start) < 6*time.Minute {
		f.clock.Advance(50 * time.Millisecond)
		for range f.r.Tick(nil) {
			sent = append(sent, f.clock.Now().Sub(start))
		}
		if _, st, _ := f.r.Lookup(0, ip); st == Failed {
			if _, ok := f.published(0, "2001:db8::99"); ok {
				t.Fatal("failed neighbour published")
			}
		}
		failures = f.lines("neighbour does not answer")
	}
	// Attempt k starts after the backoff of failure k-1: 4, 8, 16, 32, 60,
	// 60... seconds after the failure, which comes 3.5 s after the
	// attempt's first probe.
	s := func(x float64) time.Duration { return time.Duration(x * float64(time.Second)) }
	const horizon = 6 * time.Minute
	var want []time.Duration
	wantFailures := 0
	for k, at := 0, time.Duration(0); at <= horizon; k++ {
		want = append(want, at, at+s(0.5), at+s(1.5))
		if at += s(3.5); at <= horizon {
			wantFailures++
		}
		at += s(min(4*float64(int(1)<<k), 60))
	}
	want = trim(want, horizon)
	if len(sent) != len(want) {
		t.Fatalf("probes at %v, want %v", sent, want)
	}
	for i := range want {
		if sent[i] != want[i] {
			t.Fatalf("probe %d at %v, want %v (all: %v)", i, sent[i], want[i], sent)
		}
	}
	if failures != wantFailures {
		t.Fatalf("%d failure lines, want one per failed attempt: %d", failures, wantFailures)
	}
	// A late answer still resolves it, and says so.
	if !f.r.Learn(0, ip, macA) {
		t.Fatal("late answer refused")
	}
	if m, ok := f.published(0, "2001:db8::99"); !ok || m != macA {
		t.Fatal("late answer not published")
	}
	if f.lines("neighbour answers again") != 1 {
		t.Fatalf("recovery not logged:\n%s", f.logs)
	}
}

func trim(ds []time.Duration, limit time.Duration) []time.Duration {
	for i, d := range ds {
		if d > limit {
			return ds[:i]
		}
	}
	return ds
}

func TestRefreshFailureWithdraws(t *testing.T) {
	f := newFixture(t)
	ip := netip.MustParseAddr("203.0.113.9")
	if _, err := f.r.Request(nil, 1, ip); err != nil {
		t.Fatal(err)
	}
	f.r.Learn(1, ip, macA)
	f.clock.Advance(30 * time.Second)
	if p := f.r.Tick(nil); len(p) != 1 || p[0].SrcMAC != mac1 || p[0].Src != netip.MustParseAddr("203.0.113.1") {
		t.Fatalf("refresh probe %+v", p)
	}
	for range 3 {
		if _, ok := f.published(1, "203.0.113.9"); !ok {
			t.Fatal("withdrawn before the refresh attempt failed")
		}
		f.clock.Advance(2 * time.Second)
		f.r.Tick(nil)
	}
	if _, ok := f.published(1, "203.0.113.9"); ok {
		t.Fatal("neighbour still published after the refresh attempt failed")
	}
	if _, st, _ := f.r.Lookup(1, ip); st != Failed {
		t.Fatalf("state %v", st)
	}
}

func TestLearnIgnoresUnsolicited(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		ip  string
		mac MAC
	}{{"192.0.2.50", macA}, {"2001:db8::50", macB}} {
		if f.r.Learn(0, netip.MustParseAddr(c.ip), c.mac) {
			t.Errorf("learned %s without asking", c.ip)
		}
	}
	if f.pub.Load().Len() != 0 {
		t.Fatal("unsolicited replies reached the table")
	}
	ip := netip.MustParseAddr("192.0.2.51")
	f.r.Request(nil, 0, ip)
	for _, bad := range []MAC{{}, {0x01, 0, 0x5e, 0, 0, 1}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		if f.r.Learn(0, ip, bad) {
			t.Errorf("learned MAC %x", bad)
		}
	}
	if f.r.Learn(1, ip, macA) {
		t.Error("learned an answer that came in on another port")
	}
	// An IPv4-mapped form of a requested IPv4 address is the same neighbour.
	if !f.r.Learn(0, netip.MustParseAddr("::ffff:192.0.2.51"), macA) {
		t.Error("mapped form not recognised")
	}
}

func TestRequestErrors(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		port uint16
		ip   netip.Addr
		want error
	}{
		{2, netip.MustParseAddr("192.0.2.9"), ErrNoPort},
		{0, netip.Addr{}, ErrBadAddress},
		{0, netip.MustParseAddr("0.0.0.0"), ErrBadAddress},
		{0, netip.MustParseAddr("224.0.0.1"), ErrBadAddress},
		{0, netip.MustParseAddr("255.255.255.255"), ErrBadAddress},
		{0, netip.MustParseAddr("ff02::1"), ErrBadAddress},
		{0, netip.MustParseAddr("fe80::1%eth0"), ErrBadAddress},
		{0, netip.MustParseAddr("192.0.2.1"), ErrOwnAddress},
		{1, netip.MustParseAddr("2001:db8::5"), ErrNoSource},
	} {
		p, err := f.r.Request(nil, c.port, c.ip)
		if !errors.Is(err, c.want) || len(p) != 0 {
			t.Errorf("Request(%d, %v) = %v %v, want %v", c.port, c.ip, p, err, c.want)
		}
	}
}

func TestTickOrder(t *testing.T) {
	f := newFixture(t)
	for _, a := range []string{"192.0.2.9", "2001:db8::3", "192.0.2.3", "198.51.100.4"} {
		f.r.Request(nil, 0, netip.MustParseAddr(a))
	}
	f.r.Request(nil, 1, netip.MustParseAddr("203.0.113.2"))
	f.clock.Advance(time.Second)
	p := f.r.Tick([]Probe{{Port: 9}})
	var got []string
	for _, x := range p[1:] {
		got = append(got, x.Target.String())
	}
	want := "192.0.2.3 192.0.2.9 198.51.100.4 2001:db8::3 203.0.113.2"
	if p[0].Port != 9 || strings.Join(got, " ") != want {
		t.Fatalf("Tick appended %v, want %s after the existing element", got, want)
	}
	// The source is the address in the target's subnet.
	for _, x := range p[1:] {
		if x.Target.String() == "198.51.100.4" && x.Src != netip.MustParseAddr("198.51.100.1") {
			t.Fatalf("source %v for %v", x.Src, x.Target)
		}
	}
	if n := f.r.Snapshot(); len(n) != 5 || n[0].IP.String() != "192.0.2.3" || n[4].Port != 1 || n[0].State != Incomplete {
		t.Fatalf("snapshot %+v", n)
	}
}

func TestAddrs(t *testing.T) {
	a := NewAddrs(testPorts(t))
	for _, c := range []struct {
		port       uint16
		ip         string
		mine, link bool
	}{
		{0, "192.0.2.1", true, true},
		{0, "::ffff:192.0.2.1", true, true},
		{0, "2001:db8::1", true, true},
		{0, "192.0.2.2", false, true},
		{0, "2001:db8::2", false, true},
		{0, "2001:db9::1", false, false},
		{0, "203.0.113.1", false, false},
		{1, "203.0.113.1", true, true},
		{1, "192.0.2.1", false, false},
		{7, "192.0.2.1", false, false},
	} {
		ip := netip.MustParseAddr(c.ip)
		if got := a.Mine(c.port, ip); got != c.mine {
			t.Errorf("Mine(%d, %s) = %v", c.port, c.ip, got)
		}
		if got := a.OnLink(c.port, ip); got != c.link {
			t.Errorf("OnLink(%d, %s) = %v", c.port, c.ip, got)
		}
	}
	if src, ok := a.Source(0, netip.MustParseAddr("10.1.1.1")); !ok || src != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("off-link IPv4 source %v %v", src, ok)
	}
	if _, ok := a.Source(1, netip.MustParseAddr("2001:db8::5")); ok {
		t.Error("IPv6 source on an IPv4-only port")
	}
	if _, err := PortsFromConfig([]dataplane.PortConfig{{Name: "x", Addresses: []string{"nonsense"}}}, []MAC{mac0}); err == nil {
		t.Error("bad address accepted")
	}
	if _, err := PortsFromConfig([]dataplane.PortConfig{{Name: "x"}}, nil); err == nil {
		t.Error("missing MAC accepted")
	}
	if p, _ := PortsFromConfig([]dataplane.PortConfig{{Name: "m", Addresses: []string{"::ffff:10.0.0.1/120"}}}, []MAC{mac0}); p[0].Addrs[0] != netip.MustParsePrefix("10.0.0.1/24") {
		t.Errorf("mapped prefix kept as %v", p[0].Addrs[0])
	}
}

func TestWorkerReadsAllocateNothing(t *testing.T) {
	f := newFixture(t, dataplane.Neighbor{IP: "192.0.2.2", MAC: "02:00:00:00:00:02", Port: "p0"})
	addrs := f.r.Addrs()
	ip4 := netip.AddrFrom4([4]byte{192, 0, 2, 2})
	ip16 := ip4.As16()
	mine := netip.AddrFrom4([4]byte{192, 0, 2, 1})
	var hits int
	if a := testing.AllocsPerRun(1000, func() {
		t := f.pub.Load()
		if _, ok := t.Lookup(0, ip4); ok {
			hits++
		}
		if _, ok := t.Lookup16(0, ip16); ok {
			hits++
		}
		if addrs.Mine(0, mine) {
			hits++
		}
	}); a != 0 {
		t.Fatalf("worker reads allocate %v times", a)
	}
	if hits == 0 {
		t.Fatal("lookups found nothing")
	}
}

// TestWorkersReadDuringUpdates has readers load and use snapshots while the
// resolver learns, ages and releases; under -race it proves snapshots are
// shared only through the atomic pointer.
func TestWorkersReadDuringUpdates(t *testing.T) {
	f := newFixture(t)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				tbl := f.pub.Load()
				tbl.Range(func(port uint16, ip netip.Addr, mac MAC) bool {
					if m, ok := tbl.Lookup(port, ip); !ok || m != mac {
						t.Error("snapshot changed under a reader")
					}
					return true
				})
			}
		}()
	}
	for i := range 2000 {
		ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(2 + i%200)})
		f.r.Request(nil, 0, ip)
		f.r.Learn(0, ip, MAC{2, 0, 0, 0, byte(i >> 8), byte(i)})
		if i%7 == 0 {
			f.r.Release(0, ip)
		}
		f.clock.Advance(100 * time.Millisecond)
		f.r.Tick(nil)
	}
	stop.Store(true)
	wg.Wait()
}

func TestConfigValidate(t *testing.T) {
	errs := confcheck.New("neigh")
	DefaultConfig().Validate(errs)
	if err := errs.Err(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for _, c := range []struct {
		key string
		mod func(*Config)
	}{
		{"neigh.retrans_time", func(c *Config) { c.RetransTime = time.Millisecond }},
		{"neigh.probes", func(c *Config) { c.Probes = 0 }},
		{"neigh.reachable_time", func(c *Config) { c.ReachableTime = 0 }},
		{"neigh.max_backoff", func(c *Config) { c.MaxBackoff = 100 * time.Millisecond }},
	} {
		cfg := DefaultConfig()
		c.mod(&cfg)
		errs := confcheck.New("neigh")
		cfg.Validate(errs)
		if l := errs.List(); len(l) != 1 || l[0].Key != c.key {
			t.Errorf("%s: got %v", c.key, errs.Err())
		}
		if _, err := New(cfg, nil, nil, clock.NewFake(time.Time{}), zerolog.Nop(), &Published{}); err == nil {
			t.Errorf("%s: New accepted the config", c.key)
		}
	}
	if _, err := New(DefaultConfig(), nil, nil, nil, zerolog.Nop(), &Published{}); err == nil {
		t.Error("New accepted a nil clock")
	}
}

func TestStateNames(t *testing.T) {
	if Reachable.String() != "reachable" || State(0).String() != "State(0)" || State(99).String() != "State(99)" {
		t.Fatal("state names")
	}
}
