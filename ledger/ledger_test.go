package ledger

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/cheque"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/ledger/score"
)

// A owes B for relaying; once the debt passes half of B's payment
// threshold, A's Tick issues a cheque, Due hands it out, B credits it and
// acknowledges, and A stops resending.
func TestSettlementFlow(t *testing.T) {
	clk := clock.NewFake(t0)
	a, b := newNode(t, "a", clk, testConfig()), newNode(t, "b", clk, testConfig())
	connect(t, a, b)
	early := b.l.Terms(a.id).Payment / 2 // 50 kB for a newcomer

	// A hands B 40 kB to relay: below the early-settlement point.
	a.l.Observe(b.id, traffic(1, 0, 40_000))
	b.l.Observe(a.id, traffic(1, 40_000, 0))
	if rep, _ := a.l.Tick(); rep.Issued != 0 {
		t.Fatal("cheque issued below the early-settlement point")
	}
	a.l.Observe(b.id, traffic(1, 0, 60_000))
	b.l.Observe(a.id, traffic(1, 60_000, 0))
	av := a.view(b.id).Account
	owed := av.Owed()
	if owed < early {
		t.Fatalf("owed %d, early %d", owed, early)
	}
	rep, err := a.l.Tick()
	if err != nil || rep.Issued != 1 {
		t.Fatalf("%v %+v", err, rep)
	}
	if v := a.view(b.id).Account; v.Balance != 0 || v.SentTotal != owed {
		t.Fatalf("after issue: %+v", v)
	}
	out := a.l.Due(nil)
	if len(out) != 1 || out[0].Peer != b.id || out[0].Attempt != 1 {
		t.Fatalf("due: %+v", out)
	}
	r, err := b.l.ReceiveCheque(a.id, out[0].Cheque[:])
	if err != nil || r.Increase != owed || r.Cumulative != owed || r.Surplus != 0 {
		t.Fatalf("receive: %v %+v", err, r)
	}
	if bv := b.view(a.id).Account; bv.Balance != 0 || bv.ReceivedTotal != owed {
		t.Fatalf("B's view: %+v", bv)
	}
	// The ack is lost: A resends after backoff, B answers ErrDuplicate with
	// the cumulative to acknowledge, and A stops.
	clk.Advance(time.Second)
	out = a.l.Due(nil)
	if len(out) != 1 || out[0].Attempt != 2 {
		t.Fatalf("resend: %+v", out)
	}
	r, err = b.l.ReceiveCheque(a.id, out[0].Cheque[:])
	if !errors.Is(err, ErrDuplicate) || r.Cumulative != owed {
		t.Fatalf("duplicate: %v %+v", err, r)
	}
	a.l.ChequeAcked(b.id, r.Cumulative)
	clk.Advance(time.Hour)
	if out = a.l.Due(nil); len(out) != 0 {
		t.Fatalf("acknowledged cheque resent: %+v", out)
	}
	if len(b.entries(event.ChequeReceived)) != 1 || len(b.entries(event.ChequeRejected)) != 0 {
		t.Fatal("B's journal")
	}
	if iss := a.entries(event.ChequeIssued); len(iss) != 1 || iss[0].(*event.ChequeEntry).Signed.Cumulative != owed {
		t.Fatalf("A's journal: %+v", iss)
	}
}

