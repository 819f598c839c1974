package journal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/internal/syncbuf"
	"github.com/poolrelay/poolrelay/internal/tmpfs"
	"github.com/poolrelay/poolrelay/ledger/event"

	"github.com/rs/zerolog"
)

// appendUntilFull appends records until one fails, and returns how many
// succeeded and the failure.
func appendUntilFull(t *testing.T, j *Journal) (int, error) {
	t.Helper()
	for i := range 100000 {
		if _, err := j.Append(event.Config, note(i)); err != nil {
			return i, err
		}
	}
	t.Fatal("the disk never filled")
	return 0, nil
}

// TestFullDiskDegradesAndRecovers: on a small tmpfs filled up, a write fails
// with ENOSPC. The journal cuts the partial write off, refuses records (the
// appenders get ErrDegraded, so nothing is acknowledged on them), says so in
// Health and logs it once; a stop meanwhile leaves no torn tail. When space
// returns it writes again by itself, starting with a gap record.
func TestFullDiskDegradesAndRecovers(t *testing.T) {
	dir := tmpfs.Mount(t, 64<<10)
	path := filepath.Join(dir, "journal")
	var logbuf syncbuf.Buffer
	j, _, err := Open(path, Options{Clock: clock.System{}, Log: zerolog.New(&logbuf)})
	if err != nil {
		t.Fatal(err)
	}
	filler, err := tmpfs.Fill(dir, "filler", 8<<10)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := appendUntilFull(t, j)
	if !errors.Is(err, ErrDegraded) || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("after %d records: %v, want ErrDegraded for ENOSPC", ok, err)
	}
	head := j.Head()
	if head.Index != uint64(ok) {
		t.Fatalf("head at %d after %d durable appends", head.Index, ok)
	}
	// Refused at once while degraded, Submit and Wait too.
	for range 5 {
		if _, err := j.Append(event.Config, note(0)); !errors.Is(err, ErrDegraded) {
			t.Fatalf("append while degraded: %v", err)
		}
	}
	if _, err := j.Submit(event.Config, note(0)); !errors.Is(err, ErrDegraded) {
		t.Fatalf("submit while degraded: %v", err)
	}
	h := j.Health()
	if !h.Degraded || h.Degradations != 1 || h.Refused != 6 || h.Lost != 1 || !strings.Contains(h.Reason, "no space left") {
		t.Fatalf("health %+v", h)
	}
	// The file ends on the last durable record: verify finds no torn tail.
	sum, err := Verify(path, nil)
	if err != nil || sum.Torn != nil || sum.Records != uint64(ok) {
		t.Fatalf("verify while degraded: %+v %v", sum, err)
	}
	// Still full after a retry: still degraded, and logged once only.
	time.Sleep(RetryInterval + 200*time.Millisecond)
	if !j.Health().Degraded {
		t.Fatal("recovered with the disk still full")
	}
	if n := strings.Count(logbuf.String(), "cannot write"); n != 1 {
		t.Fatalf("%d log lines about the failure, want 1:\n%s", n, logbuf.String())
	}

	// Space returns: appends resume by themselves, after a gap record.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * RetryInterval)
	for j.Health().Degraded {
		if time.Now().After(deadline) {
			t.Fatal("still degraded after space returned")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p, err := j.Append(event.Config, note(1))
	if err != nil || p.Index != uint64(ok)+2 {
		t.Fatalf("append after recovery: %+v %v, want index %d (after the gap record)", p, err, ok+2)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	var gap string
	sum, err = Verify(path, func(r *Record) error {
		if r.Index == uint64(ok)+1 {
			b, err := event.Unmarshal(r.Type, r.Body)
			txt, ok := b.(*event.Text)
			if r.Type != event.Error || err != nil || !ok {
				t.Errorf("record %d is %v, want the gap's ERROR", r.Index, r.Type)
				return nil
			}
			gap = txt.Note
		}
		return nil
	})
	if err != nil || sum.Torn != nil || sum.Records != uint64(ok)+2 {
		t.Fatalf("verify after recovery: %+v %v", sum, err)
	}
	if !strings.Contains(gap, "gap") || !strings.Contains(gap, "7 records not written (1 taken back unacknowledged, 6 refused)") {
		t.Fatalf("gap record %q", gap)
	}
	if !strings.Contains(logbuf.String(), "writing again") {
		t.Fatalf("recovery not logged:\n%s", logbuf.String())
	}
}

// TestStopWhileFullLeavesNoTornTail: a clean stop of a journal that cannot
// write ends the file on a whole record, and Open finds it intact.
func TestStopWhileFullLeavesNoTornTail(t *testing.T) {
	dir := tmpfs.Mount(t, 64<<10)
	path := filepath.Join(dir, "journal")
	j, _, err := Open(path, Options{Clock: clock.System{}, Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpfs.Fill(dir, "filler", 8<<10); err != nil {
		t.Fatal(err)
	}
	// Submitted records and a waiter on them: taken back with the failure.
	ok, _ := appendUntilFull(t, j)
	if err := j.Close(); !errors.Is(err, ErrDegraded) {
		t.Fatalf("close while full: %v, want ErrDegraded", err)
	}
	j2, rec, err := Open(path, Options{Clock: clock.System{}, Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if rec.Torn != nil || rec.Records != uint64(ok) {
		t.Fatalf("reopen: %+v, want %d records and no torn tail", rec, ok)
	}
}

// TestSubmittedRecordsTakenBack: records submitted (not waited for) when a
// write fails are taken back, and Wait on them says so, even after the
// journal recovered and reused their indexes.
func TestSubmittedRecordsTakenBack(t *testing.T) {
	dir := tmpfs.Mount(t, 64<<10)
	path := filepath.Join(dir, "journal")
	j, _, err := Open(path, Options{Clock: clock.System{}, Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	filler, err := tmpfs.Fill(dir, "filler", 4<<10)
	if err != nil {
		t.Fatal(err)
	}
	var ps []Pos
	for i := range 1000 {
		p, err := j.Submit(event.Config, note(i))
		if err != nil {
			break
		}
		ps = append(ps, p)
	}
	if err := j.Sync(); err != nil && !errors.Is(err, ErrDegraded) {
		t.Fatal(err)
	}
	// Wait until the background flush failed.
	for !j.Health().Degraded {
		time.Sleep(5 * time.Millisecond)
	}
	os.Remove(filler)
	for j.Health().Degraded {
		time.Sleep(20 * time.Millisecond)
	}
	for range 100 {
		if _, err := j.Append(event.Config, note(0)); err != nil {
			t.Fatal(err)
		}
	}
	last := ps[len(ps)-1]
	if err := j.Wait(last); !errors.Is(err, ErrDegraded) {
		t.Fatalf("wait on a record taken back: %v, want ErrDegraded", err)
	}
	if err := j.Wait(ps[0]); err != nil && !errors.Is(err, ErrDegraded) {
		t.Fatalf("wait on the first record: %v", err)
	}
}
