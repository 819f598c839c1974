package journal

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/peer"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func opts() Options { return Options{Clock: clock.NewFake(t0), Log: logging.Nop()} }

func open(t testing.TB, path string) (*Journal, Recovery) {
	t.Helper()
	j, rec, err := Open(path, opts())
	if err != nil {
		t.Fatal(err)
	}
	return j, rec
}

func note(i int) []byte {
	b, _ := event.Marshal(event.Config, &event.Text{Note: fmt.Sprintf("entry %d", i)})
	return b
}

// fill appends n records one by one (one batch each) and closes.
func fill(t testing.TB, path string, n int) []Pos {
	t.Helper()
	j, _ := open(t, path)
	var ps []Pos
	for i := 0; i < n; i++ {
		p, err := j.Append(event.Config, note(i))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestAppendReopenVerify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, rec := open(t, path)
	if !rec.Created || j.Head().Index != 0 {
		t.Fatalf("new journal: %+v %+v", rec, j.Head())
	}
	p1, err := j.Append(event.Config, note(1))
	if err != nil || p1.Index != 1 {
		t.Fatal(p1, err)
	}
	p2, _ := j.AppendEvent(event.Error, &event.Text{Note: "x"})
	if h := j.Head(); h.Index != 2 || h.Hash != p2.Hash {
		t.Fatalf("head %+v", h)
	}
	id := j.ID()
	j.Close()

	var seen []event.Type
	j, rec, err = Open(path, Options{Clock: clock.NewFake(t0), Log: logging.Nop(), Visit: func(r *Record) error {
		seen = append(seen, r.Type)
		return nil
	}})
	if err != nil || rec.Records != 2 || rec.Torn != nil || rec.Created {
		t.Fatalf("reopen: %v %+v", err, rec)
	}
	if len(seen) != 2 || seen[1] != event.Error || j.ID() != id || j.Head().Hash != p2.Hash {
		t.Fatalf("seen %v", seen)
	}
	p3, _ := j.Append(event.Config, note(3))
	if p3.Index != 3 {
		t.Fatal(p3)
	}
	j.Close()
	s, err := Verify(path, nil)
	if err != nil || s.Records != 3 || s.Head != p3.Hash || s.Torn != nil || s.ID != id {
		t.Fatalf("verify: %v %+v", err, s)
	}
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, _ := open(t, path)
	defer j.Close()
	if _, _, err := Open(path, opts()); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if _, err := Verify(path, nil); err != nil {
		t.Fatalf("read-only verify beside the writer: %v", err)
	}
}

func TestBadHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	os.WriteFile(path, []byte("not a journal at all, really not one"), 0o600)
	if _, _, err := Open(path, opts()); !errors.Is(err, ErrBadHeader) {
		t.Fatal(err)
	}
}

// Concurrent appenders share fsyncs, every record gets a distinct index,
// and the chain verifies.
func TestGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, _ := open(t, path)
	const workers, each = 16, 50
	var wg sync.WaitGroup
	seen := make([]bool, workers*each+1)
	var mu sync.Mutex
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				p, err := j.Append(event.Config, note(i))
				if err != nil {
					t.Error(err)
					return
				}
				// Durable on return: the head is at least this record.
				if j.Head().Index < p.Index {
					t.Errorf("Append returned before record %d was durable", p.Index)
				}
				mu.Lock()
				if seen[p.Index] {
					t.Errorf("index %d twice", p.Index)
				}
				seen[p.Index] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	j.Close()
	batches := map[uint64]int{}
	s, err := Verify(path, func(r *Record) error { batches[r.Batch]++; return nil })
	if err != nil || s.Records != workers*each {
		t.Fatalf("%v %+v", err, s)
	}
	if len(batches) >= workers*each {
		t.Fatalf("no batching: %d batches for %d records", len(batches), workers*each)
	}
	t.Logf("%d records in %d fsync batches", workers*each, len(batches))
}

func TestSubmitIsFlushedInBackground(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, _ := open(t, path)
	p, err := j.Submit(event.Config, note(1))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for j.Head().Index < p.Index {
		if time.Now().After(deadline) {
			t.Fatal("submitted record never became durable")
		}
		time.Sleep(time.Millisecond)
	}
	j.Close()
}