// Every kind of bad cheque is refused with its sentinel, journalled as
// CHEQUE_REJECTED with its reason, and changes no balance.
func TestRejectedCheques(t *testing.T) {
	clk := clock.NewFake(t0)
	a, b := newNode(t, "a", clk, testConfig()), newNode(t, "b", clk, testConfig())
	connect(t, a, b)
	kc, c := keyOf("carol")
	good := func(cum, seq uint64) cheque.Cheque {
		return cheque.Cheque{Network: 1, Issuer: a.id, Beneficiary: b.id, Cumulative: cum, Sequence: seq, Date: 1}
	}
	mk := func(ch cheque.Cheque, key ed25519.PrivateKey) []byte {
		s, err := cheque.Sign(ch, key)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := s.MarshalBinary()
		return raw
	}
	first := mk(good(1000, 1), a.key)
	if _, err := b.l.ReceiveCheque(a.id, first); err != nil {
		t.Fatal(err)
	}
	second := mk(good(2000, 2), a.key)
	if _, err := b.l.ReceiveCheque(a.id, second); err != nil {
		t.Fatal(err)
	}
	before := b.view(a.id).Account
	forged := bytes.Clone(mk(good(5000, 3), a.key))
	forged[cheque.Size+5] ^= 1
	wrongBen := good(5000, 3)
	wrongBen.Beneficiary = c
	wrongNet := good(5000, 3)
	wrongNet.Network = 2
	carols := cheque.Cheque{Network: 1, Issuer: c, Beneficiary: b.id, Cumulative: 5000, Sequence: 1}
	for _, tc := range []struct {
		name   string
		raw    []byte
		want   error
		reason string
	}{
		{"replayed", first, cheque.ErrReplay, "replay"},
		{"non-increasing", mk(good(2000, 3), a.key), cheque.ErrNotIncreasing, "not_increasing"},
		{"decreasing", mk(good(1500, 3), a.key), cheque.ErrNotIncreasing, "not_increasing"},
		{"forged", forged, cheque.ErrBadSignature, "bad_signature"},
		{"wrong beneficiary", mk(wrongBen, a.key), cheque.ErrWrongBeneficiary, "wrong_beneficiary"},
		{"wrong network", mk(wrongNet, a.key), cheque.ErrWrongNetwork, "wrong_network"},
		{"someone else's cheque", mk(carols, kc), cheque.ErrWrongIssuer, "wrong_issuer"},
		{"garbage", []byte("not a cheque"), cheque.ErrMalformed, "malformed"},
	} {
		n := len(b.entries(event.ChequeRejected))
		if _, err := b.l.ReceiveCheque(a.id, tc.raw); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		rej := b.entries(event.ChequeRejected)
		if len(rej) != n+1 || rej[n].(*event.Rejected).Reason != tc.reason || rej[n].(*event.Rejected).Peer != a.id {
			t.Errorf("%s: journal %+v", tc.name, rej[n:])
		}
	}
	// Carol is not a peer of B at all.
	if _, err := b.l.ReceiveCheque(c, mk(carols, kc)); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("unknown peer: %v", err)
	}
	if after := b.view(a.id).Account; after != before {
		t.Fatalf("rejected cheques changed the account:\n%+v\n%+v", before, after)
	}
}

// Paying beyond the debt leaves a surplus, never a debt of the payee.
func TestOverpaymentIsSurplus(t *testing.T) {
	clk := clock.NewFake(t0)
	a, b := newNode(t, "a", clk, testConfig()), newNode(t, "b", clk, testConfig())
	connect(t, a, b)
	b.l.Observe(a.id, traffic(1, 10_000, 0)) // A owes B about 10 kB
	bv0 := b.view(a.id).Account
	debt := bv0.Debt()
	s, _ := cheque.Sign(cheque.Cheque{Network: 1, Issuer: a.id, Beneficiary: b.id, Cumulative: 50_000, Sequence: 1}, a.key)
	raw, _ := s.MarshalBinary()
	r, err := b.l.ReceiveCheque(a.id, raw)
	if err != nil || r.Surplus != 50_000-debt {
		t.Fatalf("%v %+v (debt %d)", err, r, debt)
	}
	v := b.view(a.id).Account
	if v.Balance != 0 || v.Surplus != 50_000-debt || v.Owed() != 0 {
		t.Fatalf("%+v", v)
	}
	// B never issues a cheque to pay the surplus back.
	clk.Advance(time.Minute)
	if rep, _ := b.l.Tick(); rep.Issued != 0 {
		t.Fatal("surplus paid back")
	}
}

// Tit-for-tat: a newcomer gets a small credit line; past it, it is choked
// (the data plane snapshot says so), disconnected after the grace period if
// it does not pay, resumed when a cheque brings it back, and its credit
// line grows with what it settled.
func TestChokeGraceResumeCredit(t *testing.T) {
	clk := clock.NewFake(t0)
	cfg := testConfig()
	b := newNode(t, "b", clk, cfg)
	ka, a := keyOf("a")
	terms := account.Terms{Prices: cfg.prices(), Payment: 100_000, Disconnect: 125_000}
	ours, err := b.l.Connect(a, "a", terms)
	if err != nil {
		t.Fatal(err)
	}
	if ours.Disconnect != cfg.InitialCredit || ours.Payment != 100_000 {
		t.Fatalf("newcomer terms %+v", ours)
	}
	v0 := b.l.Version()
	b.l.Observe(a, traffic(1, 110_000, 0))
	if st := b.l.PeerStates(nil); len(st) != 1 || st[0].Choked {
		t.Fatalf("under the limit: %+v", st)
	}
	b.l.Observe(a, traffic(1, 130_000, 0))
	st := b.l.PeerStates(nil)
	if len(st) != 1 || !st[0].Choked || b.l.Version() == v0 {
		t.Fatalf("past the limit: %+v", st)
	}
	if ch := b.entries(event.Choke); len(ch) != 1 || ch[0].(*event.DebtLimit).Limit != cfg.InitialCredit {
		t.Fatalf("CHOKE entry %+v", ch)
	}
	clk.Advance(cfg.DisconnectGrace - time.Second)
	if rep, _ := b.l.Tick(); len(rep.Disconnect) != 0 {
		t.Fatal("disconnected before the grace period")
	}
	clk.Advance(time.Second)
	rep, _ := b.l.Tick()
	if len(rep.Disconnect) != 1 || rep.Disconnect[0] != a {
		t.Fatalf("not disconnected after grace: %+v", rep)
	}
	bv0 := b.view(a).Account
	debt := bv0.Debt()
	s, _ := cheque.Sign(cheque.Cheque{Network: 1, Issuer: a, Beneficiary: b.id, Cumulative: debt, Sequence: 1}, ka)
	raw, _ := s.MarshalBinary()
	if _, err := b.l.ReceiveCheque(a, raw); err != nil {
		t.Fatal(err)
	}
	if st := b.l.PeerStates(nil); st[0].Choked {
		t.Fatal("still choked after paying")
	}
	if len(b.entries(event.Resume)) != 1 {
		t.Fatal("no RESUME entry")
	}
	if grown := b.l.Terms(a); grown.Disconnect != cfg.InitialCredit+debt {
		t.Fatalf("credit line after settling %d: %+v", debt, grown)
	}
}

