package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/internal/confcheck"
)

func TestJSONByDefaultOnNonTerminal(t *testing.T) {
	var buf bytes.Buffer
	log := For(New(DefaultConfig(), &buf), "ledger")
	log.Info().Int("n", 3).Msg("hello")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %q: %v", buf.String(), err)
	}
	if m["sub"] != "ledger" || m["message"] != "hello" || m["n"] != float64(3) {
		t.Fatalf("unexpected fields: %v", m)
	}
}

func TestConsoleFormatAndLevel(t *testing.T) {
	var buf bytes.Buffer
	log := New(Config{Level: "warn", Format: "console"}, &buf)
	log.Info().Msg("hidden")
	log.Warn().Msg("shown")
	out := buf.String()
	if strings.Contains(out, "hidden") || !strings.Contains(out, "shown") || strings.HasPrefix(out, "{") {
		t.Fatalf("unexpected console output %q", out)
	}
}

func TestValidate(t *testing.T) {
	errs := confcheck.New("log")
	Config{Level: "loud", Format: "xml"}.Validate(errs)
	if got := len(errs.List()); got != 2 {
		t.Fatalf("want 2 errors, got %d: %v", got, errs.Err())
	}
	if errs.List()[0].Key != "log.level" {
		t.Fatalf("key %q", errs.List()[0].Key)
	}
}
