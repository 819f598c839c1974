package configs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// staticText is the embedded default with two static peers (their key
// files in dir) and a range between them.
func staticText(t *testing.T, dir string) string {
	t.Helper()
	for i, name := range []string{"a.key", "b.key"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Repeat(fmt.Sprintf("%02x", i+1), 32)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return string(Default) + fmt.Sprintf(`
[[control.static_peer]]
name = "a"
port = "p0"
ip = "192.0.2.2"
udp_port = 9254
mac = "02:00:00:00:00:0a"
key_file = %q

[[control.static_peer]]
name = "b"
port = "p1"
ip = "198.51.100.2"
udp_port = 9254
mac = "learn"
key_file = %q

[[control.static_route]]
from = "a"
to = "b"
session = "706f6f6c2d67656e2d686f7000000000"
count = 1024
`, filepath.Join(dir, "a.key"), filepath.Join(dir, "b.key"))
}

// Bad static peers and routes are each reported with the file, line and
// key: what `pool_relay config check` and `pool_relay start` print.
func TestStaticBadFiles(t *testing.T) {
	dir := t.TempDir()
	base := staticText(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "open.key"), []byte(strings.Repeat("ab", 32)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "short.key"), []byte("abcd"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyA := fmt.Sprintf("key_file = %q", filepath.Join(dir, "a.key"))
	cases := []struct {
		name, old, new, key, msg string
	}{
		{"missing key file", keyA, fmt.Sprintf("key_file = %q", filepath.Join(dir, "gone.key")), "control.static_peer[0].key_file", "no such file"},
		{"short key file", keyA, fmt.Sprintf("key_file = %q", filepath.Join(dir, "short.key")), "control.static_peer[0].key_file", "32 bytes or 64 hex digits"},
		{"unreadable key file", keyA, fmt.Sprintf("key_file = %q", dir), "control.static_peer[0].key_file", "not a regular file"},
		{"too open key file", keyA, fmt.Sprintf("key_file = %q", filepath.Join(dir, "open.key")), "control.static_peer[0].key_file", "more open than 0600"},
		{"route to an unknown peer", `to = "b"`, `to = "c"`, "control.static_route[0].to", "not a static peer"},
		{"unknown port", `port = "p1"`, `port = "p7"`, "control.static_peer[1].port", "not the name of a [[port]]"},
		{"no address of the family", `ip = "198.51.100.2"`, `ip = "2001:db8::2"`, "control.static_peer[1].ip", "no address of"},
		{"range above the table's limit", "max_routes = 1048576", "max_routes = 1024", "control.static_route[0].count", "above [dataplane] max_routes"},
		{"overlapping ranges", "", "\n[[control.static_route]]\nfrom = \"b\"\nto = \"a\"\nsession = \"706f6f6c2d67656e2d686f7000000010\"\ncount = 1\n", "control.static_route[1].session", "overlap"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(base, c.old) {
				t.Fatalf("the base text lacks %q", c.old)
			}
			// The last occurrence: the default's commented examples come first.
			text := base + c.new
			if c.old != "" {
				i := strings.LastIndex(base, c.old)
				text = base[:i] + c.new + base[i+len(c.old):]
			}
			_, err := Parse("lab.toml", []byte(text))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got %v", err)
			}
			p := ce.Problems[0]
			want := lastLineOf(text, strings.SplitN(c.new, "\n", 2)[0])
			switch c.name {
			case "overlapping ranges":
				want = lastLineOf(text, `session = "706f6f6c2d67656e2d686f7000000010"`)
			case "range above the table's limit":
				want = lastLineOf(text, "count = 1024")
			}
			if p.Key != c.key || p.Line != want || !strings.Contains(p.Msg, c.msg) {
				t.Fatalf("problem %+v, want key %s line %d message ...%s...", p, c.key, want, c.msg)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("lab.toml: line %d: ", want)) {
				t.Fatalf("message lacks file and line: %v", err)
			}
		})
	}
	if _, err := Parse("lab.toml", []byte(base)); err != nil {
		t.Fatalf("the good file: %v", err)
	}
}

// lastLineOf is the line of sub's last occurrence: the examples in the
// default's comments come first.
func lastLineOf(text, sub string) int {
	i := strings.LastIndex(text, sub)
	if i < 0 {
		panic("missing " + sub)
	}
	return strings.Count(text[:i], "\n") + 1
}
