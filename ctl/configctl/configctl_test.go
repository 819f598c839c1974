package configctl

import (
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/journal"
)

// fakeClock is a manual clock whose timers fire, synchronously, when
// Advance passes their time.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// Advance moves time forward and runs the timers that came due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.stopped = true
			due = append(due, t)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.f()
	}
}

// memJournal records steps in memory and can be made to fail.
type memJournal struct {
	mu    sync.Mutex
	steps []string
	fail  error
}

func (j *memJournal) Record(s Step, note string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
	j.steps = append(j.steps, s.String()+": "+note)
	return nil
}

func (j *memJournal) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.steps, "\n")
}

// system is what the apply function configures: the "running" config and
// every config ever applied, in order.
type system struct {
	running string
	history []string
	fail    map[string]error
	// saved is the configuration the next start would run; saveFail makes
	// saving one fail.
	saved    string
	saveFail map[string]error
}

func (s *system) persist(c string) error {
	if err := s.saveFail[c]; err != nil {
		return err
	}
	s.saved = c
	return nil
}

func (s *system) apply(c string) error {
	if err := s.fail[c]; err != nil {
		return err
	}
	s.running = c
	s.history = append(s.history, c)
	return nil
}

func setup(t *testing.T) (*Manager[string], *system, *memJournal, *fakeClock) {
	t.Helper()
	sys := &system{running: "v1", fail: map[string]error{}, saved: "v1", saveFail: map[string]error{}}
	j := &memJournal{}
	clk := &fakeClock{now: time.Date(2026, 11, 21, 4, 0, 0, 0, time.UTC)}
	m, err := New(Options[string]{Initial: "v1", Apply: sys.apply, Persist: sys.persist, Journal: j, Clock: clk, Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return m, sys, j, clk
}

func TestConfirmInTimeKeepsConfig(t *testing.T) {
	m, sys, j, clk := setup(t)
	if err := m.Apply("v2", time.Minute, "v2 by uid 0"); err != nil {
		t.Fatal(err)
	}
	p, ok := m.Pending()
	if !ok || !p.Deadline.Equal(clk.Now().Add(time.Minute)) || sys.running != "v2" || m.Current() != "v2" {
		t.Fatalf("after apply: pending %+v %v, running %s", p, ok, sys.running)
	}
	if err := m.Apply("v3", time.Minute, "v3"); !errors.Is(err, ErrPending) {
		t.Fatalf("second apply while pending: %v", err)
	}
	clk.Advance(59 * time.Second)
	if err := m.Confirm("by uid 0"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour) // the old deadline passes: nothing happens
	if sys.running != "v2" || m.Current() != "v2" {
		t.Fatalf("confirmed config replaced: running %s", sys.running)
	}
	if _, ok := m.Pending(); ok {
		t.Fatal("still pending after confirm")
	}
	want := "applied: v2 by uid 0; rolled back at 2026-11-21T04:01:00Z unless confirmed\nconfirmed: by uid 0"
	if j.String() != want {
		t.Fatalf("journal:\n%s\nwant:\n%s", j, want)
	}
	if err := m.Confirm("again"); !errors.Is(err, ErrNothingPending) {
		t.Fatalf("confirm with nothing pending: %v", err)
	}
	if err := m.Rollback("late"); !errors.Is(err, ErrNothingPending) {
		t.Fatalf("rollback with nothing pending: %v", err)
	}
}

func TestTimerRollsBack(t *testing.T) {
	m, sys, j, clk := setup(t)
	if err := m.Apply("v2", 60*time.Second, "v2"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * time.Second)
	if sys.running != "v2" {
		t.Fatal("rolled back early")
	}
	clk.Advance(time.Second)
	if sys.running != "v1" || m.Current() != "v1" {
		t.Fatalf("not rolled back at the deadline: running %s", sys.running)
	}
	if _, ok := m.Pending(); ok {
		t.Fatal("still pending after expiry")
	}
	if !strings.HasSuffix(j.String(), "\nexpired: not confirmed by 2026-11-21T04:01:00Z") {
		t.Fatalf("journal:\n%s", j)
	}
	if err := m.Confirm("too late"); !errors.Is(err, ErrNothingPending) {
		t.Fatalf("confirm after expiry: %v", err)
	}
	// A new apply works after the rollback, with its own timer.
	if err := m.Apply("v3", 10*time.Second, "v3"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	if got := strings.Join(sys.history, ","); got != "v2,v1,v3,v1" {
		t.Fatalf("applied %s", got)
	}
}

func TestOperatorRollback(t *testing.T) {
	m, sys, j, clk := setup(t)
	m.Apply("v2", time.Minute, "v2")
	if err := m.Rollback("by uid 0"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute) // the stopped timer must not roll back again
	if got := strings.Join(sys.history, ","); got != "v2,v1" {
		t.Fatalf("applied %s", got)
	}
	if !strings.HasSuffix(j.String(), "\nrolled_back: by uid 0") || strings.Contains(j.String(), "expired") {
		t.Fatalf("journal:\n%s", j)
	}
}

func TestPermanentApply(t *testing.T) {
	m, sys, j, clk := setup(t)
	if err := m.Apply("v2", 0, "v2"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if _, ok := m.Pending(); ok || sys.running != "v2" {
		t.Fatal("permanent apply is pending or was undone")
	}
	if j.String() != "applied: v2; permanent" {
		t.Fatalf("journal: %s", j)
	}
	if err := m.Apply("v3", -time.Second, "v3"); err == nil {
		t.Fatal("negative window accepted")
	}
}

// A configuration that cannot be journalled does not stay.
func TestUnjournalledApplyUndone(t *testing.T) {
	m, sys, j, _ := setup(t)
	j.fail = errors.New("disk full")
	err := m.Apply("v2", time.Minute, "v2")
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("apply with a failing journal: %v", err)
	}
	if sys.running != "v1" || m.Current() != "v1" {
		t.Fatalf("running %s after an unjournalled apply", sys.running)
	}
	if _, ok := m.Pending(); ok {
		t.Fatal("pending after failed apply")
	}
}

// An apply that fails leaves the running configuration and no record.
func TestFailedApply(t *testing.T) {
	m, sys, j, _ := setup(t)
	sys.fail["bad"] = errors.New("port p9 does not exist")
	if err := m.Apply("bad", time.Minute, "bad"); err == nil {
		t.Fatal("failed apply returned nil")
	}
	if sys.running != "v1" || j.String() != "" {
		t.Fatalf("running %s, journal %q", sys.running, j)
	}
}

// Confirm that cannot be recorded keeps the config pending, and the timer
// still protects the operator.
func TestUnjournalledConfirmStaysPending(t *testing.T) {
	m, sys, j, clk := setup(t)
	m.Apply("v2", time.Minute, "v2")
	j.fail = errors.New("disk full")
	if err := m.Confirm("x"); err == nil {
		t.Fatal("confirm without a record succeeded")
	}
	j.fail = nil
	clk.Advance(time.Minute)
	if sys.running != "v1" {
		t.Fatalf("running %s, want the rollback", sys.running)
	}
}

// A failed automatic rollback is journalled and retried.
func TestRollbackRetried(t *testing.T) {
	m, sys, j, clk := setup(t)
	m.Apply("v2", time.Minute, "v2")
	sys.fail["v1"] = errors.New("NIC busy")
	clk.Advance(time.Minute)
	if sys.running != "v2" {
		t.Fatal("rollback happened despite the failure")
	}
	if _, ok := m.Pending(); !ok {
		t.Fatal("no longer pending after a failed rollback")
	}
	delete(sys.fail, "v1")
	clk.Advance(RetryInterval - time.Millisecond)
	if sys.running != "v2" {
		t.Fatal("retried early")
	}
	clk.Advance(time.Millisecond)
	if sys.running != "v1" {
		t.Fatalf("not retried: running %s", sys.running)
	}
	want := "rollback_failed: not confirmed by 2026-11-21T04:01:00Z: NIC busy\nexpired: not confirmed by 2026-11-21T04:01:00Z"
	if !strings.HasSuffix(j.String(), want) {
		t.Fatalf("journal:\n%s", j)
	}
}

// Rollback and confirm racing the timer leave exactly one outcome.
func TestConcurrentConfirmAndExpiry(t *testing.T) {
	for i := range 200 {
		m, sys, j, clk := setup(t)
		m.Apply("v2", time.Second, "v2")
		var wg sync.WaitGroup
		wg.Add(2)
		var cerr error
		go func() { defer wg.Done(); cerr = m.Confirm("race") }()
		go func() { defer wg.Done(); clk.Advance(time.Second) }()
		wg.Wait()
		steps := j.String()
		switch {
		case cerr == nil && sys.running == "v2" && strings.HasSuffix(steps, "confirmed: race"):
		case errors.Is(cerr, ErrNothingPending) && sys.running == "v1" && strings.Contains(steps, "expired"):
		default:
			t.Fatalf("run %d: confirm %v, running %s, journal:\n%s", i, cerr, sys.running, steps)
		}
	}
}

// LedgerJournal writes durable CONFIG and ROLLBACK entries to the real
// change journal.
func TestLedgerJournal(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	path := filepath.Join(t.TempDir(), "journal.pjr")
	jr, _, err := journal.Open(path, journal.Options{Clock: clk, Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	sys := &system{running: "v1"}
	fc := &fakeClock{now: clk.Now()}
	m, err := New(Options[string]{Initial: "v1", Apply: sys.apply, Journal: LedgerJournal{J: jr}, Clock: fc, Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	m.Apply("v2", time.Minute, "sha256=ab")
	fc.Advance(time.Minute)
	if err := jr.Close(); err != nil {
		t.Fatal(err)
	}
	var notes []string
	var types []event.Type
	if _, err := journal.Verify(path, func(r *journal.Record) error {
		b, err := r.Event()
		if err != nil {
			return err
		}
		types = append(types, r.Type)
		notes = append(notes, b.(*event.Text).Note)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(notes) != 2 || !strings.HasPrefix(notes[0], "applied: sha256=ab; rolled back at") || !strings.HasPrefix(notes[1], "expired: ") {
		t.Fatalf("journal notes %q", notes)
	}
	if types[0] != event.Config || types[1] != event.Rollback {
		t.Fatalf("journal entry types %v, want CONFIG then ROLLBACK", types)
	}
}

// Only a permanent configuration is saved, so a restart while one is
// pending starts on the previous one.
func TestPersistOnlyWhenPermanent(t *testing.T) {
	m, sys, j, clk := setup(t)
	m.Apply("v2", time.Minute, "v2")
	if sys.saved != "v1" {
		t.Fatalf("pending configuration saved: %s", sys.saved)
	}
	m.Confirm("ok")
	if sys.saved != "v2" {
		t.Fatalf("confirmed configuration not saved: %s", sys.saved)
	}
	m.Apply("v3", time.Minute, "v3")
	clk.Advance(time.Minute)
	if sys.saved != "v2" || sys.running != "v2" {
		t.Fatalf("after expiry: saved %s running %s", sys.saved, sys.running)
	}
	m.Apply("v4", 0, "v4")
	if sys.saved != "v4" {
		t.Fatalf("permanent apply not saved: %s", sys.saved)
	}

	// Saving fails: the confirmation does not happen and the timer still
	// protects the operator.
	m.Apply("v5", time.Minute, "v5")
	sys.saveFail["v5"] = errors.New("read-only file system")
	if err := m.Confirm("ok"); err == nil {
		t.Fatal("confirm without saving succeeded")
	}
	if _, ok := m.Pending(); !ok {
		t.Fatal("not pending after a failed save")
	}
	clk.Advance(time.Minute)
	if sys.running != "v4" || sys.saved != "v4" {
		t.Fatalf("after expiry: saved %s running %s", sys.saved, sys.running)
	}

	// A permanent apply that cannot be saved is undone.
	sys.saveFail["v6"] = errors.New("read-only file system")
	if err := m.Apply("v6", 0, "v6"); err == nil || sys.running != "v4" || m.Current() != "v4" {
		t.Fatalf("unsaved permanent apply: %v, running %s", err, sys.running)
	}

	// A confirmation that cannot be journalled unsaves the file.
	m.Apply("v7", time.Minute, "v7")
	j.fail = errors.New("disk full")
	if err := m.Confirm("ok"); err == nil || sys.saved != "v4" {
		t.Fatalf("unjournalled confirm: %v, saved %s", err, sys.saved)
	}
	// So does a permanent apply.
	j.fail = nil
	m.Rollback("x")
	j.fail = errors.New("disk full")
	if err := m.Apply("v8", 0, "v8"); err == nil || sys.saved != "v4" || sys.running != "v4" {
		t.Fatalf("unjournalled permanent apply: %v, saved %s running %s", err, sys.saved, sys.running)
	}
}
