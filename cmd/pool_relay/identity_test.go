package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// identity on a key that does not exist yet (a relay that never started)
// says so once and says how to get one; on a key made by keygen it prints
// the key's identity.
func TestIdentityMissingKey(t *testing.T) {
	key := filepath.Join(t.TempDir(), "relay.key")
	code, _, errOut := runCLI(t, "identity", "--key", key)
	want := "pool_relay identity: no identity key at " + key + ": the relay creates it on its first start, pool_relay keygen --out FILE provisions one"
	if code != exitFailure || !strings.Contains(errOut, want) || strings.Contains(errOut, "identity: identity:") {
		t.Fatalf("code %d, stderr %q; want exit 1 and %q", code, errOut, want)
	}
	if code, _, errOut := runCLI(t, "keygen", "--out", key); code != 0 {
		t.Fatalf("keygen: code %d, stderr %q", code, errOut)
	}
	code, out, errOut := runCLI(t, "identity", "--key", key)
	if code != 0 || !strings.Contains(out, "Key file: "+key) {
		t.Fatalf("identity after keygen: code %d, out %q, stderr %q", code, out, errOut)
	}
	// A key file others may read is refused with the identity package's
	// own message, after the command's name, each once.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "identity", "--key", key)
	if code != exitFailure || !strings.HasPrefix(errOut, "pool_relay identity: identity: key file permissions too open") || strings.Count(errOut, "identity:") != 2 {
		t.Fatalf("0644 key: code %d, stderr %q", code, errOut)
	}
}
