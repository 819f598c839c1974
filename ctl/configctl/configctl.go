// Package configctl is POOL's atomic configuration with automatic rollback:
// a new configuration is applied tentatively and restored to the previous one
// by itself unless the operator confirms it in time, so a change that cuts the
// operator off (a wrong address, a port on the management link) heals itself.
//
// The Manager owns the running configuration and the one before it. It does
// not know what a configuration is: an injected Apply function makes one run,
// an injected Journal records every step (the relay's change journal), and an
// injected Clock runs the confirmation timer, so tests drive it on fake time.
//
// # Ordering
//
// Moving to a new configuration is journalled before it counts: if the record
// cannot be written, the previous configuration is restored and Apply fails,
// so the journal never misses a configuration that ran. Moving back to the
// previous configuration (rollback, by the operator or the timer) is the safe
// direction and does not wait for the journal: it happens, then is recorded,
// and a journal failure is reported but does not keep an unconfirmed
// configuration running.
//
// # Persistence
//
// An optional Persist function saves a configuration as the one to start
// with (the daemon writes its configuration file). It is called only when a
// configuration becomes permanent (Confirm, or Apply without a window), so a
// relay that crashes or restarts while a configuration is pending starts on
// the previous one: a restart is a rollback, which is what the operator who
// did not confirm would want.
package configctl

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/internal/clock"
)

// Sentinel errors.
var (
	// ErrPending: a configuration already awaits confirmation; confirm or
	// roll it back first.
	ErrPending = errors.New("configctl: a configuration is pending confirmation")
	// ErrNothingPending: confirm or rollback with no pending configuration.
	ErrNothingPending = errors.New("configctl: no configuration is pending confirmation")
)

// RetryInterval is how long the timer waits before trying an automatic
// rollback again after the apply function failed: long enough not to hammer a
// failing subsystem, short enough that an unconfirmed configuration does not
// outlive its deadline by much.
const RetryInterval = 5 * time.Second

// Step is a journalled step of the state machine.
type Step uint8

// Steps.
const (
	// Applied: a configuration was applied, permanently or pending
	// confirmation (the note says which and until when).
	Applied Step = iota + 1
	// Confirmed: the pending configuration became permanent.
	Confirmed
	// RolledBack: the operator restored the previous configuration.
	RolledBack
	// Expired: the confirmation deadline passed and the previous
	// configuration was restored automatically.
	Expired
	// RollbackFailed: restoring the previous configuration failed; the
	// timer retries an automatic rollback.
	RollbackFailed
)

// String is the step's name as journal notes start with it ("rolled_back").
func (s Step) String() string {
	switch s {
	case Applied:
		return "applied"
	case Confirmed:
		return "confirmed"
	case RolledBack:
		return "rolled_back"
	case Expired:
		return "expired"
	case RollbackFailed:
		return "rollback_failed"
	}
	return fmt.Sprintf("step(%d)", uint8(s))
}

// Journal records steps, durably, before returning nil.
type Journal interface {
	Record(s Step, note string) error
}

// Clock is the time source and the timer of the confirmation deadline: the
// project's clock.Clock with timers.
type Clock interface {
	clock.Clock
	// AfterFunc calls f on its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not started.
	Stop() bool
}

// SystemClock is the real clock, clock.System with time.AfterFunc.
type SystemClock struct{ clock.System }

// AfterFunc is time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Options configure New.
type Options[C any] struct {
	// Initial is the configuration running at start.
	Initial C
	// Apply makes c the running configuration. When it fails, the
	// configuration that ran before the call must still be running (or
	// Apply must say otherwise in its error): the Manager keeps believing so.
	Apply func(c C) error
	// Persist, if set, saves c as the configuration to start with. It is
	// called when c becomes permanent, and again with the previous
	// configuration to undo that when the step cannot be journalled.
	Persist func(c C) error
	// Journal records every step. Required.
	Journal Journal
	// Clock runs the confirmation timer. Required.
	Clock Clock
	// Log receives automatic rollbacks and their failures.
	Log zerolog.Logger
}

// Pending describes a configuration awaiting confirmation.
type Pending struct {
	Applied, Deadline time.Time
	// Note is what Apply was told about the configuration.
	Note string
}

// Manager is the state machine. Its methods are safe for concurrent use;
// they run the apply function and the journal under the Manager's lock, so
// steps never interleave.
type Manager[C any] struct {
	// Immutable.
	apply   func(C) error
	persist func(C) error
	journal Journal
	clock   Clock
	log     zerolog.Logger

	mu       sync.Mutex
	current  C
	previous C // meaningful while pending
	pending  *Pending
	timer    Timer
	gen      uint64 // bumped on every transition; a timer of an older one does nothing
}

// New returns a Manager running o.Initial with nothing pending.
func New[C any](o Options[C]) (*Manager[C], error) {
	if o.Apply == nil || o.Journal == nil || o.Clock == nil {
		return nil, errors.New("configctl: Options.Apply, Journal and Clock are required")
	}
	persist := o.Persist
	if persist == nil {
		persist = func(C) error { return nil }
	}
	return &Manager[C]{apply: o.Apply, persist: persist, journal: o.Journal, clock: o.Clock, log: o.Log, current: o.Initial}, nil
}