// Cutting the file anywhere inside the last record is a torn tail: Open
// truncates it, appends an ERROR entry saying so, and reports it.
func TestTornTailEveryCut(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	ps := fill(t, base, 3)
	full, _ := os.ReadFile(base)
	var lastOff int64
	Verify(base, func(r *Record) error { lastOff = r.Offset; return nil })
	for cut := lastOff + 1; cut < int64(len(full)); cut++ {
		path := filepath.Join(dir, fmt.Sprintf("cut%d", cut))
		os.WriteFile(path, full[:cut], 0o600)
		j, rec, err := Open(path, opts())
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if rec.Torn == nil || rec.Torn.Offset != lastOff || rec.Torn.FirstLost != 3 || rec.Records != 2 {
			t.Fatalf("cut %d: %+v %+v", cut, rec, rec.Torn)
		}
		tail, _ := j.Tail(1)
		if h := j.Head(); h.Index != 3 || tail[0].Type != event.Error || tail[0].Prev != ps[1].Hash {
			t.Fatalf("cut %d: head %+v tail %+v", cut, h, tail)
		}
		ev, _ := tail[0].Event()
		if !strings.Contains(ev.(*event.Text).Note, "torn tail") {
			t.Fatalf("ERROR entry says %q", ev.(*event.Text).Note)
		}
		j.Close()
		// Repaired for good: the next open finds nothing wrong.
		j, rec, err = Open(path, opts())
		if err != nil || rec.Torn != nil || rec.Records != 3 {
			t.Fatalf("cut %d reopen: %v %+v", cut, err, rec)
		}
		j.Close()
		os.Remove(path)
	}
}

// A tail of zeros (what some filesystems leave after a power loss) is torn.
func TestZeroFilledTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	fill(t, path, 2)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(make([]byte, 4096))
	f.Close()
	j, rec, err := Open(path, opts())
	if err != nil || rec.Torn == nil || rec.Torn.Bytes != 4096 {
		t.Fatalf("%v %+v", err, rec.Torn)
	}
	j.Close()
}

// Build a journal whose last batch holds three records (appended
// concurrently while an earlier flush is in progress is hard to force, so
// write the bytes directly), then damage the batch's first record: the later
// intact records of the same batch go with it as a torn tail.
func TestTornBatchWithIntactLaterRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	fill(t, path, 1)
	s, _ := Verify(path, nil)
	st, _ := os.Stat(path)
	var batch []byte
	prev := s.Head
	var offs []int
	for i := uint64(2); i <= 4; i++ {
		r := Record{Index: i, Batch: 2, Time: t0.UnixNano(), Type: event.Config, Prev: prev, Body: note(int(i))}
		offs = append(offs, len(batch))
		batch = appendRecord(batch, &r)
		prev = r.Hash
	}
	batch[offs[0]+recHeadSize] ^= 0xff // damage record 2's body
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(batch)
	f.Close()
	j, rec, err := Open(path, opts())
	if err != nil || rec.Torn == nil || rec.Torn.Offset != st.Size() || rec.Torn.FirstLost != 2 {
		t.Fatalf("%v %+v", err, rec.Torn)
	}
	j.Close()
	if s, err := Verify(path, nil); err != nil || s.Records != 2 || s.Torn != nil {
		t.Fatalf("after repair: %v %+v", err, s)
	}
}

// Damage followed by a record of a later batch is durable history broken:
// Open refuses with ErrBroken.
func TestBrokenInTheMiddle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "j")
	fill(t, path, 5)
	var offs []int64
	Verify(path, func(r *Record) error { offs = append(offs, r.Offset); return nil })
	full, _ := os.ReadFile(path)

	for name, mutate := range map[string]func([]byte) []byte{
		"flipped body bit": func(b []byte) []byte { b[offs[2]+recHeadSize] ^= 1; return b },
		"zeroed record":    func(b []byte) []byte { clear(b[offs[1]:offs[2]]); return b },
		"removed record":   func(b []byte) []byte { return append(b[:offs[2]:offs[2]], b[offs[3]:]...) },
		"swapped records": func(b []byte) []byte {
			r2, r3 := bytes.Clone(b[offs[2]:offs[3]]), bytes.Clone(b[offs[3]:offs[4]])
			return append(append(append(b[:offs[2]:offs[2]], r3...), r2...), b[offs[4]:]...)
		},
		"rewritten and rehashed": func(b []byte) []byte {
			// Tamper with record 3 and recompute its own hash: it no longer
			// matches record 4's prev.
			var r Record
			r, _ = decodeRecord(b[offs[2]:offs[3]])
			r.Body = note(9) // same length as note(2)
			fixed := appendRecord(nil, &r)
			if len(fixed) != int(offs[3]-offs[2]) {
				panic("size changed")
			}
			copy(b[offs[2]:], fixed)
			return b
		},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(p, mutate(bytes.Clone(full)), 0o600)
		if _, _, err := Open(p, opts()); !errors.Is(err, ErrBroken) {
			t.Errorf("%s: Open: %v", name, err)
		}
		if _, err := Verify(p, nil); !errors.Is(err, ErrBroken) {
			t.Errorf("%s: Verify: %v", name, err)
		}
	}
}

