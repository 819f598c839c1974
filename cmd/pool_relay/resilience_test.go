package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/ctl/api"
)

// A degraded journal shows in status, with why, since when and what it
// means for the operator.
func TestStatusShowsDegradedJournal(t *testing.T) {
	since := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printStatus(&b, api.Status{Journal: api.JournalHead{Records: 9, Head: "ab", State: "degraded",
		Error: "journal: write at 7936: no space left on device", Since: &since, NotWritten: 4}})
	out := b.String()
	for _, want := range []string{"Journal state:", "DEGRADED since 2026-12-07T03:00:00Z", "no space left on device", "4 records not written"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printStatus(&b, api.Status{Journal: api.JournalHead{Records: 9, Head: "ab", State: "ok"}})
	if strings.Contains(b.String(), "Journal state") {
		t.Errorf("a healthy journal shows a state line:\n%s", b.String())
	}
}

// A kept relay peer whose session is being enrolled again shows as
// reconnecting, not down.
func TestPeersShowReconnecting(t *testing.T) {
	var b bytes.Buffer
	printPeers(&b, []api.Peer{{ID: strings.Repeat("ab", 32), Address: "192.0.2.7:9254", Reconnecting: true, Class: "balanced"}})
	if !strings.Contains(b.String(), "reconnecting") {
		t.Fatalf("peers:\n%s", b.String())
	}
}
