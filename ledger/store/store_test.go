package store

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/cheque"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/ledger/policy"
	"github.com/poolrelay/poolrelay/ledger/score"
)

func sample(t *testing.T) Peer {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32))
	p, _ := peer.FromPublicKey(k.Public().(ed25519.PublicKey))
	s, err := cheque.Sign(cheque.Cheque{Network: 1, Issuer: p, Beneficiary: peer.ID{9}, Cumulative: 77, Sequence: 2, Date: 3}, k)
	if err != nil {
		t.Fatal(err)
	}
	tr := account.Traffic{Packets: 1, Bytes: 2}
	return Peer{
		Account: account.Account{Peer: p, Ours: account.Terms{Payment: 5, Disconnect: 6}, Theirs: account.Terms{Prices: account.Prices{Byte: 1}},
			Balance: -12345, Surplus: 6, SentTotal: 7, SentSeq: 8, ReceivedTotal: 77, ReceivedSeq: 2,
			Usage: account.Counters{RelayedFor: tr, ControlOut: tr}, Base: account.Counters{Epoch: 99, RelayedBy: tr},
			Forgiven: 10, ForgivenToUs: 11, Connected: true, ConnectedAt: 12, ForgivenUntil: 13},
		Policy:   policy.State{Choked: true, ChokedAt: 14},
		Score:    score.Tracker{By: 1.5, For: 2.25, At: 15, Class: score.Balanced},
		LastIn:   &s,
		OutAcked: 16, FirstSeen: 17,
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, peer.ID{9}, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := sample(t)
	q := p
	q.Account.Peer = peer.ID{3}
	q.LastIn, q.LastOut = nil, p.LastIn
	if err := s.Put([]Peer{p, q}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, peer.ID{9}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Load()
	if err != nil || len(got) != 2 {
		t.Fatalf("%v %d", err, len(got))
	}
	for _, g := range got {
		want := p
		if g.Account.Peer == q.Account.Peer {
			want = q
		}
		if !reflect.DeepEqual(g, want) {
			t.Fatalf("\n got %+v\nwant %+v", g, want)
		}
	}
}

func TestOwnerAndLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, peer.ID{9}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, peer.ID{9}, 1); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	s.Close()
	if _, err := Open(path, peer.ID{8}, 1); !errors.Is(err, ErrWrongOwner) {
		t.Fatalf("other identity: %v", err)
	}
	if _, err := Open(path, peer.ID{9}, 2); !errors.Is(err, ErrWrongOwner) {
		t.Fatalf("other network: %v", err)
	}
}

func TestCorruptRecord(t *testing.T) {
	p := sample(t)
	b, _ := p.AppendBinary(nil)
	var q Peer
	for _, bad := range [][]byte{b[:len(b)-1], append(bytes.Clone(b), 0), append([]byte{2}, b[1:]...)} {
		if err := q.UnmarshalBinary(bad); !errors.Is(err, ErrCorrupt) && !errors.Is(err, account.ErrMalformedTerms) {
			t.Errorf("accepted or wrong error: %v", err)
		}
	}
}

func FuzzPeer(f *testing.F) {
	f.Add([]byte{recordVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Peer
		if p.UnmarshalBinary(b) != nil {
			return
		}
		out, _ := p.AppendBinary(nil)
		if !bytes.Equal(out, b) {
			t.Fatal("not canonical")
		}
	})
}
