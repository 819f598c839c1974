package journal

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// jsonRecord is one line of a journal export.
type jsonRecord struct {
	Index uint64 `json:"index"`
	Batch uint64 `json:"batch"`
	Time  string `json:"time"`
	Type  string `json:"type"`
	Prev  Hash   `json:"prev"`
	Hash  Hash   `json:"hash"`
	// Event is the decoded body; BodyHex and DecodeError replace it when
	// the body does not decode (an entry type this build does not know).
	Event       any    `json:"event,omitempty"`
	BodyHex     string `json:"body_hex,omitempty"`
	DecodeError string `json:"decode_error,omitempty"`
}

// WriteJSON writes r as one line of JSON: index, batch, time (RFC 3339 with
// nanoseconds), type name, prev and hash in hex, and the decoded event. It
// is the format of `pool_relay journal export` and `tail`. The hashes let a
// reader re-check the chain against the binary journal; the JSON itself is
// not what is hashed or signed.
func WriteJSON(w io.Writer, r *Record) error {
	j := jsonRecord{Index: r.Index, Batch: r.Batch, Time: r.When().Format(time.RFC3339Nano),
		Type: r.Type.String(), Prev: r.Prev, Hash: r.Hash}
	if ev, err := r.Event(); err != nil {
		j.BodyHex, j.DecodeError = hex.EncodeToString(r.Body), err.Error()
	} else {
		j.Event = ev
	}
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("journal: export record %d: %w", r.Index, err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal: export: %w", err)
	}
	return nil
}
