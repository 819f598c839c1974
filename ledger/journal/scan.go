package journal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// position is where a verified prefix of the journal ends.
type position struct {
	// Offset is the end of the last good record.
	Offset int64
	// Next is the index the next record must carry.
	Next uint64
	// Head is the last good record's hash (the genesis hash when none).
	Head Hash
}

// Torn describes a damaged tail: the bytes of an unsynced last batch.
type Torn struct {
	// Offset is where the damage starts: the end of the last good record.
	Offset int64
	// Bytes is the length of the damaged tail, from Offset to the end of file.
	Bytes int64
	// FirstLost is the index the first damaged record would have had.
	FirstLost uint64
	// Reason says what was wrong with the first damaged record.
	Reason string
	// intact are the offsets of well-formed records of the torn batch found
	// after the damage; repair defaces them before anything else.
	intact []int64
}

// String describes the torn tail for logs and the ERROR entry.
func (t *Torn) String() string {
	return fmt.Sprintf("torn tail: %d bytes at offset %d discarded, from index %d (%s)",
		t.Bytes, t.Offset, t.FirstLost, t.Reason)
}

// readBufSize holds the largest record, so one Peek sees a whole record.
const readBufSize = Overhead + MaxBody + 4096

// scan verifies records from p to size, calling fn (if not nil) for each. It
// returns where the good prefix ends and, when the tail after it is damaged
// but holds no later durable batch, a Torn description. Damage before a
// later batch, or a well-formed record that does not continue the chain, is
// ErrBroken.
func scan(r io.ReaderAt, size int64, p position, fn func(*Record) error) (position, *Torn, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, p.Offset, size-p.Offset), readBufSize)
	for {
		b, err := br.Peek(8)
		if len(b) == 0 && errors.Is(err, io.EOF) {
			return p, nil, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return p, nil, fmt.Errorf("journal: read at %d: %w", p.Offset, err)
		}
		var rec Record
		n, derr := bodyLen(b)
		if derr == nil {
			b, err = br.Peek(Overhead + n)
			if err != nil && !errors.Is(err, io.EOF) {
				return p, nil, fmt.Errorf("journal: read at %d: %w", p.Offset, err)
			}
			rec, derr = decodeRecord(b)
		}
		if derr != nil {
			t, err := classify(r, size, p, derr.Error())
			return p, t, err
		}
		if rec.Index != p.Next || rec.Prev != p.Head {
			return p, nil, fmt.Errorf("%w: record at offset %d has index %d and prev %.16s, want index %d after %.16s",
				ErrBroken, p.Offset, rec.Index, rec.Prev, p.Next, p.Head)
		}
		rec.Offset = p.Offset
		if fn != nil {
			if err := fn(&rec); err != nil {
				return p, nil, err
			}
		}
		p = position{Offset: p.Offset + rec.Size(), Next: rec.Index + 1, Head: rec.Hash}
		if _, err := br.Discard(int(rec.Size())); err != nil {
			return p, nil, fmt.Errorf("journal: read at %d: %w", p.Offset, err)
		}
	}
}

// classify decides whether damage found at p is a torn tail or a break in
// durable history, by looking for well-formed records after it (see the
// package documentation).
func classify(r io.ReaderAt, size int64, p position, reason string) (*Torn, error) {
	k := p.Next
	var intact []int64
	chunk := make([]byte, 64<<10)
	rec := make([]byte, Overhead+MaxBody)
	for base := p.Offset + 1; base < size; {
		n, err := r.ReadAt(chunk[:min(int64(len(chunk)), size-base)], base)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("journal: read at %d: %w", base, err)
		}
		at := bytes.Index(chunk[:n], []byte(recMagic))
		if at < 0 {
			// Keep the last 3 bytes: a magic may straddle the chunks.
			base += int64(max(n-len(recMagic)+1, 1))
			continue
		}
		q := base + int64(at)
		m, err := r.ReadAt(rec[:min(int64(len(rec)), size-q)], q)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("journal: read at %d: %w", q, err)
		}
		got, derr := decodeRecord(rec[:m])
		if derr != nil {
			base = q + 1
			continue
		}
		if got.Index < k || got.Batch > k {
			return nil, fmt.Errorf("%w: record %d at offset %d is damaged (%s) but durable record %d (batch %d) follows at offset %d",
				ErrBroken, k, p.Offset, reason, got.Index, got.Batch, q)
		}
		// A later record of the damaged record's own batch: torn with it.
		intact = append(intact, q)
		base = q + got.Size()
	}
	return &Torn{Offset: p.Offset, Bytes: size - p.Offset, FirstLost: k, Reason: reason, intact: intact}, nil
}
