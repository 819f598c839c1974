package bursttest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/dpdk"
)

func newBurst(t *testing.T, cfg Config) *Burst {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustPanic runs f and fails unless it panics with a message containing
// want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if s, _ := r.(string); !strings.Contains(s, want) {
			t.Errorf("panic %v, want one about %q", r, want)
		}
	}()
	f()
}

// TestRoundTrip: frames received are copies in mbufs the accessors read
// and write; what is sent, punted or dropped ends where it should.
func TestRoundTrip(t *testing.T) {
	b := newBurst(t, Config{Size: 4, Tx: 2, Mbufs: 16})
	in := [][]byte{[]byte("zero"), []byte("one"), []byte("two"), []byte("three")}
	rx := b.Cycle(in...)
	if len(rx) != 4 || b.InUse() != 4 {
		t.Fatalf("received %d, %d in use", len(rx), b.InUse())
	}
	for i, m := range rx {
		if !bytes.Equal(m.Data(), in[i]) || m.Segments() != 1 || m.Headroom() != dpdk.Headroom {
			t.Fatalf("mbuf %d: %q, %d segments, headroom %d", i, m.Data(), m.Segments(), m.Headroom())
		}
	}
	rx[0].Data()[0] = 'Z'
	if d := rx[1].Prepend(2); len(d) != 5 {
		t.Fatalf("Prepend: %d bytes", len(d))
	}
	b.SendBurst(1, rx[:2])
	b.PuntBurst(rx[2:3])
	b.DropBurst(rx[3:])
	b.Flush()
	if s := b.Sent(1); len(s) != 2 || string(s[0].Data()) != "Zero" || len(s[1].Data()) != 5 {
		t.Errorf("sent %d frames", len(s))
	}
	if p := b.Punted(); len(p) != 1 || string(p[0].Data()) != "two" {
		t.Errorf("punted %d frames", len(p))
	}
	if st := b.Stats(); st.Rx != 4 || st.Tx != 2 || st.Punted != 1 || st.Dropped != 1 || b.InUse() != 0 {
		t.Errorf("stats %+v, %d in use", st, b.InUse())
	}
	b.Flush()
	if len(b.Sent(1)) != 0 || len(b.Punted()) != 0 {
		t.Error("a second flush still shows the first one's frames")
	}
}

// TestOwnership: an mbuf handed on twice, or one the worker does not
// hold, panics.
func TestOwnership(t *testing.T) {
	b := newBurst(t, Config{Size: 4, Mbufs: 16})
	rx := b.Cycle([]byte("a"), []byte("b"))
	b.SendBurst(0, rx[:1])
	mustPanic(t, "queued", func() { b.DropBurst(rx[:1]) })
	other := newBurst(t, Config{Mbufs: 1}).Cycle([]byte("x"))
	mustPanic(t, "not the Burst's", func() { b.PuntBurst(other) })
	mustPanic(t, "more than Size", func() { b.SendBurst(0, make([]*dpdk.Mbuf, 4)) })
	b.FreeBulk(rx[1:])
	mustPanic(t, "free", func() { b.FreeBulk(rx[1:]) })
	if b.InUse() != 1 {
		t.Errorf("%d in use, want the one queued", b.InUse())
	}
}

// TestRefused: a TX buffer with room for 2 sends 2 a flush; KeepRefused
// keeps the rest at its head for Unsend or the next flush, and without it
// they are freed and counted.
func TestRefused(t *testing.T) {
	for _, keep := range []bool{false, true} {
		b := newBurst(t, Config{Size: 8, Mbufs: 32, KeepRefused: keep})
		b.SetTxRoom(0, 2)
		b.SendBurst(0, b.Cycle([]byte("0"), []byte("1"), []byte("2"), []byte("3"), []byte("4")))
		b.Flush()
		st := b.Stats()
		if !keep {
			if st.Tx != 2 || st.TxUnsent != 3 || b.Pending(0) != 0 || b.InUse() != 0 {
				t.Errorf("without keep: %+v, %d pending, %d in use", st, b.Pending(0), b.InUse())
			}
			continue
		}
		if st.Tx != 2 || st.TxRefused != 3 || b.Pending(0) != 3 {
			t.Fatalf("with keep: %+v, %d pending", st, b.Pending(0))
		}
		b.Unsend(0, 1)
		b.Flush()
		if s := b.Sent(0); len(s) != 2 || string(s[0].Data()) != "2" || b.Pending(0) != 0 || b.InUse() != 1 {
			t.Errorf("after Unsend of one and a flush: %d sent, %d pending, %d in use", len(s), b.Pending(0), b.InUse())
		}
	}
}

// TestInject: without CollectInject the ring tops the TX buffer up; with
// it a flush collects, TakeInjected hands the frames over, and the ring is
// read again only once they were all taken.
func TestInject(t *testing.T) {
	b := newBurst(t, Config{Size: 2, Mbufs: 16})
	b.Inject(0, []byte("i0"))
	b.Inject(0, []byte("i1"))
	b.Inject(0, []byte("i2"))
	b.Flush()
	if s := b.Sent(0); len(s) != 2 || string(s[0].Data()) != "i0" {
		t.Errorf("top-up sent %d", len(s))
	}
	c := newBurst(t, Config{Size: 2, Mbufs: 16, CollectInject: true})
	for _, f := range []string{"c0", "c1", "c2"} {
		c.Inject(0, []byte(f))
	}
	c.Flush()
	if got := c.TakeInjected(0, 1); len(got) != 1 || string(got[0].Data()) != "c0" {
		t.Fatalf("TakeInjected: %d", len(got))
	} else {
		c.DropBurst(got)
	}
	c.Flush() // one left: the ring is not read
	got := c.TakeInjected(0, 5)
	if len(got) != 1 || string(got[0].Data()) != "c1" {
		t.Fatalf("second take: %d", len(got))
	}
	c.DropBurst(got)
	c.Flush()
	if got := c.TakeInjected(0, 5); len(got) != 1 || string(got[0].Data()) != "c2" || c.Stats().Injected != 3 {
		t.Errorf("third take: %d, injected %d", len(got), c.Stats().Injected)
	}
}
