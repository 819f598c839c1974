package journal

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/poolrelay/poolrelay/ledger/event"
)

func seedRecords() []byte {
	h := header{ID: [16]byte{1}, Created: 5}
	var b []byte
	prev := h.genesis()
	for i := uint64(1); i <= 3; i++ {
		r := Record{Index: i, Batch: 1, Time: int64(i), Type: event.Config, Prev: prev, Body: note(int(i))}
		b = appendRecord(b, &r)
		prev = r.Hash
	}
	return b
}

func FuzzDecodeRecord(f *testing.F) {
	b := seedRecords()
	f.Add(b)
	f.Add(b[:40])
	f.Add([]byte(recMagic + "\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		out := appendRecord(nil, &r)
		if !bytes.Equal(out, b[:len(out)]) {
			t.Fatalf("not canonical")
		}
	})
}

// FuzzScan feeds arbitrary bytes after a valid header to the verifier: it
// must return a result or an error, never panic, and whatever prefix it
// accepts must re-verify as clean.
func FuzzScan(f *testing.F) {
	b := seedRecords()
	f.Add(b)
	f.Add(b[:len(b)-5])
	f.Add(append(bytes.Clone(b), 0, 0, 0, 0))
	c := bytes.Clone(b)
	c[100] ^= 1
	f.Add(c)
	h := header{ID: [16]byte{1}, Created: 5}
	hdr := h.encode()
	f.Fuzz(func(t *testing.T, tail []byte) {
		file := append(bytes.Clone(hdr), tail...)
		start := position{Offset: int64(headerSize), Next: 1, Head: h.genesis()}
		p, torn, err := scan(bytes.NewReader(file), int64(len(file)), start, nil)
		if err != nil {
			if !errors.Is(err, ErrBroken) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if torn != nil && torn.Offset+torn.Bytes != int64(len(file)) {
			t.Fatalf("torn %+v in a file of %d", torn, len(file))
		}
		q, torn2, err := scan(bytes.NewReader(file[:p.Offset]), p.Offset, start, nil)
		if err != nil || torn2 != nil || q != p {
			t.Fatalf("accepted prefix does not re-verify: %v %+v", err, torn2)
		}
	})
}

func FuzzParseSignedHead(f *testing.F) {
	f.Add(make([]byte, SignedHeadSize))
	f.Add(append([]byte(headTag), make([]byte, SignedHeadSize-len(headTag))...))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignedHead(b)
		if err != nil {
			return
		}
		out, _ := s.AppendBinary(nil)
		if !bytes.Equal(out, b) {
			t.Fatal("not canonical")
		}
	})
}

// BenchmarkAppendDurable measures durable appends per second: each Append
// returns only after its record is fdatasync'ed, with g goroutines
// appending at once so that group commit can share fsyncs.
func BenchmarkAppendDurable(b *testing.B) {
	for _, g := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			j, _ := open(b, filepath.Join(b.TempDir(), "j"))
			body := make([]byte, 200) // about a cheque entry
			b.ReportAllocs()
			b.SetBytes(int64(Overhead + len(body)))
			var wg sync.WaitGroup
			per := b.N/g + 1
			b.ResetTimer()
			for w := 0; w < g; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i++ {
						if _, err := j.Append(event.Config, body); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(per*g)/b.Elapsed().Seconds(), "appends/s")
			j.Close()
		})
	}
}
