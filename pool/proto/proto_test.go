package proto

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/journal"
)

func TestSealOpen(t *testing.T) {
	cs, ss, _, _ := sessionPair(t)
	a, b := NewChannel(cs, 0), NewChannel(ss, 0)
	body := []byte("route please")
	f := a.Seal(nil, KindRouteOpen, body, epoch)
	if wire.Header(f).Type() != wire.TypeData || wire.Header(f).Channel() != ChannelControl {
		t.Fatalf("frame type %v channel %d", wire.Header(f).Type(), wire.Header(f).Channel())
	}
	if bytes.Contains(f, body) {
		t.Fatal("body travels in the clear")
	}
	m, err := b.Open(f, epoch.Add(time.Second))
	k, got := m.Kind, m.Body
	if err != nil || k != KindRouteOpen || !bytes.Equal(got, body) {
		t.Fatalf("Open = %v %q %v", k, got, err)
	}
	// And the other direction, as a heartbeat frame.
	f2 := b.Seal(nil, KindHeartbeat, []byte{1, 2, 3}, epoch)
	if wire.Header(f2).Type() != wire.TypeHeartbeat {
		t.Fatal("heartbeat not in a HEARTBEAT frame")
	}
	if m, err := a.Open(f2, epoch); err != nil || m.Kind != KindHeartbeat {
		t.Fatalf("Open heartbeat = %v %v", m.Kind, err)
	}
}

