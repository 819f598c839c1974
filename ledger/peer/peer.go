// Package peer names a peer of the relay by its Ed25519 identity key. The
// ledger keys every account, cheque and journal entry by this value, never by
// an address or a session, so that reconnecting from elsewhere (or with a new
// session) finds the same account and the same debt.
package peer

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
)

// ID is a peer's Ed25519 public key. It is comparable, so it serves as a map
// key without allocation.
type ID [ed25519.PublicKeySize]byte

// ErrBadKey is returned for a public key of the wrong length or the all-zero key.
var ErrBadKey = errors.New("peer: not an Ed25519 public key")

// FromPublicKey converts an Ed25519 public key.
func FromPublicKey(k ed25519.PublicKey) (ID, error) {
	var id ID
	if len(k) != len(id) {
		return id, fmt.Errorf("%w: %d bytes", ErrBadKey, len(k))
	}
	copy(id[:], k)
	if id.IsZero() {
		return id, fmt.Errorf("%w: all zero", ErrBadKey)
	}
	return id, nil
}

// Parse reads the 64-digit hex form that String writes.
func Parse(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%w: %q is not 64 hex digits", ErrBadKey, s)
	}
	return FromPublicKey(b)
}

// PublicKey returns the key as an ed25519.PublicKey (a copy).
func (id ID) PublicKey() ed25519.PublicKey {
	k := make(ed25519.PublicKey, len(id))
	copy(k, id[:])
	return k
}

// IsZero reports whether id is the zero value (no peer).
func (id ID) IsZero() bool { return id == ID{} }

// String is the full hex form, what logs, exports and the CLI show.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short is the first 8 hex digits, for human-facing tables.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// MarshalText implements encoding.TextMarshaler (hex), so IDs read well in
// JSON exports.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
