package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/poolrelay/poolrelay/internal/cputime"
)

// seeded returns an identity from a seed made of b repeated.
func seeded(t testing.TB, b byte) *Identity {
	t.Helper()
	id, err := FromSeed(bytes.Repeat([]byte{b}, SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestStaticKeyIsDerivedAndAgrees(t *testing.T) {
	a, b := seeded(t, 1), seeded(t, 2)
	if a.StaticPublic() == b.StaticPublic() {
		t.Fatal("different seeds gave the same static key")
	}
	if again := seeded(t, 1); again.StaticPublic() != a.StaticPublic() || again.PublicKey() != a.PublicKey() {
		t.Fatal("derivation is not deterministic")
	}
	// The static key pair must be a working X25519 pair: both sides of a
	// Diffie-Hellman agree.
	ap, bp := a.StaticPrivate(), b.StaticPrivate()
	ak, _ := ecdh.X25519().NewPrivateKey(ap[:])
	bk, _ := ecdh.X25519().NewPrivateKey(bp[:])
	bpub, bs := b.StaticPublic(), a.StaticPublic()
	bpk, _ := ecdh.X25519().NewPublicKey(bpub[:])
	apk, _ := ecdh.X25519().NewPublicKey(bs[:])
	s1, err1 := ak.ECDH(bpk)
	s2, err2 := bk.ECDH(apk)
	if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) {
		t.Fatalf("static keys do not agree: %v %v", err1, err2)
	}
	// The static key is not the Ed25519 key converted: it differs from a
	// plain hash of the seed too, so the label matters.
	h := sha256.Sum256(bytes.Repeat([]byte{1}, SeedSize))
	if ap == h {
		t.Fatal("static key equals SHA-256(seed)")
	}
}

func TestBinding(t *testing.T) {
	id := seeded(t, 3)
	b := id.Binding()
	if err := b.Verify(); err != nil {
		t.Fatal(err)
	}
	wire, _ := b.AppendBinary(nil)
	if len(wire) != BindingSize {
		t.Fatalf("binding is %d bytes", len(wire))
	}
	back, err := ParseBinding(wire)
	if err != nil || back != b {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := ParseBinding(wire[:BindingSize-1]); err == nil {
		t.Fatal("short binding parsed")
	}
	// Each field is covered: flip one bit anywhere and it fails.
	for i := range wire {
		bad := bytes.Clone(wire)
		bad[i] ^= 0x10
		bb, _ := ParseBinding(bad)
		if err := bb.Verify(); !errors.Is(err, ErrBadBinding) {
			t.Fatalf("flipping byte %d: %v", i, err)
		}
	}
	// Another identity's static key under this identity's signature fails.
	other := seeded(t, 4)
	if err := VerifySignature(id.PublicKey(), other.StaticPublic(), b.Sig[:]); !errors.Is(err, ErrBadBinding) {
		t.Fatalf("foreign static key accepted: %v", err)
	}
	if err := VerifySignature(id.PublicKey(), id.StaticPublic(), b.Sig[:]); err != nil {
		t.Fatal(err)
	}
}

func TestSignMessageDomainSeparation(t *testing.T) {
	id := seeded(t, 5)
	msg := []byte("heartbeat body")
	sig := id.SignMessage("poolrelay/v1 test-a", msg)
	if !VerifyMessage(id.PublicKey(), "poolrelay/v1 test-a", msg, sig) {
		t.Fatal("own signature rejected")
	}
	if VerifyMessage(id.PublicKey(), "poolrelay/v1 test-b", msg, sig) {
		t.Fatal("signature valid under another tag")
	}
	if VerifyMessage(seeded(t, 6).PublicKey(), "poolrelay/v1 test-a", msg, sig) {
		t.Fatal("signature valid under another key")
	}
	if VerifyMessage(id.PublicKey(), "poolrelay/v1 test-a", msg, sig[:63]) {
		t.Fatal("short signature accepted")
	}
	// Tag and message boundaries cannot be shifted: "ab"+"c" != "a"+"bc".
	if VerifyMessage(id.PublicKey(), "poolrelay/v1 test-", append([]byte("a"), msg...), sig) {
		t.Fatal("tag/message boundary is ambiguous")
	}
	// A tagged signature is not a plain signature of the same bytes.
	if ed25519.Verify(id.PublicKey().Ed25519(), msg, sig) {
		t.Fatal("tagged signature verifies as untagged")
	}
	for _, bad := range []Tag{"", Tag(bytes.Repeat([]byte("x"), MaxTagLen+1))} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("tag of %d bytes did not panic", len(bad))
				}
			}()
			id.SignMessage(bad, msg)
		}()
	}
}

