package hopmac

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadPSK(t *testing.T) {
	dir := t.TempDir()
	raw := bytes.Repeat([]byte{0x5a}, KeySize)
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name string
		data []byte
		mode os.FileMode
		want error
	}{
		{"raw", raw, 0o600, nil},
		{"hex with newline", []byte(hex.EncodeToString(raw) + "\n"), 0o400, nil},
		{"group readable", raw, 0o640, ErrPSKPermissions},
		{"world writable", raw, 0o602, ErrPSKPermissions},
		{"short", raw[:31], 0o600, ErrPSKFormat},
		{"long", append(raw, 0), 0o600, ErrPSKFormat},
		{"not hex", bytes.Repeat([]byte{'g'}, 64), 0o600, ErrPSKFormat},
		{"empty", nil, 0o600, ErrPSKFormat},
	} {
		k, err := LoadPSK(write(c.name, c.data, c.mode))
		switch {
		case c.want == nil && (err != nil || !bytes.Equal(k, raw)):
			t.Errorf("%s: %x, %v", c.name, k, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := LoadPSK(dir); !errors.Is(err, ErrPSKFormat) {
		t.Errorf("a directory: %v", err)
	}
	if _, err := LoadPSK(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}

// The two direction keys differ from each other and from the pre-shared
// key, and are the same for everyone who reads the file.
func TestLabKeys(t *testing.T) {
	psk := bytes.Repeat([]byte{1}, KeySize)
	a, b := LabKeys(psk)
	a2, b2 := LabKeys(bytes.Clone(psk))
	if bytes.Equal(a, b) || bytes.Equal(a, psk) || bytes.Equal(b, psk) || !bytes.Equal(a, a2) || !bytes.Equal(b, b2) || len(a) != KeySize {
		t.Fatalf("keys %x %x", a, b)
	}
}

func TestClockSeq(t *testing.T) {
	now := time.Now()
	s1, s2 := ClockSeq(now), ClockSeq(now.Add(time.Microsecond))
	if s2-s1 != 64 || s1 >= MaxSeq || ClockSeq(time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC)) >= MaxSeq {
		t.Fatalf("ClockSeq %d %d", s1, s2)
	}
	var s Sequence
	s.StartAt(s1)
	if n, ok := s.Next(); !ok || n != s1 {
		t.Fatalf("Next after StartAt: %d %v", n, ok)
	}
}

func FuzzParsePSK(f *testing.F) {
	f.Add(bytes.Repeat([]byte{7}, KeySize))
	f.Add([]byte(hex.EncodeToString(bytes.Repeat([]byte{7}, KeySize)) + "\n"))
	f.Add([]byte(" \t"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePSK(data)
		if err != nil {
			if !errors.Is(err, ErrPSKFormat) {
				t.Fatalf("error %v is not ErrPSKFormat", err)
			}
			return
		}
		if len(k) != KeySize {
			t.Fatalf("%d-byte key from %q", len(k), data)
		}
		a, b := LabKeys(k)
		if len(a) != KeySize || len(b) != KeySize {
			t.Fatal("derived keys")
		}
	})
}
