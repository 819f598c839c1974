package configs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// Every shipped configuration must load: an example that does not work is
// worse than none.
func TestShippedConfigsLoad(t *testing.T) {
	files, err := filepath.Glob("*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped configs found: %v", err)
	}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(f, withKeyFiles(t, text)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// withKeyFiles points the key_file keys of a shipped configuration that
// name files missing here (the bench configs' keys are made by the user,
// or by make bench-daemon) at fresh key files of the test's, so that the
// rest of the file is checked as it ships. Each peer gets its own key:
// one key for two peers is refused.
func withKeyFiles(t *testing.T, text []byte) []byte {
	t.Helper()
	re := regexp.MustCompile(`(?m)^key_file = "([^"]+)"`)
	return re.ReplaceAllFunc(text, func(m []byte) []byte {
		path := string(re.FindSubmatch(m)[1])
		if _, err := os.Stat(path); err == nil {
			return m
		}
		k := filepath.Join(t.TempDir(), "peer.key")
		key := make([]byte, 32)
		rand.Read(key)
		if err := os.WriteFile(k, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return []byte(fmt.Sprintf("key_file = %q", k))
	})
}

func TestEmbeddedDefaultMatchesFile(t *testing.T) {
	onDisk, err := os.ReadFile("default.toml")
	if err != nil {
		t.Fatal(err)
	}
	if string(onDisk) != string(Default) {
		t.Fatal("embedded default differs from configs/default.toml")
	}
	f, err := Parse("default", Default)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Ports) != 2 || f.Ports[1].Name != "p1" || f.Ports[1].RxDescriptors != 1024 {
		t.Fatalf("ports not decoded: %+v", f.Ports)
	}
}

// Every key set in default.toml is a key the decoder knows, and the default
// file sets every key the decoder knows (so every key is documented there).
func TestDefaultDocumentsEveryKey(t *testing.T) {
	f, err := Parse("default", Default)
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	if f.Log != d.Log || f.Node != d.Node || f.Ctl != d.Ctl {
		t.Errorf("default.toml disagrees with Defaults(): %+v %+v %+v", f.Log, f.Node, f.Ctl)
	}
	if !reflect.DeepEqual(f.Ledger, d.Ledger) || !reflect.DeepEqual(f.Dataplane, d.Dataplane) || !reflect.DeepEqual(f.EAL, d.EAL) || !reflect.DeepEqual(f.Sched, d.Sched) || !reflect.DeepEqual(f.Neigh, d.Neigh) || !reflect.DeepEqual(f.Control, d.Control) {
		t.Errorf("default.toml disagrees with Defaults() in [ledger], [dataplane], [eal], [sched], [neigh] or [control]")
	}
	// Commented-out example tables count as documentation.
	uncommented := regexp.MustCompile(`(?m)^# `).ReplaceAll(Default, nil)
	loc := newLocator(uncommented)
	for _, key := range tomlKeys(File{}, "") {
		_, exact := loc.lines[key]
		_, plain := loc.lines[reIndex.ReplaceAllString(key, "")]
		if !exact && !plain {
			t.Errorf("key %s is not documented in default.toml", key)
		}
	}
}

func TestBadFiles(t *testing.T) {
	base := string(Default)
	cases := []struct {
		name      string
		text      string
		key       string
		line      int
		shouldErr bool
	}{
		{name: "ok", text: base},
		{name: "unknown top-level key", text: "colour = 1\n" + base, key: "colour", line: 1, shouldErr: true},
		{name: "unknown key in table", text: strings.Replace(base, "burst = 32", "burst = 32\nburts = 3", 1),
			key: "dataplane.burts", line: lineOf(base, "burst = 32") + 1, shouldErr: true},
		{name: "unknown key in port", text: base + "\n[[port]]\nname = \"p2\"\ndevice = \"net_null2\"\nspeed = 10\n",
			key: "port.speed", line: strings.Count(base, "\n") + 5, shouldErr: true},
		{name: "udp port 70000", text: strings.Replace(base, "udp_ports = [9253, 9254]", "udp_ports = [9253, 70000]", 1),
			key: "dataplane.udp_ports[1]", line: lineOf(base, "udp_ports = [9253"), shouldErr: true},
		{name: "wrong type", text: strings.Replace(base, "burst = 32", `burst = "many"`, 1),
			key: "dataplane.burst", line: lineOf(base, "burst = 32"), shouldErr: true},
		{name: "bad mtu", text: strings.Replace(base, "mtu = 0", "mtu = 20", 1),
			key: "port[0].mtu", line: lineOf(base, "mtu = 0"), shouldErr: true},
		{name: "descriptors not power of two", text: strings.Replace(base, "tx_descriptors = 256", "tx_descriptors = 500", 1),
			key: "port[0].tx_descriptors", line: lineOf(base, "tx_descriptors = 256"), shouldErr: true},
		{name: "one core only", text: strings.Replace(base, `cores = "0-1"`, `cores = "0"`, 1),
			key: "eal.cores", line: lineOf(base, `cores = "0-1"`), shouldErr: true},
		{name: "in-memory with no-huge", text: strings.Replace(base, "in_memory = false", "in_memory = true", 1),
			key: "eal.in_memory", line: lineOf(base, "in_memory = false"), shouldErr: true},
		{name: "duplicate port name", text: strings.Replace(base, `name = "p1"`, `name = "p0"`, 1),
			key: "port[1].name", line: lineOf(base, `name = "p1"`), shouldErr: true},
		{name: "syntax error", text: "[log\n", line: 2, shouldErr: true}, // the parser stops at the newline
		{name: "bad neighbour", text: base + "\n[[dataplane.neighbor]]\nip = \"192.0.2.9\"\nmac = \"zz\"\nport = \"p9\"\n",
			key: "dataplane.neighbor[0].mac", line: strings.Count(base, "\n") + 4, shouldErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(tc.text))
			if !tc.shouldErr {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("want *Error, got %v", err)
			}
			p := ce.Problems[0]
			if tc.key != "" && p.Key != tc.key {
				t.Errorf("key %q, want %q (%v)", p.Key, tc.key, err)
			}
			if p.Line != tc.line {
				t.Errorf("line %d, want %d (%v)", p.Line, tc.line, err)
			}
			if !strings.Contains(err.Error(), "t.toml: line ") {
				t.Errorf("message lacks file and line: %v", err)
			}
		})
	}
}

func lineOf(text, sub string) int {
	i := strings.Index(text, sub)
	if i < 0 {
		panic("missing " + sub)
	}
	return strings.Count(text[:i], "\n") + 1
}
