package address

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

func key(b byte) [32]byte {
	var k [32]byte
	for i := range k {
		k[i] = b
	}
	return k
}

func TestLayout(t *testing.T) {
	pub := key(7)
	a := New(TypeRelay, 42, 3, pub)
	if a.Version() != 1 || a.Type() != TypeRelay || a.Org() != 42 || a.Segment() != 3 {
		t.Fatalf("fields: %v %v %v %v", a.Version(), a.Type(), a.Org(), a.Segment())
	}
	// Recompute the node id and CRC independently of the package's helpers.
	sum := sha256.Sum256(append([]byte("poolrelay/v1 node-id"), pub[:]...))
	if string(a[8:28]) != string(sum[:20]) {
		t.Fatal("node id is not SHA-256(tag||key)[:20]")
	}
	want := crc32.Checksum(a[:28], crc32.MakeTable(crc32.Castagnoli))
	if a.Checksum() != want {
		t.Fatalf("crc %08x, want %08x", a.Checksum(), want)
	}
	if !a.Matches(pub) || a.Matches(key(8)) {
		t.Fatal("Matches")
	}
	if a.IsZero() || !(Address{}).IsZero() {
		t.Fatal("IsZero")
	}
}

func TestDocExample(t *testing.T) {
	const doc = "pool1-relay-0000002a-0003-fe08478b5e7f2344fc09ec1d383af0656ff8a67f-a33f5cb1"
	if got := New(TypeRelay, 42, 3, key(1)).String(); got != doc {
		t.Fatalf("package doc example is stale: %s", got)
	}
}

func TestTextRoundTrip(t *testing.T) {
	for _, typ := range []Type{TypeRelay, TypeNode} {
		a := New(typ, 0xdeadbeef, 0xffff, key(byte(typ)))
		s := a.String()
		if !strings.HasPrefix(s, "pool1-"+typ.String()+"-deadbeef-ffff-") {
			t.Fatalf("text form %q", s)
		}
		b, err := Parse(s)
		if err != nil || b != a {
			t.Fatalf("Parse(%q) = %v, %v", s, b, err)
		}
		if b, err := Parse(strings.ToUpper(s)); err != nil || b != a {
			t.Fatalf("uppercase: %v", err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := New(TypeRelay, 42, 3, key(1)).String()
	fields := strings.Split(good, "-")
	with := func(i int, v string) string {
		f := append([]string(nil), fields...)
		f[i] = v
		return strings.Join(f, "-")
	}
	// Flip the last hex digit of the node id: only the checksum catches it.
	node := []byte(fields[4])
	if node[len(node)-1] == '0' {
		node[len(node)-1] = '1'
	} else {
		node[len(node)-1] = '0'
	}
	cases := []struct {
		in   string
		want error
	}{
		{"", ErrSyntax},
		{"pool1", ErrSyntax},
		{good + "-00", ErrSyntax},
		{with(0, "pool2"), ErrVersion},
		{with(0, "ipv6"), ErrSyntax},
		{with(1, "router"), ErrType},
		{with(2, "2a"), ErrSyntax},
		{with(3, "00g3"), ErrSyntax},
		{with(4, string(node)), ErrChecksum},
		{with(5, "00000000"), ErrChecksum},
		{strings.Repeat("-", 1000), ErrSyntax},
	}
	for _, c := range cases {
		if _, err := Parse(c.in); !errors.Is(err, c.want) {
			t.Errorf("Parse(%q) = %v, want %v", c.in, err, c.want)
		}
	}
}

func TestBinary(t *testing.T) {
	a := New(TypeNode, 1, 2, key(3))
	b, _ := a.MarshalBinary()
	var c Address
	if err := c.UnmarshalBinary(b); err != nil || c != a {
		t.Fatal(err)
	}
	bad := append([]byte(nil), b...)
	bad[10] ^= 0x80
	if err := c.UnmarshalBinary(bad); !errors.Is(err, ErrChecksum) {
		t.Fatalf("corrupted node id: %v", err)
	}
	bad = append([]byte(nil), b...)
	bad[0] = 9
	if err := c.UnmarshalBinary(bad); !errors.Is(err, ErrVersion) {
		t.Fatalf("bad version: %v", err)
	}
	bad[0], bad[1] = 1, 0
	if err := c.UnmarshalBinary(bad); !errors.Is(err, ErrType) {
		t.Fatalf("bad type: %v", err)
	}
	if err := c.UnmarshalBinary(b[:31]); !errors.Is(err, ErrSyntax) {
		t.Fatalf("short: %v", err)
	}
	if c != a {
		t.Fatal("failed UnmarshalBinary modified the address")
	}
}

func TestJSON(t *testing.T) {
	a := New(TypeRelay, 7, 8, key(9))
	j, err := json.Marshal(map[string]Address{"peer": a})
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]Address
	if err := json.Unmarshal(j, &back); err != nil || back["peer"] != a {
		t.Fatalf("%s: %v", j, err)
	}
	if _, err := (Address{}).MarshalText(); err == nil {
		t.Fatal("zero address marshals")
	}
}

// FuzzParse: Parse never panics; whatever parses formats back to the
// lowercase input, and survives the binary form.
func FuzzParse(f *testing.F) {
	f.Add(New(TypeRelay, 42, 3, key(1)).String())
	f.Add(New(TypeNode, 0, 0, key(2)).String())
	f.Add("pool1-relay-0000002a-0003-00-00")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		if got := a.String(); got != strings.ToLower(s) {
			t.Fatalf("Parse(%q).String() = %q", s, got)
		}
		var b Address
		bin, _ := a.MarshalBinary()
		if err := b.UnmarshalBinary(bin); err != nil || b != a {
			t.Fatalf("binary round trip: %v", err)
		}
	})
}

// FuzzUnmarshalBinary: the binary decoder never panics and accepts exactly
// the addresses whose text form parses.
func FuzzUnmarshalBinary(f *testing.F) {
	a := New(TypeRelay, 42, 3, key(1))
	f.Add(a[:])
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Address
		if err := a.UnmarshalBinary(b); err != nil {
			return
		}
		back, err := Parse(a.String())
		if err != nil || back != a {
			t.Fatalf("text round trip of %x: %v", b, err)
		}
	})
}
