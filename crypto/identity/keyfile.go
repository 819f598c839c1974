package identity

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/poolrelay/poolrelay/internal/atomicfile"
)

// pemType is the PEM block type of the key file: standard PKCS#8, so the
// usual tools can read the key.
const pemType = "PRIVATE KEY"

// maxKeyFile bounds what Load reads: a PKCS#8 Ed25519 PEM is 119 bytes, and a
// key file path pointed at something huge should fail fast, not fill memory.
const maxKeyFile = 4096

// Load reads the identity at path. It refuses a file whose permission bits
// grant anything to group or others (ErrPermissions) and anything that is not
// a regular file.
func Load(path string) (*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the mode checked is the mode of the
	// file read.
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrBadKeyFile, path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, more open than 0600 (run chmod 600 %s)",
			ErrPermissions, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("identity: reading %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadKeyFile, path, maxKeyFile)
	}
	id, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}

// Decode parses the PEM PKCS#8 form written by Encode.
func Decode(data []byte) (*Identity, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != pemType {
		return nil, fmt.Errorf("%w: no %q PEM block", ErrBadKeyFile, pemType)
	}
	if len(block.Headers) != 0 || len(trimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: unexpected PEM headers or trailing data", ErrBadKeyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: key is %T, not Ed25519", ErrBadKeyFile, k)
	}
	return FromSeed(priv.Seed())
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// Encode returns the identity as a PEM PKCS#8 private key.
func (id *Identity) Encode() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(id.priv)
	if err != nil {
		return nil, fmt.Errorf("identity: encoding key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), nil
}

// Save writes the identity to path with mode 0600, atomically and durably.
// It fails if path already exists (fs.ErrExist): an identity is never
// overwritten by accident.
func (id *Identity) Save(path string) error {
	data, err := id.Encode()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	// NoReplace: link, unlike rename, refuses to replace an existing file,
	// so a second process racing to create the identity gets fs.ErrExist
	// and loads the winner's key instead of silently replacing it.
	if err := atomicfile.WriteFile(path, data, atomicfile.Options{Perm: 0o600, NoReplace: true}); err != nil {
		return fmt.Errorf("identity: saving key: %w", err)
	}
	return nil
}

// LoadOrCreate loads the identity at path, creating it from rand first if
// the file does not exist. created reports whether this call created it.
func LoadOrCreate(path string, rand io.Reader) (id *Identity, created bool, err error) {
	id, err = Load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, false, err
	}
	id, err = Generate(rand)
	if err != nil {
		return nil, false, err
	}
	switch err := id.Save(path); {
	case err == nil:
		return id, true, nil
	case errors.Is(err, fs.ErrExist):
		// Another process created it between our Load and Save: use theirs.
		id, err = Load(path)
		return id, false, err
	default:
		return nil, false, err
	}
}
