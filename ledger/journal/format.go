// Package journal is the relay's change journal: an append-only file of
// typed entries (see package event), each chained to the previous one by
// SHA-256, made durable by group commit and verified whenever it is opened.
//
// # File format
//
// A 36-byte header, then records back to back; integers big-endian:
//
//	header:  "POOLJRNL" | version u32 (1) | journal id [16] | created i64 (Unix ns)
//	record:  "pjr1" | body length u32 | index u64 | batch u64 | time i64 (Unix ns)
//	         | type u8 | prev [32] | body | hash [32]
//
// hash is SHA-256 over the tag "poolrelay-jrn-v1" followed by every record
// byte before it; prev is the previous record's hash, and the first record's
// prev is SHA-256 over "poolrelay-jgn-v1" and the header. So each record
// commits to the whole history before it, and the last hash (the head)
// commits to the journal; the head, signed, travels in heartbeats so peers
// witness it (SignHead).
//
// Indexes count from 1 without gaps. batch is the index of the first record
// written by the same write system call: group commit writes a batch, waits
// for its fsync, and only then writes the next. This is what tells a torn
// tail from damage in the middle when the journal is opened:
//
//   - the records are read and checked in order until one fails (cut short,
//     bad length or magic, bad hash);
//   - if a well-formed record of a *later* batch follows the damage, the
//     damaged batch had been fsynced before that one was written, so durable
//     history is broken: Open stops with ErrBroken;
//   - otherwise the damage is the unsynced last batch (a crash or power loss
//     during its write): Open truncates the file to the last good record,
//     appends an ERROR entry saying how many bytes were discarded, and
//     reports it in Recovery. A torn tail is never silently accepted.
//
// A well-formed record whose index or prev does not continue the chain is
// never a torn write: that is ErrBroken too.
package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/poolrelay/poolrelay/ledger/event"
)

const (
	fileMagic  = "POOLJRNL"
	version    = 1
	headerSize = len(fileMagic) + 4 + 16 + 8

	recMagic = "pjr1"
	// recHeadSize is the fixed part before the body.
	recHeadSize = 4 + 4 + 8 + 8 + 8 + 1 + HashSize
	// HashSize is the length of a record hash.
	HashSize = sha256.Size
	// Overhead is the size of a record beyond its body.
	Overhead = recHeadSize + HashSize
	// MaxBody is the largest body accepted. Bodies are small (a signed
	// cheque is 172 bytes); the bound keeps a corrupted length from making
	// the reader allocate or skip gigabytes.
	MaxBody = 64 << 10

	hashTag    = "poolrelay-jrn-v1"
	genesisTag = "poolrelay-jgn-v1"
)

// Sentinel errors.
var (
	// ErrBroken: the chain is broken before its tail (damage or tampering in
	// durable history). The journal cannot be opened for writing; the error
	// says where.
	ErrBroken = errors.New("journal: chain broken")
	// ErrBadHeader: not a journal file, or an unknown version.
	ErrBadHeader = errors.New("journal: bad file header")
	// ErrLocked: another process has the journal open.
	ErrLocked = errors.New("journal: locked by another process")
	// ErrClosed: the journal was closed.
	ErrClosed = errors.New("journal: closed")
	// ErrTooLarge: a body over MaxBody.
	ErrTooLarge = errors.New("journal: body too large")
	// ErrDegraded: the journal cannot write now (a full disk, an I/O
	// error). Nothing is appended, and nothing that needs a record may be
	// acknowledged, until the journal writes again, which it retries by
	// itself (see Health). A record whose Append or Wait returns it was
	// never written.
	ErrDegraded = errors.New("journal: cannot write")
)

// Hash is a record hash.
type Hash [HashSize]byte

// String is the hex form.
func (h Hash) String() string { return fmt.Sprintf("%x", h[:]) }

// MarshalText implements encoding.TextMarshaler (hex).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// Record is one journal entry.
type Record struct {
	Index uint64
	// Batch is the index of the first record of the same group commit.
	Batch uint64
	// Time is when the record was appended, Unix ns (the injected clock's).
	Time int64
	Type event.Type
	Prev Hash
	// Body is the event's canonical encoding (see package event). In
	// records passed to a callback it is only valid until the callback returns.
	Body []byte
	Hash Hash
	// Offset is the record's position in the file.
	Offset int64
}

