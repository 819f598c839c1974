package control

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/internal/confcheck"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/pool/proto"
)

// keyFile writes a pre-shared key file of 32 bytes of b, mode 0600.
func keyFile(t *testing.T, b byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "peer.key")
	if err := os.WriteFile(p, bytes.Repeat([]byte{b}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// staticLab is two static peers on port p0 (the test relay's UDP socket,
// port index 0) and a range of n sessions from the first to the second.
func staticLab(t *testing.T, n int) (peers []StaticPeer, routes []StaticRange) {
	peers = []StaticPeer{
		{Name: "gen0", Port: "p0", IP: "127.0.0.1", UDPPort: 40000, MAC: "02:00:00:00:00:01", KeyFile: keyFile(t, 1)},
		{Name: "gen1", Port: "p0", IP: "127.0.0.1", UDPPort: 40001, MAC: "learn", KeyFile: keyFile(t, 2)},
	}
	routes = []StaticRange{{From: "gen0", To: "gen1", Session: "706f6f6c2d67656e2d686f7000000000", Count: n}}
	return peers, routes
}

func TestStaticPeersInstalledAndApplied(t *testing.T) {
	peers, ranges := staticLab(t, 16)
	w := newWorldFull(t, 0x51, func(c *Config) { c.StaticPeers, c.StaticRoutes = peers, ranges }, nil,
		func(o *Options) { o.PortNames = []string{"p0"} })
	first, _ := ParseSession(ranges[0].Session)

	infos, err := w.core.Peers(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	slot := map[string]uint32{}
	for _, pi := range infos {
		slot[pi.Static] = pi.Slot
		if pi.Static != "" && (!w.plane.HasKeys(pi.Slot) || pi.Unauthenticated || pi.Key != [32]byte(StaticPeerID(pi.Static))) {
			t.Errorf("static peer %+v: keys %v", pi, w.plane.HasKeys(pi.Slot))
		}
	}
	if slot["gen0"] == 0 || slot["gen1"] == 0 || slot["gen0"] == slot["gen1"] {
		t.Fatalf("static peers' slots %v", slot)
	}
	if v, err := w.led.Peer(StaticPeerID("gen0")); err != nil || !v.Account.Connected {
		t.Fatalf("gen0's account: %+v, %v", v, err)
	}
	rs, err := w.core.Routes(ctx(t))
	if err != nil || len(rs) != 1 || !rs[0].Config || rs[0].Sessions != 16 || rs[0].Session != first ||
		rs[0].FromName != "gen0" || rs[0].ToName != "gen1" {
		t.Fatalf("routes %+v, %v", rs, err)
	}
	// Every session and its reverse, towards the right slots; the learnt
	// MAC is resolved by the neighbour table.
	if n := w.plane.Routes().Len(); n != 32 {
		t.Fatalf("%d routes in the table, want 32", n)
	}
	last := first
	last[15] += 15
	fwd, ok1 := w.plane.Routes().Lookup(route.SessionID(last))
	back, ok2 := w.plane.Routes().Lookup(route.SessionID(proto.ReverseSession(last)))
	if !ok1 || !ok2 || fwd.IngressKey != slot["gen0"] || fwd.EgressKey != slot["gen1"] || fwd.DstPort != 40001 ||
		fwd.Flags&route.FlagResolveMAC == 0 || back.IngressPeer != slot["gen1"] || back.DstPort != 40000 ||
		back.DstMAC != [6]byte{2, 0, 0, 0, 0, 1} || back.Flags&route.FlagResolveMAC != 0 {
		t.Fatalf("last session: %+v (%v), reverse %+v (%v)", fwd, ok1, back, ok2)
	}
	if n := notes(t, w, event.RouteOpen, 1); !strings.Contains(n[0], "16 sessions, gen0 -> gen1") {
		t.Fatalf("journalled %q", n[0])
	}
	if err := w.core.CloseRoute(ctx(t), first); !errors.Is(err, ErrInvalidRoute) {
		t.Fatalf("route del of a configured range: %v, want ErrInvalidRoute", err)
	}

	// A configuration the core cannot install (a port it does not have)
	// changes nothing.
	bad := DefaultConfig()
	bad.StaticPeers = append(slices.Clone(peers), StaticPeer{Name: "gen2", Port: "p9", IP: "127.0.0.1", UDPPort: 1, MAC: "02:00:00:00:00:09", KeyFile: keyFile(t, 3)})
	bad.StaticRoutes = []StaticRange{{From: "gen0", To: "gen1", Session: ranges[0].Session, Count: 8}}
	if err := w.core.SetConfig(bad); !errors.Is(err, ErrStatic) {
		t.Fatalf("SetConfig with a peer on an unknown port: %v, want ErrStatic", err)
	}
	if n := w.plane.Routes().Len(); n != 32 {
		t.Fatalf("a refused configuration left %d routes, want 32", n)
	}
	after, _ := w.core.Peers(ctx(t))
	if len(after) != len(infos) {
		t.Fatalf("a refused configuration changed the peers: %+v", after)
	}
	// Invalid ones are refused before anything: overlapping ranges.
	overlap := DefaultConfig()
	overlap.StaticPeers = peers
	overlap.StaticRoutes = []StaticRange{ranges[0], {From: "gen1", To: "gen0", Session: "706f6f6c2d67656e2d686f700000000f", Count: 2}}
	var fe *confcheck.FieldError
	if err := w.core.SetConfig(overlap); !errors.As(err, &fe) || fe.Key != "control.static_route[1].session" {
		t.Fatalf("overlapping ranges: %v", err)
	}

	// A smaller range and gen1 replaced by a new key: gen0 keeps its slot
	// (and counters), gen1 gets another, the range is reinstalled.
	good := DefaultConfig()
	good.StaticPeers = slices.Clone(peers)
	good.StaticPeers[1].KeyFile = keyFile(t, 4)
	good.StaticRoutes = []StaticRange{{From: "gen0", To: "gen1", Session: ranges[0].Session, Count: 8}}
	if err := w.core.SetConfig(good); err != nil {
		t.Fatal(err)
	}
	if n := w.plane.Routes().Len(); n != 16 {
		t.Fatalf("%d routes after shrinking the range to 8, want 16", n)
	}
	now, _ := w.core.Peers(ctx(t))
	for _, pi := range now {
		switch pi.Static {
		case "gen0":
			if pi.Slot != slot["gen0"] {
				t.Errorf("unchanged gen0 moved from slot %d to %d", slot["gen0"], pi.Slot)
			}
		case "gen1":
			if pi.Slot == slot["gen1"] || w.plane.HasKeys(slot["gen1"]) {
				t.Errorf("re-keyed gen1 kept slot %d (keys left: %v)", pi.Slot, w.plane.HasKeys(slot["gen1"]))
			}
		}
	}
	// Removing them all frees everything.
	if err := w.core.SetConfig(DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	if n := w.plane.Routes().Len(); n != 0 {
		t.Fatalf("%d routes left after removing the static peers", n)
	}
	if v, err := w.led.Peer(StaticPeerID("gen0")); err != nil || v.Account.Connected {
		t.Fatalf("removed gen0's account: connected %v, %v", v.Account.Connected, err)
	}
}

func TestStaticConfigValidate(t *testing.T) {
	peers, ranges := staticLab(t, 1024)
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	short := filepath.Join(dir, "short.key")
	_ = os.WriteFile(open, bytes.Repeat([]byte{7}, 32), 0o644)
	_ = os.WriteFile(short, []byte("0123"), 0o600)
	cases := []struct {
		name   string
		mutate func(ps []StaticPeer, rs []StaticRange) ([]StaticPeer, []StaticRange)
		key    string
		msg    string
	}{
		{"missing key file", func(ps []StaticPeer, rs []StaticRange) ([]StaticPeer, []StaticRange) {
			ps[0].KeyFile = filepath.Join(dir, "nope.key")
			return ps, rs
		}, "static_peer[0].key_file", "no such file"},
		{"too open", func(ps []StaticPeer, rs []StaticRange) ([]StaticPeer, []StaticRange) {
			ps[0].KeyFile = open
			return ps, rs
		}, "static_peer[0].key_file", "more open than 0600"},
		{"short", func(ps []StaticPeer, rs []StaticRange) ([]StaticPeer, []StaticRange) {
			ps[1].KeyFile = short
			return ps, rs
		}, "static_peer[1].key_file", "32 bytes or 64 hex digits"},
		{"unreadable (a directory)", func(ps []StaticPeer, rs []StaticRange) ([]StaticPeer, []StaticRange) {
			ps[0].KeyFile = dir
			return ps, rs
		}, "static_peer[0].key_file", "not a regular file"},
		{"one key for two peers", func(ps []StaticPeer, rs []StaticRange) ([]StaticPeer, []StaticRange) {
			ps[1].KeyFile = ps[0].KeyFile
			return ps, rs
		}, "static_peer[1].key_file", "same key"},
		{"unauthenticated with a key", func(ps []StaticPeer, rs []StaticRange) ([]StaticPeer, []StaticRange) {
			ps[0].Unauthenticated = true
			return ps, rs
		}, "static_peer[0].key_file", "takes no key"},
		{"route to an unknown peer", func(ps []StaticPeer, rs []StaticRange) ([]StaticPeer, []StaticRange) {
			rs[0].To = "gen9"
			return ps, rs
		}, "static_route[0].to", "not a static peer"},
		{"overlap with a reverse", func(ps []StaticPeer, rs []StaticRange) ([]StaticPeer, []StaticRange) {
			return ps, append(rs, StaticRange{From: "gen1", To: "gen0", Session: "f06f6f6c2d67656e2d686f7000000100", Count: 1})
		}, "static_route[1].session", "overlap"},
		{"overlap inside", func(ps []StaticPeer, rs []StaticRange) ([]StaticPeer, []StaticRange) {
			return ps, append(rs, StaticRange{From: "gen0", To: "gen1", Session: "706f6f6c2d67656e2d686f7000000005", Count: 1})
		}, "static_route[1].session", "overlap"},
		{"above the range limit", func(ps []StaticPeer, rs []StaticRange) ([]StaticPeer, []StaticRange) {
			rs[0].Count = MaxStaticSessions + 1
			return ps, rs
		}, "static_route[0].count", "between 1 and"},
		{"crossing the top bit", func(ps []StaticPeer, rs []StaticRange) ([]StaticPeer, []StaticRange) {
			rs[0].Session = "7fffffffffffffffffffffffffffffff"
			rs[0].Count = 2
			return ps, rs
		}, "static_route[0].session", "cross"},
		{"the zero id's reverse", func(ps []StaticPeer, rs []StaticRange) ([]StaticPeer, []StaticRange) {
			rs[0].Session = "80000000000000000000000000000000"
			return ps, rs
		}, "static_route[0].session", "zero session id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.StaticPeers, cfg.StaticRoutes = c.mutate(slices.Clone(peers), slices.Clone(ranges))
			errs := confcheck.New("")
			cfg.Validate(errs)
			list := errs.List()
			if len(list) == 0 {
				t.Fatal("accepted")
			}
			if list[0].Key != c.key || !strings.Contains(list[0].Msg, c.msg) {
				t.Fatalf("%s: %s, want %s: ...%s...", list[0].Key, list[0].Msg, c.key, c.msg)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.StaticPeers, cfg.StaticRoutes = peers, ranges
	errs := confcheck.New("")
	cfg.Validate(errs)
	if err := errs.Err(); err != nil {
		t.Fatalf("the good configuration: %v", err)
	}
}

// The overlap check of static ranges against a slow reference: the sets
// of session ids (and their reverses) of two ranges, intersected.
func FuzzStaticRanges(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0x70}, 16), uint16(1024), bytes.Repeat([]byte{0x70}, 16), uint16(3))
	f.Add(append(bytes.Repeat([]byte{0}, 15), 1), uint16(4), append([]byte{0x80}, append(bytes.Repeat([]byte{0}, 14), 3)...), uint16(9))
	f.Add(bytes.Repeat([]byte{0xff}, 16), uint16(2), bytes.Repeat([]byte{0x7f}, 16), uint16(2))
	f.Fuzz(func(t *testing.T, a []byte, na uint16, b []byte, nb uint16) {
		if len(a) != 16 || len(b) != 16 {
			return
		}
		na, nb = na%300+1, nb%300+1 // small ranges keep the reference cheap
		cfg := DefaultConfig()
		cfg.StaticPeers = []StaticPeer{
			{Name: "a", Port: "p0", IP: "192.0.2.2", MAC: "learn", Unauthenticated: true},
			{Name: "b", Port: "p0", IP: "192.0.2.3", MAC: "learn", Unauthenticated: true},
		}
		hexa, hexb := fmt.Sprintf("%x", a), fmt.Sprintf("%x", b)
		cfg.StaticRoutes = []StaticRange{{From: "a", To: "b", Session: hexa, Count: int(na)}, {From: "b", To: "a", Session: hexb, Count: int(nb)}}
		errs := confcheck.New("")
		cfg.Validate(errs)
		overlapErr := false
		for _, fe := range errs.List() {
			if strings.Contains(fe.Msg, "overlap") {
				overlapErr = true
			}
		}
		ra, erra := rangeOf(hexa, int(na))
		rb, errb := rangeOf(hexb, int(nb))
		if erra != nil || errb != nil {
			if overlapErr {
				t.Fatalf("overlap reported for a range that is refused anyway: %v %v", erra, errb)
			}
			return
		}
		ids := func(r sessionRange) map[[16]byte]bool {
			m := map[[16]byte]bool{}
			r.ids(func(id, rev [16]byte) { m[id], m[rev] = true, true })
			return m
		}
		sa, sb := ids(ra), ids(rb)
		if len(sa) != 2*int(na) || len(sb) != 2*int(nb) {
			t.Fatalf("a range's ids and reverses are not distinct: %d of %d, %d of %d", len(sa), 2*na, len(sb), 2*nb)
		}
		want := false
		for id := range sa {
			if sb[id] {
				want = true
				break
			}
		}
		if want != overlapErr {
			t.Fatalf("ranges %s+%d and %s+%d: overlap %v, reported %v (%v)", hexa, na, hexb, nb, want, overlapErr, errs.Err())
		}
	})
}
