package sched

import (
	"os"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/poolrelay/poolrelay/internal/confcheck"
)

// The documented [sched] section (testdata/sched.toml, the text for
// configs/default.toml) sets every key, and sets it to its default.
func TestDocumentedSectionIsDefault(t *testing.T) {
	text, err := os.ReadFile("testdata/sched.toml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Sched Config `toml:"sched"`
	}
	md, err := toml.Decode(string(text), &f)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) != 0 {
		t.Errorf("undecoded keys %v", u)
	}
	if f.Sched != DefaultConfig() {
		t.Errorf("documented section %+v\ndiffers from DefaultConfig %+v", f.Sched, DefaultConfig())
	}
	errs := confcheck.New("sched")
	f.Sched.Validate(errs)
	if err := errs.Err(); err != nil {
		t.Fatal(err)
	}
	// Every key of the struct appears in the text: a zero config decoded
	// from it equals the defaults only if no key was left out.
	var zero struct {
		Sched Config `toml:"sched"`
	}
	if _, err := toml.Decode(string(text), &zero); err != nil || zero.Sched != DefaultConfig() {
		t.Errorf("the documented section leaves keys out: %+v", zero.Sched)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name      string
		edit      func(*Config)
		key       string
		shouldErr bool
	}{
		{name: "defaults", edit: func(*Config) {}},
		{name: "floor off", edit: func(c *Config) { c.FloorPercent = 0 }},
		{name: "floor negative", edit: func(c *Config) { c.FloorPercent = -1 }, key: "sched.floor_percent", shouldErr: true},
		{name: "floor too big", edit: func(c *Config) { c.FloorPercent = 51; c.Priority.RatePercent = 10 }, key: "sched.floor_percent", shouldErr: true},
		{name: "max wait zero", edit: func(c *Config) { c.MaxWaitMicros = 0 }, key: "sched.max_wait_us", shouldErr: true},
		{name: "shaper burst zero", edit: func(c *Config) { c.ShaperBurstMicros = 0 }, key: "sched.shaper_burst_us", shouldErr: true},
		{name: "shaper burst too long", edit: func(c *Config) { c.ShaperBurstMicros = 20_000 }, key: "sched.shaper_burst_us", shouldErr: true},
		{name: "default class control", edit: func(c *Config) { c.DefaultClass = "control" }, key: "sched.default_class", shouldErr: true},
		{name: "default class unknown", edit: func(c *Config) { c.DefaultClass = "gold" }, key: "sched.default_class", shouldErr: true},
		{name: "default class deprioritised", edit: func(c *Config) { c.DefaultClass = "deprioritised" }},
		{name: "queue too small", edit: func(c *Config) { c.Normal.QueueFrames = 8 }, key: "sched.normal.queue_frames", shouldErr: true},
		{name: "queue too big", edit: func(c *Config) { c.Control.QueueFrames = 1 << 20 }, key: "sched.control.queue_frames", shouldErr: true},
		{name: "quantum too small", edit: func(c *Config) { c.Deprioritised.QuantumBytes = 10 }, key: "sched.deprioritised.quantum_bytes", shouldErr: true},
		{name: "rate zero", edit: func(c *Config) { c.Control.RatePercent = 0 }, key: "sched.control.rate_percent", shouldErr: true},
		{name: "burst zero", edit: func(c *Config) { c.Priority.BurstBytes = 0 }, key: "sched.priority.burst_bytes", shouldErr: true},
		{name: "caps starve normal", edit: func(c *Config) { c.Priority.RatePercent = 85 }, key: "sched.priority.rate_percent", shouldErr: true},
		{name: "caps just fit", edit: func(c *Config) { c.Priority.RatePercent = 84 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			errs := confcheck.New("sched")
			c.Validate(errs)
			list := errs.List()
			if !tc.shouldErr {
				if len(list) != 0 {
					t.Fatalf("unexpected errors: %v", errs.Err())
				}
				return
			}
			if len(list) != 1 || list[0].Key != tc.key {
				t.Fatalf("got %v, want one error on %s", errs.Err(), tc.key)
			}
		})
	}
}
