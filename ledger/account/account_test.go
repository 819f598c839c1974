package account

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/ledger/cheque"
	"github.com/poolrelay/poolrelay/ledger/peer"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func terms(pkt, byt uint64) Terms {
	return Terms{Prices: Prices{Packet: pkt, Byte: byt, ControlPacket: 10, ControlByte: 0},
		Payment: 1000, Disconnect: 1250}
}

func connected() *Account {
	a := &Account{Peer: peer.ID{1}}
	a.Connect(t0, terms(2, 1), terms(3, 1))
	return a
}

func snap(epoch, forB, byB uint64) Counters {
	return Counters{Epoch: epoch, RelayedFor: Traffic{Packets: forB / 100, Bytes: forB},
		RelayedBy: Traffic{Packets: byB / 100, Bytes: byB}}
}

func TestObserveCharges(t *testing.T) {
	a := connected()
	d := a.Observe(Counters{Epoch: 1, RelayedFor: Traffic{10, 1000}, ControlIn: Traffic{2, 100}})
	// ours: 10*2 + 1000*1 + 2*10 = 1040 charged to the peer
	if a.Balance != 1040 || d.RelayedFor.Bytes != 1000 {
		t.Fatalf("balance %d delta %+v", a.Balance, d)
	}
	a.Observe(Counters{Epoch: 1, RelayedFor: Traffic{10, 1000}, ControlIn: Traffic{2, 100},
		RelayedBy: Traffic{5, 500}, ControlOut: Traffic{1, 50}})
	// theirs: 5*3 + 500 + 1*10 = 525 charged to us
	if a.Balance != 1040-525 {
		t.Fatalf("balance %d", a.Balance)
	}
	if a.Usage.RelayedBy.Bytes != 500 || a.Usage.ControlOut.Packets != 1 {
		t.Fatalf("usage %+v", a.Usage)
	}
}

// A dropped snapshot loses nothing, a repeated or reordered one counts
// nothing twice, a restart (new epoch) counts from zero, and a straggler of
// an old epoch is ignored.
func TestObserveCumulativeSemantics(t *testing.T) {
	a := connected()
	a.Ours.Prices, a.Theirs.Prices = Prices{Byte: 1}, Prices{Byte: 1}
	a.Observe(snap(5, 100, 0))
	// snapshot (5, 200) dropped
	a.Observe(snap(5, 300, 0))
	a.Observe(snap(5, 300, 0)) // repeated
	a.Observe(snap(5, 250, 0)) // stale, reordered
	if a.Usage.RelayedFor.Bytes != 300 || a.Balance != 300 {
		t.Fatalf("after drop/repeat/reorder: usage %d balance %d", a.Usage.RelayedFor.Bytes, a.Balance)
	}
	a.Observe(snap(6, 40, 0)) // source restarted: 40 new bytes
	a.Observe(snap(5, 900, 0))
	if a.Usage.RelayedFor.Bytes != 340 || a.Balance != 340 {
		t.Fatalf("after restart and straggler: usage %d balance %d", a.Usage.RelayedFor.Bytes, a.Balance)
	}
}

