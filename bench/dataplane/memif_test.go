package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/dpdktest"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/dpdktest/testmain"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/internal/traffic"
)

// One EAL per test process, on ordinary pages, for the memif test; the
// other tests of the package do not need it.
var env dpdktest.Env[*dpdk.EAL]

func TestMain(m *testing.M) {
	o := dpdktest.Options{Name: "bench/dataplane", Prefix: "poolrelay_benchdp_test_", MemoryMB: 384, LogLevel: 4,
		NotRoot: "not root: DPDK needs root", Distinct: true}
	os.Exit(testmain.Run(m, &env, o))
}

// TestMemifRelaySetup checks the frames the generator sends against the
// relay tables the harness installs: a DATA frame for the route's session,
// whose hop MAC verifies under the route's ingress key.
func TestMemifRelaySetup(t *testing.T) {
	if len(memifKey) != hopmac.KeySize {
		t.Fatalf("memifKey is %d bytes, want %d", len(memifKey), hopmac.KeySize)
	}
	spec := traffic.Spec{Size: 128, Sessions: 1, Dst: memifRelayMAC, Src: memifGenMAC,
		SrcIP: memifGenIP, DstIP: memifRelayIP, Key: memifKey}
	b, err := traffic.NewBuilder(spec)
	if err != nil {
		t.Fatal(err)
	}
	f := make([]byte, spec.Size)
	if _, err := b.Frame(f, 0); err != nil {
		t.Fatal(err)
	}
	rb := &relayBench{name: "t", auth: true}
	if err := rb.setupMemif(spec); err != nil {
		t.Fatal(err)
	}
	var r wire.Result
	wire.Classify(f, rb.m, &r)
	if r.Drop != wire.DropNone || r.Type != wire.TypeData {
		t.Fatalf("generated frame classifies as %+v", r)
	}
	rt, ok := rb.t.Routes().Lookup(route.SessionID(r.Session))
	if !ok {
		t.Fatal("no route for the generator's session")
	}
	if rt.EgressPort != 0 || rt.DstMAC != memifGenMAC || rt.SrcMAC != memifRelayMAC {
		t.Fatalf("route %+v does not send the frame back to the generator", rt)
	}
	if !hopmac.New(memifKey).Verify(f[r.PoolOff : int(r.PayloadOff)+int(r.PayloadLen)]) {
		t.Fatal("generated frame's hop MAC does not verify under the relay's key")
	}
}

func TestMemifDevice(t *testing.T) {
	m := &memifBench{dir: "/tmp/x"}
	d := m.device(21, "server", "relay.sock")
	if d != "net_memif21,role=server,id=0,socket-abstract=no,socket=/tmp/x/relay.sock" {
		t.Fatalf("device %q", d)
	}
}

func TestGeneratorBound(t *testing.T) {
	for _, c := range []struct {
		s    memifSample
		want bool
	}{
		{memifSample{tx: 7, refused: 0, rx: 6.9}, true},
		{memifSample{tx: 4.6, refused: 2, rx: 4.6}, false}, // the ring filled: the other end is slower
		{memifSample{tx: 7, refused: 0, rx: 3}, false},     // frames went missing on the other end
	} {
		if got := generatorBound(c.s); got != c.want {
			t.Errorf("generatorBound(%+v) = %v, want %v", c.s, got, c.want)
		}
	}
	m := medianSample([]memifSample{{1, 0, 1}, {3, 1, 2}, {2, 2, 3}})
	if m != (memifSample{2, 1, 2}) {
		t.Errorf("medianSample = %+v", m)
	}
}

// TestMemif runs the memif section for one short round on the test EAL
// (--no-huge): the generator into the relay with and without hop
// authentication, and into testpmd io when dpdk-testpmd is installed.
// Frames must come back, and the relay must drop none.
func TestMemif(t *testing.T) {
	e := env.Need(t)
	c := &config{testpmd: "dpdk-testpmd", mainCore: env.MainCore, workCore: env.WorkCore, rounds: 1,
		warmup: 1, seconds: 1, size: 128, burst: 32, mbufs: 2047, memMB: 256}
	s := &session{c: c, e: e, log: logging.Nop()}
	m, err := openMemif(s)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	ctx := context.Background()
	check := func(name string, g genResult) {
		t.Helper()
		if len(g.samples) != c.seconds {
			t.Fatalf("%s: %d samples, want %d", name, len(g.samples), c.seconds)
		}
		s := g.samples[0]
		t.Logf("%s: tx %.2f refused %.2f rx %.2f Mpps", name, s.tx, s.refused, s.rx)
		if s.tx <= 0 || s.rx <= 0 || s.rx > 1.1*s.tx {
			t.Fatalf("%s: tx %.2f rx %.2f Mpps", name, s.tx, s.rx)
		}
	}
	for _, rb := range []*relayBench{{name: "noauth"}, {name: "auth", auth: true}} {
		g, err := m.runRelay(ctx, rb)
		if err != nil {
			t.Fatal(err)
		}
		check(rb.name, g)
		rb.fold()
		for reason, n := range rb.drops {
			if n != 0 {
				t.Errorf("%s: %d frames dropped for reason %d", rb.name, n, reason)
			}
		}
	}
	if _, err := exec.LookPath(c.testpmd); err != nil {
		t.Log("no dpdk-testpmd: testpmd part not run")
		return
	}
	g, err := m.runTestpmd(ctx, &memory{noHuge: true, why: "test"}, "io")
	if err != nil {
		t.Fatal(err)
	}
	check("testpmd io", g)
}

// TestReportMemif checks that the memif line comes out with the medians.
func TestReportMemif(t *testing.T) {
	var out bytes.Buffer
	r := memifResults{samples: map[string][]memifSample{
		"dpdk-testpmd macswap": {{tx: 6, rx: 6}},
		"relay (hop auth)":     {{tx: 3, refused: 2, rx: 3}},
	}, allocFail: map[string]uint64{}}
	reportMemif(&out, &config{size: 128}, r)
	if !strings.Contains(out.String(), "memif: relay_mpps=3.00 testpmd_macswap_mpps=6.00 ratio=0.50\n") {
		t.Fatalf("report:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "the ratio a ceiling") {
		t.Fatalf("report does not say testpmd was generator-bound:\n%s", out.String())
	}
}