// Current returns the running configuration.
func (m *Manager[C]) Current() C {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current
}

// Pending returns the pending configuration's state, or false.
func (m *Manager[C]) Pending() (Pending, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending == nil {
		return Pending{}, false
	}
	return *m.pending, true
}

// Apply runs c. With confirmWithin > 0 it is tentative: unless Confirm is
// called within confirmWithin, the previous configuration is restored.
// With 0 it is permanent at once. note describes c in the journal (a digest
// of the file, who applied it).
func (m *Manager[C]) Apply(c C, confirmWithin time.Duration, note string) error {
	if confirmWithin < 0 {
		return fmt.Errorf("configctl: negative confirmation window %v", confirmWithin)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending != nil {
		return ErrPending
	}
	if err := m.apply(c); err != nil {
		return fmt.Errorf("configctl: applying: %w", err)
	}
	now := m.clock.Now()
	text := note + "; permanent"
	if confirmWithin > 0 {
		text = fmt.Sprintf("%s; rolled back at %s unless confirmed", note, now.Add(confirmWithin).UTC().Format(time.RFC3339))
	}
	// undo puts back what ran (and was saved) before the call.
	undo := func(why string, err error, saved bool) error {
		var perr error
		if saved {
			perr = m.persist(m.current)
		}
		if rerr := errors.Join(m.apply(m.current), perr); rerr != nil {
			return fmt.Errorf("configctl: %s failed (%v) and restoring the previous configuration failed too: %w", why, err, rerr)
		}
		return fmt.Errorf("configctl: %s failed, previous configuration restored: %w", why, err)
	}
	if confirmWithin == 0 {
		if err := m.persist(c); err != nil {
			return undo("saving the configuration", err, false)
		}
	}
	if err := m.journal.Record(Applied, text); err != nil {
		// Unrecorded, so it must not stay.
		return undo("journalling the change", err, confirmWithin == 0)
	}
	m.gen++
	if confirmWithin == 0 {
		m.current = c
		return nil
	}
	m.previous, m.current = m.current, c
	m.pending = &Pending{Applied: now, Deadline: now.Add(confirmWithin), Note: note}
	m.armLocked(confirmWithin)
	return nil
}

// armLocked starts the timer of the current generation.
func (m *Manager[C]) armLocked(d time.Duration) {
	gen := m.gen
	m.timer = m.clock.AfterFunc(d, func() { m.expire(gen) })
}

// Confirm makes the pending configuration permanent. If the record cannot be
// written the configuration stays pending (and the timer running).
func (m *Manager[C]) Confirm(note string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending == nil {
		return ErrNothingPending
	}
	if err := m.persist(m.current); err != nil {
		return fmt.Errorf("configctl: saving the configuration failed, still pending: %w", err)
	}
	if err := m.journal.Record(Confirmed, note); err != nil {
		// The saved file must not outlive an unrecorded confirmation.
		return errors.Join(fmt.Errorf("configctl: journalling the confirmation failed, still pending: %w", err), m.persist(m.previous))
	}
	m.settleLocked()
	return nil
}

// Rollback restores the configuration that ran before the pending one.
func (m *Manager[C]) Rollback(note string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending == nil {
		return ErrNothingPending
	}
	return m.rollbackLocked(RolledBack, note)
}

// expire is the timer's callback.
func (m *Manager[C]) expire(gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen || m.pending == nil {
		return // confirmed, rolled back or re-armed meanwhile
	}
	note := fmt.Sprintf("not confirmed by %s", m.pending.Deadline.UTC().Format(time.RFC3339))
	if err := m.rollbackLocked(Expired, note); err != nil {
		m.log.Error().Err(err).Dur("retry_in", RetryInterval).Msg("automatic configuration rollback failed")
		return
	}
	m.log.Warn().Str("note", note).Msg("configuration rolled back automatically")
}

// rollbackLocked applies the previous configuration and records step. If
// applying fails the configuration stays pending and the timer is re-armed
// to try again.
func (m *Manager[C]) rollbackLocked(step Step, note string) error {
	if err := m.apply(m.previous); err != nil {
		jerr := m.journal.Record(RollbackFailed, fmt.Sprintf("%s: %v", note, err))
		m.gen++
		m.stopLocked()
		m.armLocked(RetryInterval)
		return errors.Join(fmt.Errorf("configctl: restoring the previous configuration: %w", err), jerr)
	}
	m.current = m.previous
	m.settleLocked()
	if err := m.journal.Record(step, note); err != nil {
		return fmt.Errorf("configctl: previous configuration restored, but journalling it failed: %w", err)
	}
	return nil
}

// settleLocked leaves the pending state.
func (m *Manager[C]) settleLocked() {
	m.gen++
	m.stopLocked()
	var zero C
	m.previous = zero
	m.pending = nil
}

func (m *Manager[C]) stopLocked() {
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
}

// Close stops the timer. A configuration still pending stays running until
// the process ends; it was never persisted, so the next start runs the
// previous one.
func (m *Manager[C]) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	m.stopLocked()
}
