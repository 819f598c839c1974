package peer

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
)

func TestRoundTrips(t *testing.T) {
	k := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	id, err := FromPublicKey(k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(id.PublicKey(), []byte("m"), ed25519.Sign(k, []byte("m"))) {
		t.Fatal("PublicKey does not round-trip")
	}
	p, err := Parse(id.String())
	if err != nil || p != id || len(id.Short()) != 8 {
		t.Fatalf("%v %v", err, p)
	}
	b, _ := json.Marshal(map[string]ID{"peer": id})
	var back map[string]ID
	if err := json.Unmarshal(b, &back); err != nil || back["peer"] != id {
		t.Fatalf("json: %v %s", err, b)
	}
}

func TestBadKeys(t *testing.T) {
	for _, k := range [][]byte{nil, make([]byte, 31), make([]byte, 32)} {
		if _, err := FromPublicKey(k); !errors.Is(err, ErrBadKey) {
			t.Errorf("%x: %v", k, err)
		}
	}
	for _, s := range []string{"", "zz", "00"} {
		if _, err := Parse(s); !errors.Is(err, ErrBadKey) {
			t.Errorf("%q: %v", s, err)
		}
	}
}