// A crash between writing the repair's ERROR entry and cutting the file
// leaves the ERROR entry followed by the rest of the torn tail; the next
// open repairs again instead of reporting a break. The worst case is built
// here: the ERROR entry exactly as long as the damaged record, so the torn
// batch's next record starts right after it. Only because repair defaced
// that record first does it not read as a chain break.
func TestRepairInterrupted(t *testing.T) {
	errNote := "journal: torn tail (simulated)"
	for _, defaced := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "j")
		fill(t, path, 2)
		s, _ := Verify(path, nil)
		st, _ := os.Stat(path)
		var batch []byte
		var offs []int
		prev := s.Head
		for i := uint64(3); i <= 4; i++ {
			body, _ := event.Marshal(event.Config, &event.Text{Note: strings.Repeat("x", len(errNote))})
			r := Record{Index: i, Batch: 3, Time: 1, Type: event.Config, Prev: prev, Body: body}
			offs = append(offs, len(batch))
			batch = appendRecord(batch, &r)
			prev = r.Hash
		}
		batch[10] ^= 0xff // record 3 damaged, record 4 intact
		if defaced {
			copy(batch[offs[1]:], make([]byte, len(recMagic)))
		}
		body, _ := event.Marshal(event.Error, &event.Text{Note: errNote})
		r := Record{Index: 3, Batch: 3, Time: 1, Type: event.Error, Prev: s.Head, Body: body}
		errRec := appendRecord(nil, &r)
		if len(errRec) != offs[1] {
			t.Fatalf("test setup: ERROR entry %d bytes, damaged record %d", len(errRec), offs[1])
		}
		copy(batch, errRec) // written over the damage; the file is not cut
		f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		f.Write(batch)
		f.Close()
		j, rec, err := Open(path, opts())
		if !defaced {
			if !errors.Is(err, ErrBroken) {
				t.Fatalf("undefaced: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("reopen after interrupted repair: %v", err)
		}
		if rec.Torn == nil || rec.Records != 3 || rec.Torn.Offset != st.Size()+int64(len(errRec)) {
			t.Fatalf("%+v %+v", rec, rec.Torn)
		}
		j.Close()
	}
}

func TestRecordsAndTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	const n = 3*sparseEvery + 17
	j, _ := open(t, path)
	for i := 0; i < n; i++ {
		if _, err := j.Submit(event.Config, note(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	if err := j.Records(2*sparseEvery+5, func(r *Record) error { got = append(got, r.Index); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != n-(2*sparseEvery+5)+1 || got[0] != 2*sparseEvery+5 || got[len(got)-1] != n {
		t.Fatalf("records from: %d records, %v..%v", len(got), got[0], got[len(got)-1])
	}
	tail, err := j.Tail(5)
	if err != nil || len(tail) != 5 || tail[0].Index != n-4 || tail[4].Index != n {
		t.Fatalf("tail: %v %d", err, len(tail))
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, &tail[4]); err != nil || !strings.Contains(buf.String(), `"type":"CONFIG"`) ||
		!strings.Contains(buf.String(), fmt.Sprintf(`"note":"entry %d"`, n-1)) {
		t.Fatalf("export: %v %s", err, buf.String())
	}
	j.Close()
}

func TestSignedHead(t *testing.T) {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	id, _ := peer.FromPublicKey(k.Public().(ed25519.PublicKey))
	path := filepath.Join(t.TempDir(), "j")
	fill(t, path, 3)
	j, _ := open(t, path)
	defer j.Close()
	sh, err := SignHead(j.Head(), k)
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := sh.AppendBinary(nil)
	got, err := ParseSignedHead(wire)
	if err != nil || got != sh || got.Verify(id) != nil || got.Index != 3 {
		t.Fatalf("%v %+v", err, got)
	}
	for i := range wire {
		f := bytes.Clone(wire)
		f[i] ^= 0x10
		if g, err := ParseSignedHead(f); err == nil && g.Verify(id) == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
	if err := got.Verify(peer.ID{1}); !errors.Is(err, ErrBadHeadSignature) {
		t.Fatal(err)
	}
}

// After Close nothing is accepted.
func TestClosed(t *testing.T) {
	j, _ := open(t, filepath.Join(t.TempDir(), "j"))
	j.Close()
	if _, err := j.Append(event.Config, note(1)); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := j.Append(event.Config, make([]byte, MaxBody+1)); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

func TestTooLarge(t *testing.T) {
	j, _ := open(t, filepath.Join(t.TempDir(), "j"))
	defer j.Close()
	if _, err := j.Append(event.Config, make([]byte, MaxBody+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
}

// The memory backing keeps the same chain: records read back verified, in
// order, with the heads the appends returned.
func TestOpenMemory(t *testing.T) {
	j, rec, err := OpenMemory(opts())
	if err != nil || !rec.Created || j.Head().Index != 0 {
		t.Fatalf("open: %v %+v", err, rec)
	}
	var ps []Pos
	for i := 0; i < 2*sparseEvery+3; i++ {
		p, err := j.Append(event.Config, note(i))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if _, err := j.SubmitEvent(event.Error, &event.Text{Note: "async"}); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	n := uint64(0)
	err = j.Records(sparseEvery+5, func(r *Record) error {
		if r.Index < uint64(len(ps)) && r.Hash != ps[r.Index-1].Hash {
			return fmt.Errorf("record %d hash differs", r.Index)
		}
		n++
		return nil
	})
	if want := uint64(len(ps)+1) - (sparseEvery + 5) + 1; err != nil || n != want {
		t.Fatalf("records: %v, %d of %d", err, n, want)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}