// Reconnecting does not erase a debt, not even across a restart: state is
// keyed by the identity key and persisted.
func TestReconnectKeepsDebt(t *testing.T) {
	clk := clock.NewFake(t0)
	cfg := testConfig()
	b := newNode(t, "b", clk, cfg)
	_, a := keyOf("a")
	terms := account.Terms{Prices: cfg.prices(), Payment: 100_000, Disconnect: 125_000}
	b.l.Connect(a, "a", terms)
	b.l.Observe(a, traffic(1, 200_000, 0))
	bv0 := b.view(a).Account
	debt := bv0.Debt()
	b.l.Disconnect(a, "gone")
	b.close()
	clk.Advance(time.Hour)
	b.open()
	if _, err := b.l.Connect(a, "a-again", terms); err != nil {
		t.Fatal(err)
	}
	v := b.view(a)
	if v.Account.Balance != int64(debt) || !v.Choked {
		t.Fatalf("after reconnect: balance %d (debt was %d), choked %v", v.Account.Balance, debt, v.Choked)
	}
	// The counter source restarted with the relay (new epoch): its first
	// snapshot is all new traffic.
	b.l.Observe(a, traffic(2, 1000, 0))
	if got := b.view(a).Account.Balance; got != int64(debt)+1000+64 {
		t.Fatalf("debt %d", got)
	}
}

func TestTermsRefused(t *testing.T) {
	clk := clock.NewFake(t0)
	cfg := testConfig()
	b := newNode(t, "b", clk, cfg)
	_, a := keyOf("a")
	for _, tc := range []struct {
		t    account.Terms
		want error
	}{
		{account.Terms{Payment: cfg.MinPaymentThreshold - 1, Disconnect: cfg.MinPaymentThreshold * 2}, account.ErrThresholdTooSmall},
		{account.Terms{Payment: 200_000, Disconnect: 200_000}, account.ErrDisconnectNotBeyond},
		{account.Terms{Prices: account.Prices{Byte: 5}, Payment: 200_000, Disconnect: 250_000}, account.ErrPriceTooHigh},
	} {
		if _, err := b.l.Connect(a, "a", tc.t); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v", tc.t, err)
		}
	}
}

// Retries back off exponentially with jitter up to the cap, never at a
// fixed interval.
func TestRetryBackoff(t *testing.T) {
	clk := clock.NewFake(t0)
	cfg := testConfig()
	a, b := newNode(t, "a", clk, cfg), newNode(t, "b", clk, cfg)
	connect(t, a, b)
	a.l.Observe(b.id, traffic(1, 0, 80_000))
	if rep, _ := a.l.Tick(); rep.Issued != 1 {
		t.Fatal("no cheque")
	}
	last := clk.Now()
	var gaps []time.Duration
	for len(gaps) < 12 {
		if out := a.l.Due(nil); len(out) == 1 {
			if out[0].Attempt != len(gaps)+1 {
				t.Fatalf("attempt %d", out[0].Attempt)
			}
			gaps = append(gaps, clk.Now().Sub(last))
			last = clk.Now()
		}
		clk.Advance(10 * time.Millisecond)
	}
	distinct := map[time.Duration]bool{}
	for i, g := range gaps[1:] {
		base := min(cfg.ChequeRetryMin<<i, cfg.ChequeRetryMax)
		if g < base/2 || g > base+10*time.Millisecond {
			t.Errorf("gap %d = %v, want within [%v, %v]", i+1, g, base/2, base)
		}
		distinct[g] = true
	}
	if len(distinct) < 6 {
		t.Errorf("gaps look fixed: %v", gaps)
	}
	t.Logf("gaps: %v", gaps)
}

