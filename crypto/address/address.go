// Package address is the POOL 256-bit address: who a node is (a hash of its
// identity key) and where it sits administratively (organisation, segment).
//
// # Binary form
//
// 32 bytes, big-endian:
//
//	off size field
//	  0    1 version (1)
//	  1    1 type (TypeRelay, TypeNode)
//	  2    4 organisation id
//	  6    2 segment id
//	  8   20 node id = SHA-256("poolrelay/v1 node-id" || Ed25519 public key)[:20]
//	 28    4 CRC-32C (Castagnoli) of bytes 0..28
//
// The node id is 160 bits: impersonating a given address means a second
// preimage of SHA-256 truncated to 160 bits (2^160 work); two keys sharing a
// node id (2^80 work) only give an attacker two names for itself. The node id
// is what binds an address to a key: the handshake checks it against the
// peer's authenticated identity. The CRC is not security, it catches typing
// and copying mistakes before they turn into "unknown peer" puzzles;
// Castagnoli because it detects more error patterns than the IEEE polynomial
// at this length and has hardware support on both amd64 and arm64.
//
// # Text form
//
//	pool1-<type>-<org: 8 hex>-<segment: 4 hex>-<node id: 40 hex>-<crc: 8 hex>
//	pool1-relay-0000002a-0003-fe08478b5e7f2344fc09ec1d383af0656ff8a67f-a33f5cb1
//
// (a relay of organisation 42, segment 3, whose Ed25519 key is 32 bytes of
// 0x01; TestDocExample checks it).
//
// "pool1" carries the version; type is a name ("relay", "node"); every field
// is fixed width, so the form is canonical: Format(Parse(s)) == s for every
// lowercase s that parses. Parse also accepts uppercase hex and names and
// checks the checksum (ErrChecksum when only the checksum is wrong).
package address

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
)

const (
	// Size is the size of an address in bytes.
	Size = 32
	// NodeIDSize is the size of the node id.
	NodeIDSize = 20
	// Version is the address version this package reads and writes.
	Version = 1

	// nodeIDTag separates the node id hash from every other hash of a key.
	nodeIDTag  = "poolrelay/v1 node-id"
	textPrefix = "pool1"
)

// Type says what kind of node an address names.
type Type uint8

// Address types.
const (
	// TypeRelay is a relay appliance.
	TypeRelay Type = 1
	// TypeNode is an end node: the source or sink of POOL traffic.
	TypeNode Type = 2
)

var typeNames = [...]string{TypeRelay: "relay", TypeNode: "node"}

// String returns the type's text-form name, or "type(N)" if unknown.
func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Valid reports whether t is a known type.
func (t Type) Valid() bool { return t == TypeRelay || t == TypeNode }