func TestReceiveDebtThenSurplus(t *testing.T) {
	a := connected()
	a.Ours.Prices = Prices{Byte: 1}
	a.Observe(snap(1, 500, 0))
	c := cheque.Cheque{Cumulative: 300, Sequence: 1}
	inc, sur, err := a.Receive(&c)
	if err != nil || inc != 300 || sur != 0 || a.Balance != 200 {
		t.Fatalf("%d %d %v balance %d", inc, sur, err, a.Balance)
	}
	c = cheque.Cheque{Cumulative: 800, Sequence: 2}
	inc, sur, err = a.Receive(&c)
	if err != nil || inc != 500 || sur != 300 || a.Balance != 0 || a.Surplus != 300 {
		t.Fatalf("overpay: %d %d %v balance %d surplus %d", inc, sur, err, a.Balance, a.Surplus)
	}
	// The surplus is never a debt of ours: we owe nothing.
	if a.Owed() != 0 {
		t.Fatalf("owed %d after overpayment", a.Owed())
	}
	// The peer's later use draws on the surplus first.
	a.Observe(snap(1, 700, 0))
	if a.Surplus != 100 || a.Balance != 0 {
		t.Fatalf("surplus %d balance %d", a.Surplus, a.Balance)
	}
	a.Observe(snap(1, 900, 0))
	if a.Surplus != 0 || a.Balance != 100 {
		t.Fatalf("surplus %d balance %d", a.Surplus, a.Balance)
	}
	// Replayed and non-increasing cheques change nothing.
	before := *a
	c = cheque.Cheque{Cumulative: 800, Sequence: 2}
	if _, _, err := a.Receive(&c); !errors.Is(err, cheque.ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	c = cheque.Cheque{Cumulative: 800, Sequence: 3}
	if _, _, err := a.Receive(&c); !errors.Is(err, cheque.ErrNotIncreasing) {
		t.Fatalf("not increasing: %v", err)
	}
	if *a != before {
		t.Fatal("rejected cheque changed the account")
	}
}

func TestPayAndNextCheque(t *testing.T) {
	a := connected()
	a.Theirs.Prices = Prices{Byte: 1}
	self := peer.ID{9}
	if _, ok := a.NextCheque(1, self, t0); ok {
		t.Fatal("cheque while owing nothing")
	}
	a.Observe(snap(1, 0, 700))
	c, ok := a.NextCheque(1, self, t0)
	if !ok || c.Cumulative != 700 || c.Sequence != 1 || c.Beneficiary != a.Peer || c.Issuer != self {
		t.Fatalf("%+v %v", c, ok)
	}
	if a.Pay(&c) != 700 || a.Balance != 0 || a.Pay(&c) != 0 {
		t.Fatalf("pay: balance %d", a.Balance)
	}
	a.Observe(snap(1, 0, 1000))
	c, _ = a.NextCheque(1, self, t0)
	if c.Cumulative != 1000 || c.Sequence != 2 {
		t.Fatalf("%+v", c)
	}
}

// Forgiveness counts from the connection, not from the epoch or from when
// the account was created, and never while disconnected.
func TestForgiveFromConnectTime(t *testing.T) {
	a := &Account{Peer: peer.ID{1}}
	ours := terms(0, 1)
	ours.ForgivePerSecond = 10
	theirs := terms(0, 1)
	theirs.ForgivePerSecond = 4
	a.Connect(t0, ours, theirs)
	a.Observe(snap(1, 1000, 0))
	a.Disconnect(t0.Add(2 * time.Second))
	if a.Balance != 980 || a.Forgiven != 20 {
		t.Fatalf("balance %d forgiven %d", a.Balance, a.Forgiven)
	}
	// A day offline, then reconnect: nothing forgiven for the day.
	later := t0.Add(24 * time.Hour)
	a.Connect(later, ours, theirs)
	if by, _ := a.Forgive(later); by != 0 || a.Balance != 980 {
		t.Fatalf("forgave %d for time offline", by)
	}
	a.Forgive(later.Add(1500 * time.Millisecond))
	if a.Balance != 965 {
		t.Fatalf("balance %d", a.Balance)
	}
	// Forgiveness stops at zero.
	a.Forgive(later.Add(time.Hour))
	if a.Balance != 0 {
		t.Fatalf("balance %d", a.Balance)
	}
	// Our debt is forgiven at the peer's rate.
	a.Observe(snap(1, 1000, 100))
	a.Forgive(later.Add(time.Hour + 5*time.Second))
	if a.Balance != -80 || a.ForgivenToUs != 20 {
		t.Fatalf("balance %d forgiven to us %d", a.Balance, a.ForgivenToUs)
	}
	// A clock stepped back forgives nothing and does not underflow.
	a.Forgive(later)
	a.Forgive(later.Add(time.Second))
	if a.Balance != -76 {
		t.Fatalf("balance %d", a.Balance)
	}
}

func TestAbandonForgivesNothing(t *testing.T) {
	a := &Account{Peer: peer.ID{1}}
	ours := terms(0, 1)
	ours.ForgivePerSecond = 10
	a.Connect(t0, ours, terms(0, 1))
	a.Observe(snap(1, 1000, 0))
	a.Abandon()
	a.Forgive(t0.Add(time.Hour))
	if a.Balance != 1000 || a.Connected {
		t.Fatalf("balance %d", a.Balance)
	}
}

func TestSaturation(t *testing.T) {
	a := connected()
	a.Ours.Prices = Prices{Byte: math.MaxUint64}
	a.Observe(snap(1, 10, 0))
	a.Observe(snap(1, 20, 0))
	if a.Balance != math.MaxInt64 {
		t.Fatalf("balance %d", a.Balance)
	}
	a.Theirs.Prices = Prices{Byte: math.MaxUint64}
	for range 3 {
		a.Observe(Counters{Epoch: a.Base.Epoch + 1, RelayedBy: Traffic{Bytes: 10}})
	}
	if a.Balance != math.MinInt64 || a.Owed() != 1<<63 {
		t.Fatalf("balance %d owed %d", a.Balance, a.Owed())
	}
	if perSecond(math.MaxUint64, uint64(time.Hour)) != math.MaxUint64 {
		t.Fatal("perSecond does not saturate")
	}
}

func TestTermsCheck(t *testing.T) {
	l := Limits{MinPayment: 100, MaxPrices: Prices{Byte: 4}}
	good := Terms{Prices: Prices{Byte: 4}, Payment: 100, Disconnect: 125}
	if err := good.Check(l); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		t    Terms
		want error
	}{
		"small":     {Terms{Payment: 99, Disconnect: 200}, ErrThresholdTooSmall},
		"equal":     {Terms{Payment: 100, Disconnect: 100}, ErrDisconnectNotBeyond},
		"below":     {Terms{Payment: 100, Disconnect: 50}, ErrDisconnectNotBeyond},
		"expensive": {Terms{Prices: Prices{Byte: 5}, Payment: 100, Disconnect: 125}, ErrPriceTooHigh},
	} {
		if err := tc.t.Check(l); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestObserveNoAllocs(t *testing.T) {
	a := connected()
	var i uint64
	if n := testing.AllocsPerRun(1000, func() { i++; a.Observe(snap(1, i*100, i*50)) }); n != 0 {
		t.Fatalf("Observe allocates %v", n)
	}
}

func FuzzTerms(f *testing.F) {
	b, _ := terms(1, 2).AppendBinary(nil)
	f.Add(b)
	f.Add(b[:10])
	r := rand.New(rand.NewPCG(3, 4))
	c := bytes.Clone(b)
	c[r.IntN(len(c))]++
	f.Add(c)
	f.Fuzz(func(t *testing.T, b []byte) {
		var tm Terms
		if err := tm.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrMalformedTerms) {
				t.Fatal(err)
			}
			return
		}
		out, _ := tm.AppendBinary(nil)
		if !bytes.Equal(out, b) {
			t.Fatalf("not canonical: %x -> %x", b, out)
		}
		_ = tm.Check(Limits{MinPayment: 1})
	})
}

