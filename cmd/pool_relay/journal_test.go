package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/journal"
)

// writeJournal appends n CONFIG entries to a fresh journal and returns its path.
func writeJournal(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.pjr")
	j, _, err := journal.Open(path, journal.Options{Clock: clock.NewFake(time.Unix(1_800_000_000, 0)), Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := j.AppendEvent(event.Config, &event.Text{Note: "apply " + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestJournalCommands(t *testing.T) {
	path := writeJournal(t, 5)

	code, out, errOut := runCLI(t, "journal", "verify", "--file", path)
	if code != 0 || !strings.Contains(out, ": 5 records, head ") || !strings.HasSuffix(out, "chain ok\n") {
		t.Fatalf("verify: code %d out %q err %q", code, out, errOut)
	}

	code, out, _ = runCLI(t, "journal", "export", "--file", path)
	if code != 0 {
		t.Fatalf("export: code %d", code)
	}
	lines := jsonLines(t, out)
	if len(lines) != 5 || lines[0]["index"] != float64(1) || lines[4]["index"] != float64(5) {
		t.Fatalf("export lines: %v", lines)
	}
	// Each exported record names the hash the next one chains from.
	for i := 1; i < len(lines); i++ {
		if lines[i]["prev"] != lines[i-1]["hash"] {
			t.Fatalf("record %d prev %v != previous hash %v", i+1, lines[i]["prev"], lines[i-1]["hash"])
		}
	}

	code, out, _ = runCLI(t, "journal", "tail", "--file", path, "-n", "2")
	if tl := jsonLines(t, out); code != 0 || len(tl) != 2 || tl[0]["index"] != float64(4) {
		t.Fatalf("tail: code %d lines %v", code, tl)
	}

	// export FILE writes what export prints, to the file; verify --json
	// gives a summary object.
	code, stdout, _ := runCLI(t, "journal", "export", "--file", path)
	dst := filepath.Join(t.TempDir(), "journal.jsonl")
	if code, out, errOut := runCLI(t, "journal", "export", dst, "--file", path); code != 0 || out != "" ||
		!strings.HasPrefix(errOut, "wrote 5 records to "+dst+", head ") {
		t.Fatalf("export FILE: code %d out %q err %q", code, out, errOut)
	}
	if b, err := os.ReadFile(dst); err != nil || string(b) != stdout || code != 0 {
		t.Fatalf("export FILE wrote %d bytes (%v), export printed %d", len(b), err, len(stdout))
	}
	code, out, _ = runCLI(t, "journal", "verify", "--json", "--file", path)
	var sum struct {
		Records uint64 `json:"records"`
		Head    string `json:"head"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || code != 0 || sum.Records != 5 || len(sum.Head) != 64 {
		t.Fatalf("verify --json: code %d %q %v", code, out, err)
	}
}

func TestJournalVerifyReportsDamage(t *testing.T) {
	// A torn tail: half a record appended after the last good one.
	torn := writeJournal(t, 3)
	f, err := os.OpenFile(torn, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("pjr1\x00\x00"))
	f.Close()
	code, _, errOut := runCLI(t, "journal", "verify", "--file", torn)
	if code != exitFailure || !strings.Contains(errOut, "torn tail") {
		t.Fatalf("torn: code %d err %q", code, errOut)
	}

	// A flipped byte inside the first record's body breaks the chain.
	broken := writeJournal(t, 3)
	data, err := os.ReadFile(broken)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), "apply a")
	data[i] ^= 0x20
	if err := os.WriteFile(broken, data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "journal", "verify", "--file", broken)
	if code != exitFailure || strings.Contains(out, "chain ok") || !strings.Contains(errOut, "journal") {
		t.Fatalf("broken: code %d out %q err %q", code, out, errOut)
	}
}

func TestJournalUsage(t *testing.T) {
	for _, args := range [][]string{
		{"journal"},
		{"journal", "frob", "--file", "x"},
		{"journal", "tail", "--file", "x", "-n", "0"},
		{"journal", "verify", "extra"},
		{"journal", "export", "a", "b"},
	} {
		if code, _, _ := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: code %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, errOut := runCLI(t, "journal", "verify", "--file", filepath.Join(t.TempDir(), "missing")); code != exitFailure {
		t.Errorf("missing file: code %d err %q", code, errOut)
	}
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}
