package peerstore

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/control"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/ledger/account"
)

func key(b byte) identity.PublicKey {
	var k identity.PublicKey
	k[0], k[31] = b, b
	return k
}

func TestPutRemoveSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path, logging.Nop())
	if err != nil || len(s.Peers()) != 0 {
		t.Fatalf("fresh store: %v %v", s.Peers(), err)
	}
	a := control.KeptPeer{Key: key(1), Address: netip.MustParseAddrPort("192.0.2.7:9254"), Terms: account.Terms{Payment: 1000, Disconnect: 1250}}
	b := control.KeptPeer{Key: key(2), Address: netip.MustParseAddrPort("[2001:db8::9]:9254")}
	s.Put(a)
	s.Put(b)
	a.Address = netip.MustParseAddrPort("192.0.2.8:9254")
	s.Put(a)
	s2, err := Open(path, logging.Nop())
	if err != nil {
		t.Fatal(err)
	}
	got := s2.Peers()
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("reopened: %+v", got)
	}
	s2.Remove(key(1))
	s2.Remove(key(9)) // not there: no write, no error
	s3, err := Open(path, logging.Nop())
	if err != nil || len(s3.Peers()) != 1 || !s3.Has(key(2)) || s3.Has(key(1)) {
		t.Fatalf("after remove: %+v %v", s3.Peers(), err)
	}
	// No temporary file is left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("directory holds %d files", len(ents))
	}
}

func TestCorruptFilesRefused(t *testing.T) {
	good := `{"version":1,"peers":[{"identity":"` + key(1).String() + `","address":"192.0.2.7:9254","terms":{"prices":{},"payment":1,"disconnect":2,"forgive_per_second":0},"updated":"2026-12-07T00:00:00Z"}]}`
	if _, err := Decode([]byte(good)); err != nil {
		t.Fatalf("good file refused: %v", err)
	}
	for name, text := range map[string]string{
		"not json":      `peers`,
		"version":       `{"version":2,"peers":[]}`,
		"unknown field": `{"version":1,"peers":[],"extra":1}`,
		"short id":      `{"version":1,"peers":[{"identity":"abcd","address":"192.0.2.7:9254"}]}`,
		"bad address":   strings.Replace(good, "192.0.2.7:9254", "192.0.2.7", 1),
		"port 0":        strings.Replace(good, "192.0.2.7:9254", "192.0.2.7:0", 1),
		"twice":         strings.Replace(good, "}]}", "},"+good[len(`{"version":1,"peers":[`):len(good)-2]+"]}", 1),
		"trailing":      good + `{}`,
	} {
		if _, err := Decode([]byte(text)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	path := filepath.Join(t.TempDir(), FileName)
	os.WriteFile(path, []byte(`{"version":1`), 0o600)
	if _, err := Open(path, logging.Nop()); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("open of a torn file: %v", err)
	}
}

// TestWriteFailureKeptInMemory: a failed write (here an unwritable
// directory, as a full disk would) keeps the change in memory, and the next
// change that can be written saves everything.
func TestWriteFailureKeptInMemory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gone", FileName)
	s, err := Open(path, logging.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s.Put(control.KeptPeer{Key: key(1), Address: netip.MustParseAddrPort("192.0.2.7:9254")})
	if !s.failing || !s.Has(key(1)) {
		t.Fatal("a failed write was not noticed, or lost the peer")
	}
	if err := os.Mkdir(filepath.Join(dir, "gone"), 0o700); err != nil {
		t.Fatal(err)
	}
	s.Put(control.KeptPeer{Key: key(2), Address: netip.MustParseAddrPort("192.0.2.8:9254")})
	s2, err := Open(path, logging.Nop())
	if err != nil || len(s2.Peers()) != 2 || s.failing {
		t.Fatalf("after recovery: %+v %v", s2.Peers(), err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":1,"peers":[{"identity":"` + key(1).String() + `","address":"192.0.2.7:9254"}]}`))
	f.Add([]byte(`{"version":1,"peers":[]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error without ErrCorrupt: %v", err)
			}
			return
		}
		// What decodes is written back the same.
		s := &Store{path: filepath.Join(t.TempDir(), FileName), log: logging.Nop(), peers: map[identity.PublicKey]entry{}}
		for _, p := range ps {
			s.Put(p)
		}
		got, err := os.ReadFile(s.path)
		if err != nil && len(ps) > 0 {
			t.Fatal(err)
		}
		if len(ps) > 0 {
			again, err := Decode(got)
			if err != nil || len(again) != len(ps) {
				t.Fatalf("round trip: %v %d/%d", err, len(again), len(ps))
			}
		}
	})
}
