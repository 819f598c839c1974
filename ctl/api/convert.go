package api

import (
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/cheque"
	"github.com/poolrelay/poolrelay/pool/proto"
)

// PeerFromView is the Peer the daemon reports for the ledger's view of a
// peer; the session supplies the address and the last heartbeat RTT.
func PeerFromView(v ledger.View, address string, rtt time.Duration) Peer {
	a := &v.Account
	return Peer{
		ID:                a.Peer.String(),
		Address:           address,
		Connected:         a.Connected,
		Class:             v.Class.String(),
		Score:             v.Score,
		Choked:            v.Choked,
		Balance:           a.Balance,
		Surplus:           a.Surplus,
		Limit:             v.Limits.Disconnect,
		RelayedForBytes:   a.Usage.RelayedFor.Bytes,
		RelayedForPackets: a.Usage.RelayedFor.Packets,
		RelayedByBytes:    a.Usage.RelayedBy.Bytes,
		RelayedByPackets:  a.Usage.RelayedBy.Packets,
		ControlInBytes:    a.Usage.ControlIn.Bytes,
		ControlOutBytes:   a.Usage.ControlOut.Bytes,
		ControlCharged:    controlCharged(a),
		ChequesIn:         a.ReceivedTotal,
		ChequesOut:        a.SentTotal,
		RTT:               Duration(rtt),
		FirstSeen:         v.FirstSeen.UTC(),
	}
}

// LinkFromTelemetry is the LinkTelemetry of a heartbeat's telemetry.
func LinkFromTelemetry(t proto.Telemetry) LinkTelemetry {
	return LinkTelemetry{RTT: Duration(t.RTT), Jitter: Duration(t.Jitter), LossPPM: t.LossPPM, ThroughputBPS: t.Throughput,
		MTU: t.MTU, Uptime: Duration(t.Uptime), QueueDepth: t.QueueDepth}
}

// controlCharged is the account's net charge for control frames at its
// current terms, saturating rather than wrapping.
func controlCharged(a *account.Account) int64 {
	in := a.Ours.Prices.Charge(account.Traffic{}, a.Usage.ControlIn)
	out := a.Theirs.Prices.Charge(account.Traffic{}, a.Usage.ControlOut)
	clamp := func(v uint64) int64 { return int64(min(v, math.MaxInt64)) }
	return clamp(in) - clamp(out)
}

// ChequeFromEntry is the Cheque of a settlement entry (ledger.Ledger.Cheques).
func ChequeFromEntry(e cheque.Entry) Cheque {
	raw, _ := e.Signed.MarshalBinary()
	s := &e.Signed
	return Cheque{
		Direction:   string(e.Direction),
		Peer:        e.Peer.String(),
		Issuer:      s.Issuer.String(),
		Beneficiary: s.Beneficiary.String(),
		Network:     s.Network,
		Cumulative:  s.Cumulative,
		Sequence:    s.Sequence,
		Date:        s.Time().UTC(),
		Signed:      hex.EncodeToString(raw),
	}
}

// Entry decodes c back into a settlement entry from its raw signed form
// alone, verifies the signature, and checks that the readable fields say
// what the signed bytes say. It is how the CLI builds a settlement file from
// what the daemon sent, trusting nothing but the signatures.
func (c Cheque) Entry() (cheque.Entry, error) {
	raw, err := hex.DecodeString(c.Signed)
	if err != nil {
		return cheque.Entry{}, fmt.Errorf("api: cheque of %s: signed: %w", c.Peer, err)
	}
	s, err := cheque.Parse(raw)
	if err != nil {
		return cheque.Entry{}, fmt.Errorf("api: cheque of %s: %w", c.Peer, err)
	}
	if err := s.Verify(); err != nil {
		return cheque.Entry{}, fmt.Errorf("api: cheque of %s: %w", c.Peer, err)
	}
	e := cheque.Entry{Direction: cheque.Direction(c.Direction), Signed: s}
	switch e.Direction {
	case cheque.Received:
		e.Peer = s.Issuer
	case cheque.Issued:
		e.Peer = s.Beneficiary
	default:
		return cheque.Entry{}, fmt.Errorf("api: cheque of %s: unknown direction %q", c.Peer, c.Direction)
	}
	if ChequeFromEntry(e) != c {
		return cheque.Entry{}, fmt.Errorf("api: cheque of %s: fields disagree with the signed cheque", c.Peer)
	}
	return e, nil
}
