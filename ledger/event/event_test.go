package event

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/cheque"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/ledger/score"
)

func samples(t testing.TB) map[Type]Body {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	a, _ := peer.FromPublicKey(k.Public().(ed25519.PublicKey))
	b := peer.ID{2, 3}
	s, err := cheque.Sign(cheque.Cheque{Network: 1, Issuer: a, Beneficiary: b, Cumulative: 9, Sequence: 1}, k)
	if err != nil {
		t.Fatal(err)
	}
	c := account.Counters{Epoch: 1, RelayedFor: account.Traffic{Packets: 2, Bytes: 3}, ControlOut: account.Traffic{Packets: 4, Bytes: 5}}
	return map[Type]Body{
		Connect:        &PeerNote{Peer: a, Note: "192.0.2.7:9254"},
		Disconnect:     &PeerNote{Peer: a, Note: "debt"},
		Enroll:         &Enrollment{Peer: a, Terms: account.Terms{Prices: account.Prices{Byte: 1}, Payment: 10, Disconnect: 12}},
		RouteOpen:      &Route{Session: SessionID{1, 2}, From: a, To: b, Note: "n"},
		RouteClose:     &Route{Session: SessionID{1, 2}, From: a, To: b},
		Config:         &Text{Note: "loaded /etc/pool_relay.toml"},
		Rekey:          &PeerNote{Peer: b},
		Error:          &Text{Note: "journal: torn tail"},
		ChequeIssued:   &ChequeEntry{Signed: s, Increase: 9},
		ChequeReceived: &ChequeEntry{Signed: s, Increase: 9, Surplus: 2},
		ChequeRejected: &Rejected{Peer: a, Reason: "replay", Raw: []byte{1, 2, 3}},
		ClassChange:    &Reclass{Peer: a, From: score.HeavyConsumer, To: score.Balanced, ScoreMilli: 1234},
		Mismatch:       &CounterMismatch{Peer: a, What: "relayed_for.bytes", Allowed: 7, Ours: c, Theirs: c},
		Reconcile:      &CounterMismatch{Peer: a, What: "peer,us", Allowed: 10_000_000, Ours: c, Theirs: c},
		Choke:          &DebtLimit{Peer: a, Debt: 100, Limit: 90},
		Resume:         &DebtLimit{Peer: a, Debt: 1, Limit: 90},
		Rollback:       &Text{Note: "expired: not confirmed within 1m0s"},
	}
}

func TestRoundTripEveryType(t *testing.T) {
	s := samples(t)
	if len(s) != int(MaxType) {
		t.Fatalf("samples cover %d of %d types", len(s), MaxType)
	}
	for typ, body := range s {
		b, err := Marshal(typ, body)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		got, err := Unmarshal(typ, b)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !reflect.DeepEqual(got, body) {
			t.Fatalf("%s: %+v != %+v", typ, got, body)
		}
		if _, err := Unmarshal(typ, append(b, 0)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: trailing byte accepted", typ)
		}
		if _, err := Unmarshal(typ, b[:len(b)-1]); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: truncated body accepted", typ)
		}
		if _, err := json.Marshal(got); err != nil {
			t.Errorf("%s: json: %v", typ, err)
		}
		if p, ok := ParseType(typ.String()); !ok || p != typ {
			t.Errorf("ParseType(%s)", typ)
		}
	}
}

func TestMarshalChecks(t *testing.T) {
	if _, err := Marshal(Choke, &Text{}); err == nil {
		t.Fatal("wrong body shape accepted")
	}
	if _, err := Marshal(0, &Text{}); err == nil {
		t.Fatal("type 0 accepted")
	}
	if _, err := Marshal(Error, &Text{Note: strings.Repeat("x", MaxText+1)}); err == nil {
		t.Fatal("over-long note accepted")
	}
	if _, err := Marshal(Error, &Text{Note: "\xff"}); err == nil {
		t.Fatal("invalid UTF-8 accepted")
	}
	if _, err := Unmarshal(99, nil); !errors.Is(err, ErrMalformed) {
		t.Fatal("undefined type decoded")
	}
	if Type(99).String() != "TYPE_99" {
		t.Fatal(Type(99).String())
	}
}

func TestChequeJSON(t *testing.T) {
	b, err := json.Marshal(samples(t)[ChequeReceived])
	if err != nil || !strings.Contains(string(b), `"cumulative":9`) || !strings.Contains(string(b), `"signed":"`) {
		t.Fatalf("%v %s", err, b)
	}
}

func FuzzUnmarshal(f *testing.F) {
	for typ, body := range samples(f) {
		b, _ := Marshal(typ, body)
		f.Add(uint8(typ), b)
	}
	f.Fuzz(func(t *testing.T, typ uint8, data []byte) {
		b, err := Unmarshal(Type(typ), data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		out, err := Marshal(Type(typ), b)
		if err != nil {
			t.Fatalf("decoded body does not re-encode: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("not canonical: %x -> %x", data, out)
		}
	})
}