// Size is the record's length in the file.
func (r *Record) Size() int64 { return int64(Overhead + len(r.Body)) }

// When returns Time as a time.Time.
func (r *Record) When() time.Time { return time.Unix(0, r.Time).UTC() }

// Event decodes the body.
func (r *Record) Event() (event.Body, error) { return event.Unmarshal(r.Type, r.Body) }

// appendRecord encodes r at the end of dst, computing and setting r.Hash.
func appendRecord(dst []byte, r *Record) []byte {
	start := len(dst)
	dst = append(dst, recMagic...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(r.Body)))
	dst = binary.BigEndian.AppendUint64(dst, r.Index)
	dst = binary.BigEndian.AppendUint64(dst, r.Batch)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Time))
	dst = append(dst, byte(r.Type))
	dst = append(dst, r.Prev[:]...)
	dst = append(dst, r.Body...)
	r.Hash = recordHash(dst[start:])
	return append(dst, r.Hash[:]...)
}

func recordHash(b []byte) Hash {
	h := sha256.New()
	h.Write([]byte(hashTag))
	h.Write(b)
	var out Hash
	h.Sum(out[:0])
	return out
}

// errShort means the bytes end before the record does.
var errShort = errors.New("journal: record cut short")

// bodyLen reads the length field of the record starting at b, checking the
// magic. It needs at least 8 bytes.
func bodyLen(b []byte) (int, error) {
	if len(b) < 8 {
		return 0, errShort
	}
	if string(b[:4]) != recMagic {
		return 0, errors.New("journal: bad record magic")
	}
	n := binary.BigEndian.Uint32(b[4:8])
	if n > MaxBody {
		return 0, fmt.Errorf("journal: body length %d over %d", n, MaxBody)
	}
	return int(n), nil
}

// decodeRecord decodes one self-consistent record from the start of b: its
// magic, length, fields and own hash are checked, not its place in a chain.
// Body aliases b. It returns errShort when b ends before the record does.
func decodeRecord(b []byte) (Record, error) {
	n, err := bodyLen(b)
	if err != nil {
		return Record{}, err
	}
	size := Overhead + n
	if len(b) < size {
		return Record{}, errShort
	}
	var r Record
	r.Index = binary.BigEndian.Uint64(b[8:])
	r.Batch = binary.BigEndian.Uint64(b[16:])
	r.Time = int64(binary.BigEndian.Uint64(b[24:]))
	r.Type = event.Type(b[32])
	copy(r.Prev[:], b[33:recHeadSize])
	r.Body = b[recHeadSize : recHeadSize+n]
	copy(r.Hash[:], b[recHeadSize+n:size])
	switch {
	case r.Index == 0 || r.Batch == 0 || r.Batch > r.Index:
		return Record{}, fmt.Errorf("journal: index %d, batch %d", r.Index, r.Batch)
	case r.Type == 0:
		return Record{}, errors.New("journal: type 0")
	case recordHash(b[:recHeadSize+n]) != r.Hash:
		return Record{}, errors.New("journal: record hash mismatch")
	}
	return r, nil
}

// header is the file header.
type header struct {
	ID      [16]byte
	Created int64
}

func (h *header) encode() []byte {
	b := make([]byte, 0, headerSize)
	b = append(b, fileMagic...)
	b = binary.BigEndian.AppendUint32(b, version)
	b = append(b, h.ID[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(h.Created))
}

func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) < headerSize || !bytes.Equal(b[:len(fileMagic)], []byte(fileMagic)) {
		return h, fmt.Errorf("%w: not a journal", ErrBadHeader)
	}
	if v := binary.BigEndian.Uint32(b[8:]); v != version {
		return h, fmt.Errorf("%w: version %d", ErrBadHeader, v)
	}
	copy(h.ID[:], b[12:28])
	h.Created = int64(binary.BigEndian.Uint64(b[28:]))
	return h, nil
}

// genesis is the prev of the first record.
func (h *header) genesis() Hash {
	s := sha256.New()
	s.Write([]byte(genesisTag))
	s.Write(h.encode())
	var out Hash
	s.Sum(out[:0])
	return out
}
