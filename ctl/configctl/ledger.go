package configctl

import (
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/journal"
)

// LedgerJournal records steps in the relay's change journal: CONFIG entries
// for applying and confirming, ROLLBACK entries for a rollback by the operator
// or by the timer (and a failed one), each note starting with the step
// ("expired: not confirmed by ..."). Each record is durable (Append) before
// it returns, since the operator acts on the answer.
type LedgerJournal struct {
	J *journal.Journal
}

// Record implements Journal.
func (l LedgerJournal) Record(s Step, note string) error {
	text := s.String() + ": " + note
	if len(text) > event.MaxText {
		text = text[:event.MaxText]
	}
	typ := event.Config
	switch s {
	case RolledBack, Expired, RollbackFailed:
		typ = event.Rollback
	}
	_, err := l.J.AppendEvent(typ, &event.Text{Note: text})
	return err
}
