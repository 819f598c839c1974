package proto

import (
	"testing"

	"github.com/poolrelay/poolrelay/ledger/account"
)

// BenchmarkHeartbeatSign and BenchmarkHeartbeatVerify are the per-peer cost
// of a heartbeat at each end: one Ed25519 signature, one verification.
func BenchmarkHeartbeatSign(b *testing.B) {
	_, _, cid, sid := sessionPair(b)
	hb := Heartbeat{Time: epoch, Subject: sid.PublicKey(), Counters: account.Counters{Epoch: 1}}
	buf := make([]byte, 0, HeartbeatSize)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		hb.Seq = uint64(i)
		buf = hb.AppendSigned(buf[:0], [16]byte{1}, cid)
	}
}

func BenchmarkHeartbeatVerify(b *testing.B) {
	_, _, cid, sid := sessionPair(b)
	hb := Heartbeat{Time: epoch, Seq: 1, Subject: sid.PublicKey()}
	body := hb.AppendSigned(nil, [16]byte{1}, cid)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHeartbeat(body, [16]byte{1}, cid.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealOpen is one sealed control message, both ends.
func BenchmarkSealOpen(b *testing.B) {
	cs, ss, _, _ := sessionPair(b)
	a, r := NewChannel(cs, 0), NewChannel(ss, 0)
	body := make([]byte, HeartbeatSize)
	buf := make([]byte, 0, MaxFrame)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		buf = a.Seal(buf[:0], KindHeartbeat, body, epoch)
		if _, err := r.Open(buf, epoch); err != nil {
			b.Fatal(err)
		}
	}
}