func BenchmarkObserve(b *testing.B) {
	a := connected()
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		i++
		a.Observe(snap(1, i*1500, i*700))
	}
}

// A peer may pay while we owe it (its cheque crossed our traffic): what we
// owe stays owed and the whole payment becomes surplus. Found by the
// ledger's bilateral property test.
func TestReceiveWhileWeOwe(t *testing.T) {
	a := connected()
	a.Theirs.Prices = Prices{Byte: 1}
	a.Observe(snap(1, 0, 300))
	if a.Balance != -300 {
		t.Fatalf("balance %d", a.Balance)
	}
	c := cheque.Cheque{Cumulative: 100, Sequence: 1}
	inc, sur, err := a.Receive(&c)
	if err != nil || inc != 100 || sur != 100 || a.Balance != -300 || a.Surplus != 100 || a.Net() != -400 {
		t.Fatalf("%d %d %v: balance %d surplus %d", inc, sur, err, a.Balance, a.Surplus)
	}
}

// The peer's counters mirror ours direction by direction; Shortfall is what
// ours lack of them, never negative; Adopt charges it as Observe would,
// without touching the data plane's base.
func TestMirrorShortfallAdopt(t *testing.T) {
	tr := func(p, b uint64) Traffic { return Traffic{Packets: p, Bytes: b} }
	theirs := Counters{Epoch: 9, RelayedFor: tr(1, 100), RelayedBy: tr(2, 200), ControlIn: tr(3, 300), ControlOut: tr(4, 400)}
	m := theirs.Mirror()
	if want := (Counters{RelayedFor: tr(2, 200), RelayedBy: tr(1, 100), ControlIn: tr(4, 400), ControlOut: tr(3, 300)}); m != want {
		t.Fatalf("mirror %+v", m)
	}
	ours := Counters{RelayedFor: tr(1, 250), RelayedBy: tr(1, 100), ControlIn: tr(5, 0), ControlOut: tr(0, 0)}
	short := m.Shortfall(ours)
	if want := (Counters{RelayedFor: tr(1, 0), ControlIn: tr(0, 400), ControlOut: tr(3, 300)}); short != want {
		t.Fatalf("shortfall %+v, want %+v", short, want)
	}
	var a Account
	a.Connect(t0, terms(10, 1), terms(20, 2))
	a.Observe(Counters{Epoch: 1, RelayedFor: tr(1, 250), RelayedBy: tr(1, 100), ControlIn: tr(5, 0)})
	base, bal := a.Base, a.Balance
	toPeer, toUs := a.Adopt(short)
	// Ours: 10/packet, 1/byte, 10/control packet; theirs 20, 2, 10.
	if toPeer != 10*1+0+0*10 || toUs != 3*10 {
		t.Fatalf("charges %d to the peer, %d to us", toPeer, toUs)
	}
	if a.Balance != bal+int64(toPeer)-int64(toUs) || a.Base != base {
		t.Fatalf("balance %d (was %d), base %+v (was %+v)", a.Balance, bal, a.Base, base)
	}
	if a.Usage.Shortfall(m) != (Counters{RelayedFor: tr(0, 50), ControlIn: tr(1, 0)}) || m.Shortfall(a.Usage) != (Counters{}) {
		t.Fatalf("after adopting, usage %+v still lacks %+v", a.Usage, m.Shortfall(a.Usage))
	}
}

