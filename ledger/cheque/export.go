package cheque

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/poolrelay/poolrelay/ledger/peer"
)

// Direction says which way a cheque went.
type Direction string

// The two directions of a settlement entry.
const (
	Received Direction = "received"
	Issued   Direction = "issued"
)

// Entry is one line of a settlement file.
type Entry struct {
	Direction Direction
	// Peer is the counterparty: the issuer of a received cheque, the
	// beneficiary of an issued one.
	Peer   peer.ID
	Signed Signed
}

type jsonEntry struct {
	Direction   Direction `json:"direction"`
	Peer        peer.ID   `json:"peer"`
	Network     uint32    `json:"network"`
	Issuer      peer.ID   `json:"issuer"`
	Beneficiary peer.ID   `json:"beneficiary"`
	Cumulative  uint64    `json:"cumulative"`
	Sequence    uint64    `json:"sequence"`
	Date        string    `json:"date"`
	Signed      string    `json:"signed"`
}

// WriteJSONL writes entries in the settlement-file format of the package
// documentation, one JSON object per line.
func WriteJSONL(w io.Writer, entries []Entry) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, e := range entries {
		raw, _ := e.Signed.MarshalBinary()
		if err := enc.Encode(jsonEntry{
			Direction: e.Direction, Peer: e.Peer, Network: e.Signed.Network,
			Issuer: e.Signed.Issuer, Beneficiary: e.Signed.Beneficiary,
			Cumulative: e.Signed.Cumulative, Sequence: e.Signed.Sequence,
			Date:   e.Signed.Time().Format(time.RFC3339),
			Signed: hex.EncodeToString(raw),
		}); err != nil {
			return fmt.Errorf("cheque: export: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("cheque: export: %w", err)
	}
	return nil
}

// ReadJSONL reads a settlement file back, checking that each line's fields
// agree with its raw signed cheque and that the signature verifies. It is
// what a counterparty (or an auditor) runs on a file it was handed.
func ReadJSONL(r io.Reader) ([]Entry, error) {
	dec := json.NewDecoder(r)
	var out []Entry
	for line := 1; dec.More(); line++ {
		var j jsonEntry
		if err := dec.Decode(&j); err != nil {
			return out, fmt.Errorf("cheque: settlement line %d: %w", line, err)
		}
		raw, err := hex.DecodeString(j.Signed)
		if err != nil {
			return out, fmt.Errorf("cheque: settlement line %d: signed: %w", line, err)
		}
		s, err := Parse(raw)
		if err != nil {
			return out, fmt.Errorf("cheque: settlement line %d: %w", line, err)
		}
		if err := s.Verify(); err != nil {
			return out, fmt.Errorf("cheque: settlement line %d: %w", line, err)
		}
		counterparty := s.Issuer
		if j.Direction == Issued {
			counterparty = s.Beneficiary
		} else if j.Direction != Received {
			return out, fmt.Errorf("cheque: settlement line %d: direction %q", line, j.Direction)
		}
		if j.Peer != counterparty || j.Network != s.Network || j.Issuer != s.Issuer ||
			j.Beneficiary != s.Beneficiary || j.Cumulative != s.Cumulative || j.Sequence != s.Sequence {
			return out, fmt.Errorf("cheque: settlement line %d: fields disagree with the signed cheque", line)
		}
		out = append(out, Entry{Direction: j.Direction, Peer: j.Peer, Signed: s})
	}
	return out, nil
}

// WriteRaw writes the raw signed cheques back to back, SignedSize bytes each.
func WriteRaw(w io.Writer, entries []Entry) error {
	bw := bufio.NewWriter(w)
	var buf [SignedSize]byte
	for _, e := range entries {
		b, _ := e.Signed.AppendBinary(buf[:0])
		if _, err := bw.Write(b); err != nil {
			return fmt.Errorf("cheque: export: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("cheque: export: %w", err)
	}
	return nil
}
