package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/internal/lab/labtest"
	"github.com/poolrelay/poolrelay/internal/netns"
	"github.com/poolrelay/poolrelay/internal/syncbuf"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// TestLab builds a two-relay lab with the real pool_relay and pool_node,
// checks its addressing, starts and enrolls the relays, sends end node A's
// frames to B through both, reads the relays' tables, and checks that Close
// leaves nothing behind.
func TestLab(t *testing.T) {
	bin := labtest.Binaries(t, "the lab")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log syncbuf.Buffer
	var out bytes.Buffer
	l, err := New(Config{Base: "lt", Work: "pool_labtest-", What: "test", Bin: bin, Net: 79, Relays: 2,
		Log: &log, CLITimeout: 20 * time.Second, Poll: 50 * time.Millisecond}, &out)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			l.Close()
		}
		if t.Failed() {
			t.Logf("process output:\n%s", log.String())
		}
	}()
	r1, r2 := l.Relays[0], l.Relays[1]

	// The line's addresses: A .1 and r1 .2 on subnet 1, r1 .1 and r2 .2 on
	// subnet 2, r2 .1 and B .2 on subnet 3.
	for _, c := range []struct{ got, want string }{
		{l.AAddr.String(), "10.79.1.1/24"}, {l.BAddr.String(), "10.79.3.2/24"},
		{r1.Addrs[0].String(), "10.79.1.2/24"}, {r1.Addrs[1].String(), "10.79.2.1/24"},
		{r2.Addrs[0].String(), "10.79.2.2/24"}, {r2.Addrs[1].String(), "10.79.3.1/24"},
		{r1.Endpoint(0), "10.79.1.2:9254"}, {r2.Endpoint(1), "10.79.3.1:9254"},
		{r2.FilePrefix, strings.TrimSuffix(l.Env.Prefix(), "-") + "_r2"},
	} {
		if c.got != c.want {
			t.Errorf("%s, want %s", c.got, c.want)
		}
	}
	// Each namespace holds its ends of the veths, the end nodes' with their
	// addresses, the relays' with none (DPDK takes those interfaces).
	for _, c := range []struct {
		ns   *netns.NS
		want []string
		none bool
	}{
		{l.A, []string{l.Env.Name("a0") + " ", "inet 10.79.1.1/24"}, false},
		{l.B, []string{l.Env.Name("b0") + " ", "inet 10.79.3.2/24"}, false},
		{r1.NS, []string{r1.Ports[0] + "@", r1.Ports[1] + "@"}, true},
		{r2.NS, []string{r2.Ports[0] + "@", r2.Ports[1] + "@"}, true},
	} {
		var b bytes.Buffer
		if err := c.ns.Run(ctx, &b, "ip", "-o", "addr", "show"); err != nil {
			t.Fatal(err)
		}
		var links bytes.Buffer
		if err := c.ns.Run(ctx, &links, "ip", "-o", "link", "show"); err != nil {
			t.Fatal(err)
		}
		all := b.String() + links.String()
		for _, w := range c.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s lacks %q:\n%s", c.ns.Name, w, all)
			}
		}
		if strings.Contains(b.String(), "inet6") {
			t.Errorf("%s has IPv6 on:\n%s", c.ns.Name, b.String())
		}
		if c.none && strings.Contains(b.String(), "inet 10.") {
			t.Errorf("%s: a relay's veth end has an address:\n%s", c.ns.Name, b.String())
		}
	}

	for _, r := range l.Relays {
		if err := l.Start(r, r.BaseConfig("lab_test", "af_packet")); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range l.Relays {
		if err := l.WaitUp(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := l.Identify(ctx, r); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(r.ID) || r.Addr == "" {
			t.Fatalf("%s: identity %q, address %q", r.Name, r.ID, r.Addr)
		}
	}
	if err := l.Enroll(ctx, r1, r2); err != nil {
		t.Fatal(err)
	}
	if err := l.Retry(ctx, 20*time.Second, func() error {
		_, err := l.Peer(ctx, r2, r1.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	a, err := l.NewNode(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.NewNode(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := l.StartSink(ctx, r2, b)
	if err != nil {
		t.Fatal(err)
	}
	const frames = 200
	sender, err := l.Sup.Start(l.A, filepath.Join(l.Work, "a.log"), l.NodeBin, l.SenderArgs(a, b.Address, []*Relay{r2}, frames, 500, 1000)...)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sender.Done():
	case <-ctx.Done():
		t.Fatal("A did not finish")
	}
	if err := sender.Err(); err != nil {
		t.Fatalf("A: %v\n%s", err, sender.Tail())
	}
	if err := sink.Stop(10 * time.Second); err != nil {
		t.Errorf("B: %v", err)
	}
	if m := regexp.MustCompile(`received=(\d+)`).FindAllStringSubmatch(sink.Output(), -1); len(m) == 0 || m[len(m)-1][1] != strconv.Itoa(frames) {
		t.Errorf("B received %v, A sent %d:\n%s", m, frames, sink.Tail())
	}
	p, err := l.Peer(ctx, r1, r2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Connected || p.ID != r2.ID {
		t.Errorf("r1's row of r2: %+v", p)
	}
	st, err := l.Stats(ctx, r2)
	if err != nil {
		t.Fatal(err)
	}
	if st.Control == nil || st.DropMap() == nil {
		t.Errorf("r2's stats: %+v", st)
	}
	if _, err := l.Peer(ctx, r1, strings.Repeat("0", 64)); err == nil {
		t.Error("Peer found an account of a peer that never was")
	}
	// unenroll, named by an id prefix as an operator types it, answers with
	// the peer it closed by its full id and where it was reached; the
	// account stays, its session does not.
	out2, err := l.CLI(ctx, "unenroll", r2.ID[:8], "--socket", r1.Socket)
	if want := "unenrolled " + r2.ID + " at " + r2.Endpoint(0); err != nil || !strings.HasPrefix(out2, want) {
		t.Errorf("unenroll: %q, %v; want %q", out2, err, want)
	}
	if err := l.Retry(ctx, 10*time.Second, func() error {
		p, err := l.Peer(ctx, r1, r2.ID)
		if err == nil && p.Connected {
			err = fmt.Errorf("r2 still connected at r1 after unenroll")
		}
		return err
	}); err != nil {
		t.Error(err)
	}
	for _, r := range l.Relays {
		if err := r.Proc.Stop(20 * time.Second); err != nil {
			t.Errorf("%s: %v\n%s", r.Name, err, r.Proc.Tail())
		}
	}

	work := l.Work
	closed = true
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("work directory %s left behind (%v)", work, err)
	}
	labtest.Leftovers(t, "lt")
}