var (
	// ErrChecksum: the address is well formed but its CRC does not match.
	ErrChecksum = errors.New("address: bad checksum")
	// ErrSyntax: the text is not an address.
	ErrSyntax = errors.New("address: malformed")
	// ErrVersion: an address version this package does not know.
	ErrVersion = errors.New("address: unknown version")
	// ErrType: an unknown address type.
	ErrType = errors.New("address: unknown type")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// NodeID is the hash of a node's Ed25519 public key.
type NodeID [NodeIDSize]byte

// NodeIDOf returns the node id of an Ed25519 public key.
func NodeIDOf(pub [32]byte) NodeID {
	var buf [len(nodeIDTag) + 32]byte
	copy(buf[:], nodeIDTag)
	copy(buf[len(nodeIDTag):], pub[:])
	sum := sha256.Sum256(buf[:])
	var id NodeID
	copy(id[:], sum[:NodeIDSize])
	return id
}

// String returns the node id in lowercase hex.
func (n NodeID) String() string { return hex.EncodeToString(n[:]) }

// Address is a POOL address in binary form. Values built by New, Parse or
// UnmarshalBinary are valid; the zero Address is not (IsZero).
type Address [Size]byte

// New returns the address of the node whose Ed25519 public key is pub. It
// panics on an unknown type (a programming error).
func New(t Type, org uint32, segment uint16, pub [32]byte) Address {
	return FromNodeID(t, org, segment, NodeIDOf(pub))
}

// FromNodeID builds an address around a known node id.
func FromNodeID(t Type, org uint32, segment uint16, id NodeID) Address {
	if !t.Valid() {
		panic(fmt.Sprintf("address: unknown type %d", t))
	}
	var a Address
	a[0] = Version
	a[1] = byte(t)
	binary.BigEndian.PutUint32(a[2:6], org)
	binary.BigEndian.PutUint16(a[6:8], segment)
	copy(a[8:28], id[:])
	binary.BigEndian.PutUint32(a[28:32], checksum(a[:28]))
	return a
}

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Version returns the address version.
func (a Address) Version() uint8 { return a[0] }

// Type returns the node type.
func (a Address) Type() Type { return Type(a[1]) }

// Org returns the organisation id.
func (a Address) Org() uint32 { return binary.BigEndian.Uint32(a[2:6]) }

// Segment returns the segment id.
func (a Address) Segment() uint16 { return binary.BigEndian.Uint16(a[6:8]) }

// NodeID returns the node id.
func (a Address) NodeID() NodeID {
	var id NodeID
	copy(id[:], a[8:28])
	return id
}

// Checksum returns the stored CRC-32C.
func (a Address) Checksum() uint32 { return binary.BigEndian.Uint32(a[28:32]) }

// IsZero reports whether a is the zero value, used for "no address".
func (a Address) IsZero() bool { return a == Address{} }

// Matches reports whether a names the node whose Ed25519 public key is pub.
func (a Address) Matches(pub [32]byte) bool { return a.NodeID() == NodeIDOf(pub) }

// check validates version, type and checksum, in that order, so that a
// corrupted version or type is reported as such rather than as a checksum
// mismatch.
func (a Address) check() error {
	if a[0] != Version {
		return fmt.Errorf("%w %d", ErrVersion, a[0])
	}
	if !a.Type().Valid() {
		return fmt.Errorf("%w %d", ErrType, a[1])
	}
	if got, want := a.Checksum(), checksum(a[:28]); got != want {
		return fmt.Errorf("%w: %08x, computed %08x", ErrChecksum, got, want)
	}
	return nil
}

// Validate reports whether a is a well-formed address.
func (a Address) Validate() error { return a.check() }

// MarshalBinary returns the 32-byte form.
func (a Address) MarshalBinary() ([]byte, error) { return a[:], nil }

// UnmarshalBinary decodes the 32-byte form, checking version, type and CRC.
func (a *Address) UnmarshalBinary(b []byte) error {
	if len(b) != Size {
		return fmt.Errorf("%w: %d bytes, want %d", ErrSyntax, len(b), Size)
	}
	var v Address
	copy(v[:], b)
	if err := v.check(); err != nil {
		return err
	}
	*a = v
	return nil
}

// textLen is the length of the text form without the type name.
const textLen = len(textPrefix) + 1 + 1 + 8 + 1 + 4 + 1 + 2*NodeIDSize + 1 + 8

// String returns the text form (see the package doc).
func (a Address) String() string {
	var b strings.Builder
	b.Grow(textLen + len("relay"))
	b.WriteString(textPrefix)
	b.WriteByte('-')
	b.WriteString(a.Type().String())
	var buf [2 * NodeIDSize]byte
	for _, field := range [][]byte{a[2:6], a[6:8], a[8:28], a[28:32]} {
		b.WriteByte('-')
		hex.Encode(buf[:], field)
		b.Write(buf[:2*len(field)])
	}
	return b.String()
}

// MarshalText returns the text form, so addresses work in TOML and JSON.
func (a Address) MarshalText() ([]byte, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	return []byte(a.String()), nil
}

// UnmarshalText parses the text form.
func (a *Address) UnmarshalText(text []byte) error {
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Parse parses the text form. A string that is well formed but whose
// checksum is wrong gives ErrChecksum; anything else that is not an address
// gives ErrSyntax, ErrVersion or ErrType.
func Parse(s string) (Address, error) {
	var a Address
	if len(s) > 2*textLen {
		return a, fmt.Errorf("%w: %d characters", ErrSyntax, len(s))
	}
	fields := strings.Split(s, "-")
	if len(fields) != 6 {
		return a, fmt.Errorf("%w: %q has %d '-'-separated fields, want 6", ErrSyntax, s, len(fields))
	}
	if !strings.EqualFold(fields[0], textPrefix) {
		if len(fields[0]) > len("pool") && strings.EqualFold(fields[0][:4], "pool") {
			return a, fmt.Errorf("%w %q", ErrVersion, fields[0][4:])
		}
		return a, fmt.Errorf("%w: %q does not start with %q", ErrSyntax, s, textPrefix)
	}
	a[0] = Version
	switch strings.ToLower(fields[1]) {
	case "relay":
		a[1] = byte(TypeRelay)
	case "node":
		a[1] = byte(TypeNode)
	default:
		return Address{}, fmt.Errorf("%w %q", ErrType, fields[1])
	}
	for i, dst := range [][]byte{a[2:6], a[6:8], a[8:28], a[28:32]} {
		f := fields[2+i]
		if len(f) != 2*len(dst) {
			return Address{}, fmt.Errorf("%w: field %d is %d hex digits, want %d", ErrSyntax, 2+i, len(f), 2*len(dst))
		}
		if _, err := hex.Decode(dst, []byte(f)); err != nil {
			return Address{}, fmt.Errorf("%w: field %d: %v", ErrSyntax, 2+i, err)
		}
	}
	if err := a.check(); err != nil {
		return Address{}, err
	}
	return a, nil
}

// MustParse is Parse for constants in tests and examples; it panics on error.
func MustParse(s string) Address {
	a, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return a
}