// The uncredited part of RelayedBy is charged as the rest of it (it is a
// part of it), tracked as its own delta, and never exceeds RelayedBy's
// delta, also when its base was lost (a checkpoint does not hold it).
func TestObserveUncredited(t *testing.T) {
	a := connected()
	a.Ours.Prices, a.Theirs.Prices = Prices{Byte: 1}, Prices{Byte: 1}
	c := snap(1, 0, 1000)
	c.RelayedByUncredited = Traffic{Packets: 4, Bytes: 400}
	if d := a.Observe(c); d.RelayedByUncredited.Bytes != 400 || a.Balance != -1000 {
		t.Fatalf("delta %+v balance %d", d, a.Balance)
	}
	c = snap(1, 0, 1500)
	c.RelayedByUncredited = Traffic{Packets: 9, Bytes: 900}
	if d := a.Observe(c); d.RelayedByUncredited.Bytes != 500 || a.Usage.RelayedByUncredited.Bytes != 900 {
		t.Fatalf("delta %+v usage %+v", d, a.Usage)
	}
	// Restored from a checkpoint: the base of the uncredited part is gone.
	a.Base.RelayedByUncredited = Traffic{}
	c = snap(1, 0, 1600)
	c.RelayedByUncredited = Traffic{Packets: 10, Bytes: 1000}
	if d := a.Observe(c); d.RelayedByUncredited.Bytes != 100 || d.RelayedBy.Bytes != 100 {
		t.Fatalf("delta after a lost base %+v, want at most RelayedBy's 100", d)
	}
}