func TestCryptoSigner(t *testing.T) {
	id := seeded(t, 7)
	var s crypto.Signer = id
	sig, err := s.Sign(nil, []byte("poolrelay-chq-v1..."), crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(s.Public().(ed25519.PublicKey), []byte("poolrelay-chq-v1..."), sig) {
		t.Fatal("crypto.Signer signature does not verify")
	}
	if _, err := s.Sign(nil, []byte("x"), crypto.SHA512); err == nil {
		t.Fatal("pre-hashed signing accepted")
	}
	if _, err := s.Sign(nil, []byte("x"), &ed25519.Options{Context: "c"}); err == nil {
		t.Fatal("Ed25519ctx signing silently ignored its context")
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "identity.key")
	id, created, err := LoadOrCreate(path, rand.Reader)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate: created=%v err=%v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %04o, want 0700", st.Mode().Perm())
	}
	again, created, err := LoadOrCreate(path, rand.Reader)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate: created=%v err=%v", created, err)
	}
	if again.PublicKey() != id.PublicKey() || again.StaticPublic() != id.StaticPublic() {
		t.Fatal("reloaded identity differs")
	}
	if err := again.Save(path); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Save over an existing key: %v, want fs.ErrExist", err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func TestLoadRefusesOpenPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	if err := seeded(t, 8).Save(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o700} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if mode&0o077 != 0 {
			if !errors.Is(err, ErrPermissions) {
				t.Errorf("mode %04o: %v, want ErrPermissions", mode, err)
			}
		} else if err != nil {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
	if _, err := Load(t.TempDir()); !errors.Is(err, ErrBadKeyFile) {
		t.Errorf("directory as key file: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := seeded(t, 9).Encode()
	cases := map[string][]byte{
		"empty":    nil,
		"garbage":  []byte("not a key"),
		"trailing": append(bytes.Clone(good), []byte("extra")...),
		"type":     bytes.Replace(good, []byte("PRIVATE KEY"), []byte("PUBLIC KEY"), 2),
	}
	for name, data := range cases {
		if _, err := Decode(data); !errors.Is(err, ErrBadKeyFile) {
			t.Errorf("%s: %v, want ErrBadKeyFile", name, err)
		}
	}
	if _, err := Decode(good); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := seeded(f, 10).Encode()
	f.Add(good)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := Decode(data)
		if err != nil {
			return
		}
		b := id.Binding()
		if b.Verify() != nil {
			t.Fatal("decoded identity has an invalid binding")
		}
	})
}

func FuzzParseBinding(f *testing.F) {
	w, _ := func() ([]byte, error) { b := seeded(f, 11).Binding(); return b.AppendBinary(nil) }()
	f.Add(w)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBinding(data)
		if err != nil {
			return
		}
		out, _ := b.AppendBinary(nil)
		if !bytes.Equal(out, data) {
			t.Fatal("binding does not round-trip")
		}
		_ = b.Verify()
	})
}

func BenchmarkSignHeartbeat(b *testing.B) {
	id := seeded(b, 12)
	msg := make([]byte, heartbeatSize)
	b.ReportAllocs()
	m := cputime.Start()
	for b.Loop() {
		id.SignMessage("poolrelay/v1 heartbeat", msg)
	}
	m.Report(b)
}

func BenchmarkVerifyHeartbeat(b *testing.B) {
	id := seeded(b, 12)
	msg := make([]byte, heartbeatSize)
	sig := id.SignMessage("poolrelay/v1 heartbeat", msg)
	b.ReportAllocs()
	m := cputime.Start()
	for b.Loop() {
		if !VerifyMessage(id.PublicKey(), "poolrelay/v1 heartbeat", msg, sig) {
			b.Fatal("verify failed")
		}
	}
	m.Report(b)
}

// heartbeatSize approximates a signed heartbeat body: header fields, nine
// telemetry values and the bilateral counters, about 160 bytes.
const heartbeatSize = 160
