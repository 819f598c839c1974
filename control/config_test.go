package control

import (
	"reflect"

	"github.com/BurntSushi/toml"
	"strings"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/internal/confcheck"
)

func TestConfigValidate(t *testing.T) {
	key := strings.Repeat("ab", 32)
	cases := []struct {
		name   string
		mutate func(*Config)
		bad    string // the key expected in the error; "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"listed", func(c *Config) { c.Enroll, c.ListedKeys = EnrollListed, []string{key} }, ""},
		{"listed without keys", func(c *Config) { c.Enroll = EnrollListed }, "control.listed_keys"},
		{"bad key", func(c *Config) { c.ListedKeys = []string{"zz"} }, "control.listed_keys"},
		{"unknown policy", func(c *Config) { c.Enroll = "closed" }, "control.enroll"},
		{"fast heartbeats", func(c *Config) { c.HeartbeatInterval = time.Millisecond }, "control.heartbeat_interval"},
		{"timeout below two beats", func(c *Config) { c.PeerTimeout = 6 * time.Second }, "control.peer_timeout"},
		{"tick past the beat", func(c *Config) { c.Tick = time.Minute }, "control.tick"},
		{"puzzle", func(c *Config) { c.PuzzleMax = 40 }, "control.puzzle_base"},
		{"zero peers", func(c *Config) { c.MaxPeers = 0 }, "control.max_peers"},
		{"short routes", func(c *Config) { c.RouteMaxLifetime = time.Millisecond }, "control.route_max_lifetime"},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.mutate(&c)
		errs := confcheck.New("control")
		c.Validate(errs)
		err := errs.Err()
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("%s: error %v, want one about %s", tc.name, err, tc.bad)
		}
	}
	c := DefaultConfig()
	c.Enroll, c.ListedKeys = EnrollListed, []string{key}
	var k [32]byte
	for i := range k {
		k[i] = 0xab
	}
	if p := c.Policy(); !p(k) || p([32]byte{1}) {
		t.Fatal("listed policy does not follow listed_keys")
	}
}

// TestDefaultSection checks the [control] text given to configs/default.toml
// against DefaultConfig: every key decoded, every value the default.
func TestDefaultSection(t *testing.T) {
	var f struct {
		Control Config `toml:"control"`
	}
	md, err := toml.DecodeFile("testdata/default_section.toml", &f)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) != 0 {
		t.Fatalf("unknown keys %v", u)
	}
	want := DefaultConfig()
	f.Control.ListedKeys, want.ListedKeys = nil, nil
	if !reflect.DeepEqual(f.Control, want) {
		t.Fatalf("section %+v\nwant    %+v", f.Control, want)
	}
}

func TestCounterNames(t *testing.T) {
	seen := map[string]bool{}
	for c := range numCounters {
		n := c.String()
		if n == "" || n == "unknown" || seen[n] {
			t.Fatalf("counter %d has name %q", c, n)
		}
		seen[n] = true
	}
}
