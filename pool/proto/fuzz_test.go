package proto

import (
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/ledger/account"
)

// FuzzOpen feeds arbitrary frames to a channel: errors, never panics, and
// nothing opens that the peer did not seal.
func FuzzOpen(f *testing.F) {
	cs, ss, _, _ := sessionPair(f)
	a := NewChannel(cs, 0)
	f.Add(a.Seal(nil, KindChequeAck, AppendChequeAck(nil, 5), epoch))
	f.Add(a.Seal(nil, KindHeartbeat, make([]byte, 10), epoch))
	f.Add(AppendHandshake(nil, handshake.KindInit, [16]byte{}, 1, make([]byte, 8)))
	b := NewChannel(ss, time.Hour)
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := b.Open(frame, epoch)
		if err == nil && (!m.Kind.sealed() || len(m.Body) > maxBody) {
			t.Fatalf("opened kind %v len %d", m.Kind, len(m.Body))
		}
	})
}

// FuzzBodies decodes arbitrary bytes as every body type; whatever decodes
// must re-encode to the same bytes (one encoding per value).
func FuzzBodies(f *testing.F) {
	ro := RouteOpen{Request: 1, Session: [16]byte{1}, Next: address.New(address.TypeNode, 1, 2, [32]byte{9})}
	b, _ := ro.AppendBinary(nil)
	f.Add(b)
	en := Enrollment{Role: RoleNode, Terms: account.Terms{Payment: 1, Disconnect: 2}}
	b, _ = en.AppendBinary(nil)
	f.Add(b)
	f.Add(make([]byte, RouteOKSize))
	f.Add(make([]byte, RouteErrorSize))
	_, _, cid, _ := sessionPair(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var ro RouteOpen
		if ro.UnmarshalBinary(b) == nil {
			if out, _ := ro.AppendBinary(nil); string(out) != string(b) {
				t.Fatalf("RouteOpen re-encodes differently")
			}
		}
		var en Enrollment
		if en.UnmarshalBinary(b) == nil {
			if out, _ := en.AppendBinary(nil); string(out) != string(b) {
				t.Fatalf("Enrollment re-encodes differently")
			}
		}
		var ok RouteOK
		if ok.UnmarshalBinary(b) == nil {
			if out, _ := ok.AppendBinary(nil); string(out) != string(b) {
				t.Fatalf("RouteOK re-encodes differently")
			}
		}
		var re RouteError
		if re.UnmarshalBinary(b) == nil {
			if out, _ := re.AppendBinary(nil); string(out) != string(b) {
				t.Fatalf("RouteError re-encodes differently")
			}
		}
		_, _ = ParseChequeAck(b)
		var cr ChequeRefusal
		if cr.UnmarshalBinary(b) == nil {
			if again, _ := cr.AppendBinary(nil); string(again) != string(b) {
				t.Fatalf("CHEQUE_REFUSED %x re-encodes as %x", b, again)
			}
		}
		_, _ = ParseFrame(b)
		if len(b) >= 16 {
			_, _ = ParseHeartbeat(b, [16]byte(b[:16]), cid.PublicKey())
		}
	})
}
