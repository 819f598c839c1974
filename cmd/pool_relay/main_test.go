package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &env{stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "pool_relay ") {
		t.Fatalf("code %d, out %q", code, out)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, errOut := runCLI(t, "frobnicate")
	if code != exitUsage || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
}

func TestConfigCheck(t *testing.T) {
	def := filepath.Join("..", "..", "configs", "default.toml")
	code, out, errOut := runCLI(t, "config", "check", def)
	if code != 0 || out != "ok\n" {
		t.Fatalf("default.toml: code %d, out %q, err %q", code, out, errOut)
	}

	text, err := os.ReadFile(def)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct{ name, old, new, want string }{
		{"unknown key", "burst = 32", "burst = 32\nburts = 1", "dataplane.burts"},
		{"port 70000", "udp_ports = [9253, 9254]", "udp_ports = [70000]", "dataplane.udp_ports[0]"},
	} {
		bad := strings.Replace(string(text), tc.old, tc.new, 1)
		path := filepath.Join(dir, "bad.toml")
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		i := strings.Index(bad, tc.new)
		line := strings.Count(bad[:i], "\n") + 1
		if tc.name == "unknown key" {
			line++
		}
		code, out, errOut := runCLI(t, "config", "check", path)
		wantLine := "line " + strconv.Itoa(line) + ": " + tc.want
		if code != exitUsage || out != "" || !strings.Contains(errOut, wantLine) {
			t.Errorf("%s: code %d, out %q, stderr %q; want exit 2 and %q", tc.name, code, out, errOut, wantLine)
		}
	}
}

// A static peer's bad key file is reported with the file and line by
// `config check`, and `start` refuses the file the same way before it
// starts anything.
func TestStaticPeerKeyFileErrors(t *testing.T) {
	def, err := os.ReadFile(filepath.Join("..", "..", "configs", "default.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, bytes.Repeat([]byte{1}, 32), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, key, want string }{
		{"missing", filepath.Join(dir, "missing.key"), "no such file"},
		{"too open", open, "more open than 0600"},
	} {
		text := string(def) + "\n[[control.static_peer]]\nname = \"g\"\nport = \"p0\"\nip = \"192.0.2.2\"\nudp_port = 9254\nmac = \"02:00:00:00:00:02\"\nkey_file = \"" + tc.key + "\"\n"
		path := filepath.Join(dir, "lab.toml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		line := strings.Count(text, "\n") // key_file is the last line
		want := path + ": line " + strconv.Itoa(line) + ": control.static_peer[0].key_file: "
		for _, args := range [][]string{{"config", "check", path}, {"start", "--config", path}} {
			code, _, errOut := runCLI(t, args...)
			if code != exitUsage || !strings.Contains(errOut, want) || !strings.Contains(errOut, tc.want) {
				t.Errorf("%s: %s: code %d, stderr %q; want exit 2, %q and %q", tc.name, args[0], code, errOut, want, tc.want)
			}
		}
	}
}