// A cheque accepted (journalled) but not yet checkpointed survives a crash:
// Open replays it from the journal. The crash is simulated by copying the
// live files, which is what a kill -9 leaves behind.
func TestReplayAfterCrash(t *testing.T) {
	clk := clock.NewFake(t0)
	a, b := newNode(t, "a", clk, testConfig()), newNode(t, "b", clk, testConfig())
	connect(t, a, b)
	b.l.Checkpoint()
	s, _ := cheque.Sign(cheque.Cheque{Network: 1, Issuer: a.id, Beneficiary: b.id, Cumulative: 777, Sequence: 1}, a.key)
	raw, _ := s.MarshalBinary()
	if _, err := b.l.ReceiveCheque(a.id, raw); err != nil {
		t.Fatal(err)
	}
	a.l.Observe(b.id, traffic(1, 0, 90_000))
	if rep, _ := a.l.Tick(); rep.Issued != 1 {
		t.Fatal("no cheque issued")
	}
	for _, n := range []*node{a, b} {
		crashed := &node{t: t, key: n.key, id: n.id, dir: filepath.Join(t.TempDir(), "crashed"), clk: clk, cfg: n.cfg}
		os.MkdirAll(crashed.dir, 0o700)
		for _, f := range []string{"journal.pjr", "ledger.db"} {
			data, err := os.ReadFile(filepath.Join(n.dir, f))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(crashed.dir, f), data, 0o600)
		}
		crashed.open()
		if n == b {
			if crashed.rec.ReplayedReceived != 1 || crashed.view(a.id).Account.ReceivedTotal != 777 {
				t.Fatalf("received cheque lost: %+v", crashed.rec)
			}
			if _, err := crashed.l.ReceiveCheque(a.id, raw); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("replayed cheque accepted twice: %v", err)
			}
		} else {
			v := crashed.view(b.id)
			if crashed.rec.ReplayedIssued != 1 || v.Account.SentTotal == 0 {
				t.Fatalf("issued cheque lost: %+v", crashed.rec)
			}
			// Not acknowledged before the crash: it goes out again on reconnect.
			crashed.l.Connect(b.id, "b", b.l.Terms(a.id))
			if out := crashed.l.Due(nil); len(out) != 1 {
				t.Fatalf("pending cheque not resent: %+v", out)
			}
		}
		crashed.close()
	}
}

func TestClassesAndMismatch(t *testing.T) {
	clk := clock.NewFake(t0)
	cfg := testConfig()
	a, b := newNode(t, "a", clk, cfg), newNode(t, "b", clk, cfg)
	connect(t, a, b)
	if st := b.l.PeerStates(nil); st[0].Class != score.HeavyConsumer {
		t.Fatalf("newcomer class %v", st[0].Class)
	}
	// A relays a lot for B: a major contributor in B's eyes.
	for i := uint64(1); i <= 12; i++ {
		clk.Advance(5 * time.Second)
		b.l.Observe(a.id, traffic(1, i*1<<20, i*5<<20))
		b.l.Tick()
	}
	if st := b.l.PeerStates(nil); st[0].Class != score.MajorContributor {
		t.Fatalf("class %v, score %v", st[0].Class, b.view(a.id).Score)
	}
	if cc := b.entries(event.ClassChange); len(cc) == 0 || cc[len(cc)-1].(*event.Reclass).To != score.MajorContributor {
		t.Fatalf("CLASS_CHANGE entries %+v", cc)
	}
	// A's signed counters mirror B's: no mismatch. Then A claims it relayed
	// 10 MB more than B saw.
	mirror := func(c account.Counters) account.Counters {
		return account.Counters{Epoch: 3, RelayedFor: c.RelayedBy, RelayedBy: c.RelayedFor}
	}
	ours, _ := b.l.Counters(a.id)
	if _, bad, _ := b.l.CheckClaim(a.id, mirror(ours)); bad {
		t.Fatal("first claim reported")
	}
	b.l.Observe(a.id, traffic(1, 13<<20, 65<<20))
	ours, _ = b.l.Counters(a.id)
	if m, bad, _ := b.l.CheckClaim(a.id, mirror(ours)); bad {
		t.Fatalf("honest claim reported: %+v", m)
	}
	liar := mirror(ours)
	liar.RelayedFor.Bytes += 10 << 20
	for range 3 {
		if _, bad, _ := b.l.CheckClaim(a.id, liar); !bad {
			t.Fatal("inflated claim not reported")
		}
	}
	if mm := b.entries(event.Mismatch); len(mm) != 1 || mm[0].(*event.CounterMismatch).What != "relayed_by.bytes" {
		t.Fatalf("MISMATCH entries: %+v", mm)
	}
	// The claim moved nothing: class and balance are ours alone.
	if st := b.l.PeerStates(nil); st[0].Class != score.MajorContributor {
		t.Fatal("class changed by a claim")
	}
	if at := b.l.Attested(); at.Relayed == 0 || at.Score <= 0 || at.Peers != 1 {
		t.Fatalf("attested %+v", at)
	}
}

