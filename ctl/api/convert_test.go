package api

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/cheque"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/ledger/policy"
	"github.com/poolrelay/poolrelay/ledger/score"
)

func key(b byte) (ed25519.PrivateKey, peer.ID) {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32))
	id, err := peer.FromPublicKey(k.Public().(ed25519.PublicKey))
	if err != nil {
		panic(err)
	}
	return k, id
}

func TestChequeRoundTrip(t *testing.T) {
	ik, issuer := key(1)
	_, self := key(2)
	s, err := cheque.Sign(cheque.Cheque{Network: 1, Issuer: issuer, Beneficiary: self, Cumulative: 500, Sequence: 2, Date: 1_800_000_000}, ik)
	if err != nil {
		t.Fatal(err)
	}
	e := cheque.Entry{Direction: cheque.Received, Peer: issuer, Signed: s}
	c := ChequeFromEntry(e)
	if c.Cumulative != 500 || c.Peer != issuer.String() || c.Date != time.Unix(1_800_000_000, 0).UTC() {
		t.Fatalf("%+v", c)
	}
	back, err := c.Entry()
	if err != nil || back != e {
		t.Fatalf("round trip: %+v %v", back, err)
	}

	lie := c
	lie.Cumulative = 5000 // the readable field claims more than was signed
	if _, err := lie.Entry(); err == nil || !strings.Contains(err.Error(), "disagree") {
		t.Fatalf("tampered field accepted: %v", err)
	}
	forged := c
	forged.Signed = forged.Signed[:len(forged.Signed)-2] + "00"
	if _, err := forged.Entry(); !errors.Is(err, cheque.ErrBadSignature) {
		t.Fatalf("forged signature: %v", err)
	}
	wrongDir := c
	wrongDir.Direction = "issued" // then the peer would be the beneficiary
	if _, err := wrongDir.Entry(); err == nil {
		t.Fatal("direction inconsistent with peer accepted")
	}
}

func TestPeerFromView(t *testing.T) {
	_, id := key(3)
	v := ledger.View{
		Account: account.Account{Peer: id, Balance: -7, Surplus: 3, SentTotal: 11, ReceivedTotal: 13, Connected: true,
			Usage: account.Counters{RelayedFor: account.Traffic{Packets: 1, Bytes: 100}, RelayedBy: account.Traffic{Packets: 2, Bytes: 200}}},
		Choked: true, Class: score.Balanced, Score: 1.5, Limits: policy.Limits{Payment: 80, Disconnect: 100},
		FirstSeen: time.Unix(1_800_000_000, 0),
	}
	p := PeerFromView(v, "192.0.2.7:9254", time.Millisecond)
	want := Peer{ID: id.String(), Address: "192.0.2.7:9254", Connected: true, Class: "balanced", Score: 1.5, Choked: true,
		Balance: -7, Surplus: 3, Limit: 100, RelayedForBytes: 100, RelayedForPackets: 1, RelayedByBytes: 200, RelayedByPackets: 2,
		ChequesIn: 13, ChequesOut: 11, RTT: Duration(time.Millisecond), FirstSeen: time.Unix(1_800_000_000, 0).UTC()}
	if p != want {
		t.Fatalf("got  %+v\nwant %+v", p, want)
	}
}

// The control part of a balance: what the peer's control frames cost it at
// our prices, less what ours cost us at its prices. An idle end node
// (no prices of its own) shows its heartbeats' cost here, with 0 B relayed.
func TestControlCharged(t *testing.T) {
	_, id := key(3)
	a := account.Account{Peer: id,
		Ours:   account.Terms{Prices: account.Prices{Packet: 64, Byte: 1, ControlPacket: 64}},
		Theirs: account.Terms{},
		Usage:  account.Counters{ControlIn: account.Traffic{Packets: 48, Bytes: 9000}, ControlOut: account.Traffic{Packets: 50, Bytes: 9900}},
	}
	a.Balance = 48 * 64
	p := PeerFromView(ledger.View{Account: a}, "", 0)
	if p.ControlCharged != 48*64 || p.Balance != p.ControlCharged || p.RelayedForBytes != 0 || p.ControlInBytes != 9000 || p.ControlOutBytes != 9900 {
		t.Fatalf("%+v", p)
	}
	// Between two relays with the same prices heartbeats roughly cancel.
	a.Theirs = a.Ours
	if p := PeerFromView(ledger.View{Account: a}, "", 0); p.ControlCharged != -2*64 {
		t.Fatalf("both priced: %d", p.ControlCharged)
	}
}