func TestOpenRejects(t *testing.T) {
	cs, ss, _, _ := sessionPair(t)
	a, b := NewChannel(cs, 10*time.Second), NewChannel(ss, 10*time.Second)
	good := a.Seal(nil, KindChequeAck, AppendChequeAck(nil, 42), epoch)
	cases := []struct {
		name   string
		mutate func(f []byte) []byte
		now    time.Time
		want   error
	}{
		{"payload bit", func(f []byte) []byte { f[len(f)-1] ^= 1; return f }, epoch, ErrAuth},
		{"header seq", func(f []byte) []byte { wire.Header(f).SetSeq(99); return f }, epoch, ErrAuth},
		{"tag", func(f []byte) []byte { wire.Header(f).MACBytes()[0] ^= 1; return f }, epoch, ErrAuth},
		{"timestamp", func(f []byte) []byte { wire.Header(f).SetTimestamp(uint64(epoch.UnixNano() + 1)); return f }, epoch, ErrAuth},
		{"truncated", func(f []byte) []byte { return f[:len(f)-1] }, epoch, ErrTruncated},
		{"short", func(f []byte) []byte { return f[:40] }, epoch, ErrTruncated},
		{"stale", func(f []byte) []byte { return f }, epoch.Add(11 * time.Second), ErrStale},
		{"future", func(f []byte) []byte { return f }, epoch.Add(-11 * time.Second), ErrStale},
		{"version", func(f []byte) []byte { f[wire.HeaderLen] = 2; return f }, epoch, ErrVersion},
		{"generation", func(f []byte) []byte { f[wire.HeaderLen+7] = 5; return f }, epoch, ErrGeneration},
		{"kind", func(f []byte) []byte { f[wire.HeaderLen+1] = 77; return f }, epoch, ErrMalformed},
		{"session", func(f []byte) []byte { f[20] ^= 1; return f }, epoch, ErrSession},
	}
	for _, c := range cases {
		f := c.mutate(bytes.Clone(good))
		if _, err := b.Open(f, c.now); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := b.Open(good, epoch); err != nil {
		t.Fatalf("good frame refused after forgeries: %v", err)
	}
	if _, err := b.Open(good, epoch); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// A frame sealed by the receiver itself (reflection) does not open.
	if _, err := NewChannel(ss, 0).Open(NewChannel(ss, 0).Seal(nil, KindChequeAck, AppendChequeAck(nil, 1), epoch), epoch); !errors.Is(err, ErrAuth) {
		t.Fatalf("reflected frame: %v", err)
	}
}

func TestRekeyedChannel(t *testing.T) {
	cs, ss, _, _ := sessionPair(t)
	a, b := NewChannel(cs, 0), NewChannel(ss, 0)
	req, err := cs.Rekey(nil)
	if err != nil {
		t.Fatal(err)
	}
	reply, ev, err := ss.Handle(nil, req)
	if err != nil || !ev.Has(handshake.EventRekeyAnswered) {
		t.Fatal(ev, err)
	}
	if _, ev, err = cs.Handle(nil, reply); err != nil || !ev.Has(handshake.EventRekeyed) {
		t.Fatal(ev, err)
	}
	// The client sends under generation 1; the server accepts it (Next).
	f := a.Seal(nil, KindRouteClose, make([]byte, RouteErrorSize), epoch)
	if g := f[wire.HeaderLen+7]; g != 1 {
		t.Fatalf("sealed under generation %d", g)
	}
	if _, err := b.Open(f, epoch); err != nil {
		t.Fatal(err)
	}
}

func TestBodiesRoundTrip(t *testing.T) {
	next := address.New(address.TypeNode, 1, 2, [32]byte{9})
	ro := RouteOpen{Request: 7, Lifetime: 60, Session: [16]byte{1}, Next: next,
		Endpoint: netip.MustParseAddrPort("198.51.100.7:9253"), Onward: []address.Address{next}}
	b, _ := ro.AppendBinary(nil)
	var ro2 RouteOpen
	if err := ro2.UnmarshalBinary(b); err != nil || ro2.Endpoint != ro.Endpoint || ro2.Next != next || len(ro2.Onward) != 1 {
		t.Fatalf("RouteOpen: %+v %v", ro2, err)
	}
	ok := RouteOK{Request: 7, Session: [16]byte{1}, Expires: 123}
	b, _ = ok.AppendBinary(nil)
	var ok2 RouteOK
	if err := ok2.UnmarshalBinary(b); err != nil || ok2 != ok {
		t.Fatal(ok2, err)
	}
	re := RouteError{Request: 3, Code: CodeInUse, Session: [16]byte{4}}
	b, _ = re.AppendBinary(nil)
	var re2 RouteError
	if err := re2.UnmarshalBinary(b); err != nil || re2 != re {
		t.Fatal(re2, err)
	}
	en := Enrollment{Role: RoleRelay, Capabilities: CapRelay, Terms: account.Terms{Payment: 10, Disconnect: 13}}
	b, _ = en.AppendBinary(nil)
	var en2 Enrollment
	if err := en2.UnmarshalBinary(b); err != nil || en2 != en {
		t.Fatal(en2, err)
	}
	if ReverseSession(ReverseSession([16]byte{5})) != ([16]byte{5}) || ReverseSession([16]byte{5}) == ([16]byte{5}) {
		t.Fatal("ReverseSession is not a non-trivial involution")
	}
}

func TestHeartbeat(t *testing.T) {
	_, _, cid, sid := sessionPair(t)
	sess := [16]byte{3}
	head, err := journal.SignHead(journal.Head{Index: 4}, cid)
	if err != nil {
		t.Fatal(err)
	}
	hb := Heartbeat{Time: epoch, Seq: 9, Subject: sid.PublicKey(), Tel: Telemetry{RTT: time.Millisecond, MTU: 1500, LossPPM: 10},
		Counters: account.Counters{Epoch: 1, RelayedFor: account.Traffic{Packets: 2, Bytes: 300}}, HasHead: true, Head: head,
		EchoSeq: 7, EchoDelay: time.Millisecond}
	b := hb.AppendSigned(nil, sess, cid)
	if len(b) != HeartbeatSize {
		t.Fatalf("size %d", len(b))
	}
	got, err := ParseHeartbeat(b, sess, cid.PublicKey())
	if err != nil || got.Seq != 9 || got.EchoSeq != 7 || got.EchoDelay != time.Millisecond || got.Counters != hb.Counters || !got.Time.Equal(epoch) || got.Head != head || got.Tel != hb.Tel {
		t.Fatalf("%+v %v", got, err)
	}
	if err := got.Head.Verify([32]byte(cid.PublicKey())); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseHeartbeat(b, [16]byte{4}, cid.PublicKey()); !errors.Is(err, ErrSignature) {
		t.Fatal("heartbeat verified for another session:", err)
	}
	if _, err := ParseHeartbeat(b, sess, sid.PublicKey()); !errors.Is(err, ErrSignature) {
		t.Fatal("heartbeat verified under the wrong key:", err)
	}
	b[120] ^= 1
	if _, err := ParseHeartbeat(b, sess, cid.PublicKey()); !errors.Is(err, ErrSignature) {
		t.Fatal("forged counters verified:", err)
	}
}

func TestHandshakeCarriage(t *testing.T) {
	f := AppendHandshake(nil, handshake.KindInit, [16]byte{}, 5, make([]byte, handshake.InitSize))
	fr, err := ParseFrame(f)
	if err != nil || fr.Type() != wire.TypeInit || len(fr.Payload) != handshake.InitSize || !IsHandshake(fr.Type()) {
		t.Fatal(fr, err)
	}
	f[46] = 0
	if _, err := ParseFrame(f); !errors.Is(err, ErrMalformed) {
		t.Fatal("channel 0 accepted:", err)
	}
}

func TestOpenAllocs(t *testing.T) {
	cs, ss, _, _ := sessionPair(t)
	a, b := NewChannel(cs, 0), NewChannel(ss, 0)
	frames := make([][]byte, 200)
	for i := range frames {
		frames[i] = a.Seal(nil, KindChequeAck, AppendChequeAck(nil, 1), epoch)
	}
	i := 0
	if n := testing.AllocsPerRun(100, func() {
		if _, err := b.Open(frames[i], epoch); err != nil {
			t.Fatal(err)
		}
		i++
	}); n != 0 {
		t.Fatalf("Open allocates %v per message", n)
	}
}

func TestLink(t *testing.T) {
	var a, b Link
	now := epoch
	// a sends 1; b receives it 10 ms later, answers 5 ms after that.
	a.Sent(1, now)
	b.Received(&Heartbeat{Seq: 1}, now.Add(10*time.Millisecond))
	seq, delay := b.Echo(now.Add(15 * time.Millisecond))
	a.Received(&Heartbeat{Seq: 1, EchoSeq: seq, EchoDelay: delay}, now.Add(25*time.Millisecond))
	var tel Telemetry
	a.Telemetry(&tel)
	if tel.RTT != 20*time.Millisecond || tel.Jitter != 0 || tel.LossPPM != 0 {
		t.Fatalf("%+v", tel)
	}
	// b's heartbeats 2 and 3 are lost; 4 arrives: 2 of 4 lost.
	a.Received(&Heartbeat{Seq: 4}, now.Add(time.Second))
	a.Telemetry(&tel)
	if tel.LossPPM != 500_000 {
		t.Fatalf("loss %d ppm", tel.LossPPM)
	}
}