func TestExportSettlementAndHead(t *testing.T) {
	clk := clock.NewFake(t0)
	a, b := newNode(t, "a", clk, testConfig()), newNode(t, "b", clk, testConfig())
	connect(t, a, b)
	a.l.Observe(b.id, traffic(1, 0, 90_000))
	a.l.Tick()
	out := a.l.Due(nil)
	if _, err := b.l.ReceiveCheque(a.id, out[0].Cheque[:]); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := b.l.ExportSettlement(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := cheque.ReadJSONL(&buf)
	if err != nil || len(got) != 1 || got[0].Direction != cheque.Received || got[0].Peer != a.id {
		t.Fatalf("%v %+v", err, got)
	}
	buf.Reset()
	a.l.ExportSettlement(&buf)
	if !strings.Contains(buf.String(), `"direction":"issued"`) {
		t.Fatal(buf.String())
	}
	sh, err := b.l.SignedHead()
	if err != nil || sh.Verify(b.id) != nil || sh.Index == 0 || sh.Hash != b.l.j.Head().Hash {
		t.Fatalf("%v %+v", err, sh)
	}
}

func TestOpenRefusesOtherIdentity(t *testing.T) {
	clk := clock.NewFake(t0)
	a := newNode(t, "a", clk, testConfig())
	a.close()
	a.key, a.id = keyOf("impostor")
	_, _, err := Open(Options{Config: a.cfg, DataDir: a.dir, Network: 1, Signer: a.key, Clock: clk, Log: a.l.log})
	if err == nil {
		t.Fatal("opened another identity's ledger")
	}
}

func TestObserveNoAllocs(t *testing.T) {
	clk := clock.NewFake(t0)
	a, b := newNode(t, "a", clk, testConfig()), newNode(t, "b", clk, testConfig())
	connect(t, a, b)
	var i uint64
	n := testing.AllocsPerRun(1000, func() {
		i++
		if err := a.l.Observe(b.id, traffic(1, i*10, i*10)); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("Observe allocates %v times", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	clk := clock.NewFake(t0)
	cfg := testConfig()
	cfg.InitialCredit = cfg.DisconnectThreshold
	x := newNode(b, "x", clk, cfg)
	peers := make([]peer.ID, 64)
	for i := range peers {
		_, peers[i] = keyOf(string(rune('A' + i)))
		if _, err := x.l.Connect(peers[i], "p", account.Terms{Prices: cfg.prices(), Payment: 1e9, Disconnect: 2e9}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		i++
		x.l.Observe(peers[i%64], traffic(1, i*1500, i*1500))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
}

// BenchmarkReceiveCheque measures accepted cheques per second end to end:
// parse, signature check, journal entry made durable (group commit across
// the concurrent peers), account credited.
func BenchmarkReceiveCheque(b *testing.B) {
	for _, g := range []int{1, 16} {
		b.Run(fmt.Sprintf("peers=%d", g), func(b *testing.B) {
			clk := clock.NewFake(t0)
			cfg := testConfig()
			x := newNode(b, "x", clk, cfg)
			per := b.N/g + 1
			raws := make([][][]byte, g)
			ids := make([]peer.ID, g)
			for i := range g {
				k, id := keyOf(fmt.Sprint("payer", i))
				ids[i] = id
				if _, err := x.l.Connect(id, "p", account.Terms{Prices: cfg.prices(), Payment: 1e6, Disconnect: 2e6}); err != nil {
					b.Fatal(err)
				}
				for n := 1; n <= per; n++ {
					s, _ := cheque.Sign(cheque.Cheque{Network: 1, Issuer: id, Beneficiary: x.id, Cumulative: uint64(n) * 100, Sequence: uint64(n)}, k)
					raw, _ := s.MarshalBinary()
					raws[i] = append(raws[i], raw)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for i := range g {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, raw := range raws[i] {
						if _, err := x.l.ReceiveCheque(ids[i], raw); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(per*g)/b.Elapsed().Seconds(), "cheques/s")
			x.close()
		})
	}
}

// Forgiveness runs on Tick, from the moment of connection, at the rate we
// announced; an hour spent disconnected forgives nothing.
func TestForgivenessOnTick(t *testing.T) {
	clk := clock.NewFake(t0)
	cfg := testConfig()
	cfg.ForgivePerSecond = 1000
	b := newNode(t, "b", clk, cfg)
	_, a := keyOf("a")
	terms := account.Terms{Prices: cfg.prices(), Payment: 100_000, Disconnect: 125_000}
	ours, _ := b.l.Connect(a, "a", terms)
	if ours.ForgivePerSecond != 1000 {
		t.Fatalf("announced %+v", ours)
	}
	b.l.Observe(a, traffic(1, 50_000, 0))
	debt := b.view(a).Account.Balance
	clk.Advance(10 * time.Second)
	b.l.Tick()
	if got := b.view(a).Account.Balance; got != debt-10_000 {
		t.Fatalf("after 10 s: %d, want %d", got, debt-10_000)
	}
	b.l.Disconnect(a, "bye")
	clk.Advance(time.Hour)
	b.l.Tick()
	b.l.Connect(a, "a", terms)
	b.l.Tick()
	if got := b.view(a).Account.Balance; got != debt-10_000 {
		t.Fatalf("after an hour offline: %d, want %d", got, debt-10_000)
	}
}

// The relay's totals are its own measurements, the sums of the per-peer
// counters, and they survive a restart; what peers attest is kept apart.
func TestTotalsAreSumsOverPeersAndSurviveRestart(t *testing.T) {
	clk := clock.NewFake(t0)
	cfg := testConfig()
	b := newNode(t, "b", clk, cfg)
	_, a := keyOf("a")
	_, c := keyOf("c")
	terms := account.Terms{Prices: cfg.prices(), Payment: 100_000_000, Disconnect: 125_000_000}
	for _, p := range []peer.ID{a, c} {
		if _, err := b.l.Connect(p, "x", terms); err != nil {
			t.Fatal(err)
		}
	}
	b.l.Observe(a, traffic(1, 3000, 500))
	b.l.Observe(c, traffic(1, 7000, 1500))
	b.l.Disconnect(c, "gone") // a peer that left still counts
	want := func(n *node) {
		t.Helper()
		var sumFor, sumBy uint64
		for _, v := range n.l.Peers() {
			sumFor += v.Account.Usage.RelayedFor.Bytes
			sumBy += v.Account.Usage.RelayedBy.Bytes
		}
		got := n.l.Totals()
		if got.Relayed != 10_000 || got.Consumed != 2000 || got.Relayed != sumFor || got.Consumed != sumBy {
			t.Fatalf("totals %+v, peer sums %d/%d", got, sumFor, sumBy)
		}
		prior := float64(cfg.ScorePriorBytes)
		if ws := (10_000 + prior) / (2000 + prior); got.Score != ws {
			t.Fatalf("score %v, want %v", got.Score, ws)
		}
	}
	want(b)
	if at := b.l.Attested(); at.Peers != 0 || at.Relayed != 0 {
		t.Fatalf("attested before any claim: %+v", at)
	}
	if _, _, err := b.l.CheckClaim(a, account.Counters{Epoch: 1, RelayedBy: account.Traffic{Packets: 3, Bytes: 3000}}); err != nil {
		t.Fatal(err)
	}
	if at := b.l.Attested(); at.Peers != 1 || at.Relayed != 3000 {
		t.Fatalf("attested: %+v", at)
	}
	b.close()
	b.open()
	want(b)
}

// crashCopy is n as kill -9 would leave it: its journal and store files
// copied while n runs, opened by a new ledger.
func crashCopy(t *testing.T, n *node, name string) *node {
	t.Helper()
	c := &node{t: t, key: n.key, id: n.id, dir: filepath.Join(t.TempDir(), name), clk: n.clk, cfg: n.cfg}
	os.MkdirAll(c.dir, 0o700)
	for _, f := range []string{"journal.pjr", "ledger.db"} {
		data, err := os.ReadFile(filepath.Join(n.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(c.dir, f), data, 0o600)
	}
	c.open()
	t.Cleanup(c.close)
	return c
}

// A relay killed between checkpoints loses the charges since the last one;
// the peer's first signed claim after the restart restores them within
// reconcile_max_charge, journalled, once; beyond the bound nothing of that
// direction is adopted and a MISMATCH is journalled; nothing is lowered.
func TestRestartReconciles(t *testing.T) {
	clk := clock.NewFake(t0)
	a, b := newNode(t, "a", clk, testConfig()), newNode(t, "b", clk, testConfig())
	connect(t, a, b)
	ctl := func(c account.Counters, in, out uint64) account.Counters {
		c.ControlIn = account.Traffic{Packets: in, Bytes: in * 100}
		c.ControlOut = account.Traffic{Packets: out, Bytes: out * 100}
		return c
	}
	// b relays 15 kB for a and a 26 kB for b, with control frames both
	// ways; a sees the mirror. b checkpoints two thirds of the way.
	b.l.Observe(a.id, ctl(traffic(1, 10_000, 20_000), 3, 4))
	if err := b.l.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	b.l.Observe(a.id, ctl(traffic(1, 15_000, 26_000), 5, 7))
	a.l.Observe(b.id, ctl(traffic(1, 26_000, 15_000), 7, 5))
	if got, want := b.view(a.id).Account.Balance, -a.view(b.id).Account.Balance; got != want {
		t.Fatalf("before the crash: b has %d, a mirrors %d", got, want)
	}

	// Honest: everything lost is adopted, and the balances mirror again.
	c := crashCopy(t, b, "honest")
	if v := c.view(a.id); v.Account.Usage.RelayedFor.Bytes != 10_000 {
		t.Fatalf("the crash copy has %+v: not the checkpoint", v.Account.Usage)
	}
	if _, err := c.l.Connect(a.id, "a", a.l.Terms(b.id)); err != nil {
		t.Fatal(err)
	}
	claim, _ := a.l.Counters(b.id)
	claim.Epoch = 1
	if m, bad, err := c.l.CheckClaim(a.id, claim); err != nil || bad {
		t.Fatalf("honest claim: %+v %v %v", m, bad, err)
	}
	v := c.view(a.id)
	if v.Account.Usage != b.view(a.id).Account.Usage || v.Account.Balance != -a.view(b.id).Account.Balance {
		t.Fatalf("after reconciling: usage %+v balance %d; want %+v and %d", v.Account.Usage, v.Account.Balance,
			b.view(a.id).Account.Usage, -a.view(b.id).Account.Balance)
	}
	if r := c.l.Reconciled(); r.Adopted != 1 || r.Refused != 0 || r.ToPeer == 0 || r.ToUs == 0 {
		t.Fatalf("reconciled %+v", r)
	}
	if rs := c.entries(event.Reconcile); len(rs) != 1 || rs[0].(*event.CounterMismatch).What != "peer,us" {
		t.Fatalf("RECONCILE entries %+v", rs)
	}
	// The next two claims take up what the first left (traffic that flowed
	// while it travelled), within the same bound; the fourth is only
	// cross-checked.
	more := claim
	more.RelayedFor.Bytes += 5000
	c.l.CheckClaim(a.id, more)
	if got := c.view(a.id).Account.Balance; got != v.Account.Balance-5000 || c.l.Reconciled().Adopted != 2 {
		t.Fatalf("second claim: balance %d, want %d; %+v", got, v.Account.Balance-5000, c.l.Reconciled())
	}
	c.l.CheckClaim(a.id, more)
	more.RelayedFor.Bytes += 5000
	c.l.CheckClaim(a.id, more)
	if got := c.view(a.id).Account.Balance; got != v.Account.Balance-5000 || c.l.Reconciled().Adopted != 2 {
		t.Fatalf("a claim after the third moved the balance: %d; %+v", got, c.l.Reconciled())
	}
	v = c.view(a.id)
	// Survives the next restart.
	c.close()
	c.open()
	if c.view(a.id).Account.Usage != v.Account.Usage {
		t.Fatal("adopted traffic not checkpointed")
	}

	// A lying peer: it claims to have relayed 20 MB more for us than we
	// lost. That direction is refused whole (a MISMATCH), the other adopted.
	c = crashCopy(t, b, "liar")
	c.l.Connect(a.id, "a", a.l.Terms(b.id))
	before := c.view(a.id).Account
	lie := claim
	lie.RelayedFor.Bytes += 20_000_000
	m, bad, err := c.l.CheckClaim(a.id, lie)
	if err != nil || !bad || m.What != "restart_reconcile.us" || m.Allowed != testConfig().ReconcileMaxCharge {
		t.Fatalf("lie: %+v %v %v", m, bad, err)
	}
	after := c.view(a.id).Account
	if after.Usage.RelayedBy != before.Usage.RelayedBy || after.Usage.ControlOut != before.Usage.ControlOut {
		t.Fatalf("refused direction adopted: %+v", after.Usage)
	}
	if after.Usage.RelayedFor != b.view(a.id).Account.Usage.RelayedFor || after.Balance <= before.Balance {
		t.Fatalf("the peer's own debt not adopted: %+v balance %d -> %d", after.Usage, before.Balance, after.Balance)
	}
	if mm := c.entries(event.Mismatch); len(mm) != 1 || mm[0].(*event.CounterMismatch).What != "restart_reconcile.us" {
		t.Fatalf("MISMATCH entries %+v", mm)
	}
	if r := c.l.Reconciled(); r.Adopted != 1 || r.Refused != 1 {
		t.Fatalf("reconciled %+v", r)
	}

	// A claim below our counters lowers nothing: no debt is forgotten.
	c = crashCopy(t, b, "low")
	c.l.Connect(a.id, "a", a.l.Terms(b.id))
	before = c.view(a.id).Account
	if _, bad, _ := c.l.CheckClaim(a.id, account.Counters{Epoch: 1}); bad {
		t.Fatal("an empty claim is a mismatch")
	}
	if after := c.view(a.id).Account; after.Usage != before.Usage || after.Balance != before.Balance {
		t.Fatalf("a low claim changed the account: %+v -> %+v", before, after)
	}
}

// A cheque issued after the last checkpoint paid charges the checkpoint
// lacks: replayed at Open it makes the payee look indebted to us until
// reconciliation restores them. Forgiveness must wait for that, or it
// forgives a debt that does not exist and the balances never mirror again.
func TestRestartDefersForgivenessOfPhantomDebt(t *testing.T) {
	clk := clock.NewFake(t0)
	cfg := testConfig()
	cfg.ForgivePerSecond = 4_000_000
	a, b := newNode(t, "a", clk, cfg), newNode(t, "b", clk, testConfig())
	connect(t, a, b)
	a.l.Observe(b.id, traffic(1, 0, 100_000))
	if err := a.l.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	a.l.Observe(b.id, traffic(1, 0, 500_000))
	b.l.Observe(a.id, traffic(1, 500_000, 0))
	if rep, _ := a.l.Tick(); rep.Issued != 1 {
		t.Fatal("no cheque issued")
	}
	out := a.l.Due(nil)
	if _, err := b.l.ReceiveCheque(a.id, out[0].Cheque[:]); err != nil {
		t.Fatal(err)
	}
	c := crashCopy(t, a, "crashed")
	if v := c.view(b.id); v.Account.Balance <= 0 {
		t.Fatalf("no phantom debt after the replay: balance %d", v.Account.Balance)
	}
	c.l.Connect(b.id, "b", b.l.Terms(a.id))
	clk.Advance(time.Second)
	c.l.Tick()
	claim, _ := b.l.Counters(a.id)
	claim.Epoch = 1
	c.l.CheckClaim(b.id, claim)
	if got, want := c.view(b.id).Account.Balance, -b.view(a.id).Account.Balance; got != want {
		t.Fatalf("after reconciling: a has %d, b mirrors %d (forgiven %d)", got, want, c.view(b.id).Account.Forgiven)
	}
	// Nothing is owed, so nothing is paid twice.
	sent := c.view(b.id).Account.SentTotal
	clk.Advance(time.Second)
	if rep, _ := c.l.Tick(); rep.Issued != 0 || c.view(b.id).Account.SentTotal != sent {
		t.Fatalf("the traffic is paid again: %+v", rep)
	}
}

// Bytes handed to a peer on behalf of peers that give no credit are
// charged but earn the peer no standing: a partner's pumped frames buy a
// colluder nothing. Credits turns on once a peer has relayed PriorBytes
// for us, and the version moves with it (the data plane learns it).
func TestUncreditedNoStanding(t *testing.T) {
	clk := clock.NewFake(t0)
	cfg := testConfig()
	a, b := newNode(t, "a", clk, cfg), newNode(t, "b", clk, cfg)
	connect(t, a, b)
	if st := b.l.PeerStates(nil); st[0].Credits {
		t.Fatal("a newcomer gives credit")
	}
	// B hands A 60 MB to relay, all on behalf of peers without credit,
	// and relays 10 MB for A.
	for i := uint64(1); i <= 12; i++ {
		clk.Advance(5 * time.Second)
		c := traffic(1, i*10<<20/12, i*60<<20/12)
		c.RelayedByUncredited = c.RelayedBy
		b.l.Observe(a.id, c)
		b.l.Tick()
	}
	v := b.view(a.id)
	// Charged (usage is what the account prices) but no standing.
	if u := v.Account.Usage; v.Class != score.HeavyConsumer || v.Credits || u.RelayedBy.Bytes != 60<<20 || u.RelayedByUncredited.Bytes != 60<<20 {
		t.Fatalf("after uncredited relaying: class %v credits %v score %v usage %+v", v.Class, v.Credits, v.Score, u)
	}
	// The same traffic, credited this time: A's standing rises.
	ver := b.l.Version()
	clk.Advance(time.Minute) // past a class tick
	c := traffic(1, 10<<20, 120<<20)
	c.RelayedByUncredited = account.Traffic{Packets: 60 << 20 / 1000, Bytes: 60 << 20}
	b.l.Observe(a.id, c)
	b.l.Tick()
	if v := b.view(a.id); v.Class != score.MajorContributor || !v.Credits || b.l.Version() == ver {
		t.Fatalf("after credited relaying: class %v credits %v score %v, version moved %v", v.Class, v.Credits, v.Score, b.l.Version() != ver)
	}
}
