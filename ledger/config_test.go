package ledger

import (
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/poolrelay/poolrelay/internal/confcheck"
)

// The [ledger] section handed to configs/default.toml (testdata) holds
// every key, each at its default.
func TestDefaultSection(t *testing.T) {
	data, err := os.ReadFile("testdata/default_section.toml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Ledger Config `toml:"ledger"`
	}
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) != 0 {
		t.Fatalf("unknown keys %v", u)
	}
	if f.Ledger != DefaultConfig() {
		t.Fatalf("section differs from DefaultConfig:\n%+v\n%+v", f.Ledger, DefaultConfig())
	}
	keys := md.Keys()
	if n := reflect.TypeOf(Config{}).NumField(); len(keys) != n+1 { // +1: the table itself
		t.Fatalf("section has %d keys, Config %d fields", len(keys)-1, n)
	}
	errs := confcheck.New("ledger")
	f.Ledger.Validate(errs)
	if err := errs.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		key    string
		mutate func(*Config)
	}{
		{"journal_file", func(c *Config) { c.JournalFile = "relative/j" }},
		{"store_file", func(c *Config) { c.JournalFile, c.StoreFile = "/x", "/x" }},
		{"payment_threshold", func(c *Config) { c.PaymentThreshold = 0 }},
		{"disconnect_threshold", func(c *Config) { c.DisconnectThreshold = c.PaymentThreshold }},
		{"early_settlement_percent", func(c *Config) { c.EarlySettlementPercent = 101 }},
		{"min_payment_threshold", func(c *Config) { c.MinPaymentThreshold = c.PaymentThreshold + 1 }},
		{"initial_credit", func(c *Config) { c.InitialCredit = 0 }},
		{"initial_credit", func(c *Config) { c.InitialCredit = 1000 }},
		{"disconnect_grace", func(c *Config) { c.DisconnectGrace = -time.Second }},
		{"cheque_retry_max", func(c *Config) { c.ChequeRetryMax = c.ChequeRetryMin / 2 }},
		{"checkpoint_interval", func(c *Config) { c.CheckpointInterval = 0 }},
		{"score_half_volume", func(c *Config) { c.ScoreHalfVolume = 0 }},
		{"class_tick", func(c *Config) { c.ClassTick = 0 }},
		{"class_hysteresis_percent", func(c *Config) { c.ClassHysteresisPercent = 50 }},
		{"score_prior_bytes", func(c *Config) { c.ScorePriorBytes = 0 }},
		{"newcomer_score", func(c *Config) { c.NewcomerScore = 0 }},
		{"mismatch_tolerance_percent", func(c *Config) { c.MismatchTolerancePercent = -1 }},
	} {
		c := DefaultConfig()
		tc.mutate(&c)
		errs := confcheck.New("ledger")
		c.Validate(errs)
		l := errs.List()
		if len(l) == 0 || l[0].Key != "ledger."+tc.key {
			t.Errorf("%s: %v", tc.key, errs.Err())
		}
	}
}
