package hopmac

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Pre-shared hop keys of static lab peers.
//
// A lab peer (a traffic generator on the relay's own machine, declared in
// the relay's configuration) has no handshake, so its hop keys cannot come
// from one. Instead the operator writes 32 random bytes to a key file that
// the relay and the generator both read, and each derives from it the two
// direction keys a handshake would have given: one for the frames the peer
// sends the relay and one for the frames the relay sends the peer. Two keys,
// not one, because each end numbers its own frames from zero: under a
// single key the relay's first frame and the generator's first frame would
// share a GMAC nonce (see the package doc on nonces).

// Labels of the two direction keys derived from a pre-shared key. Changing
// them changes every lab key.
const (
	pskToRelayInfo   = "poolrelay/v1 lab hop peer->relay"
	pskFromRelayInfo = "poolrelay/v1 lab hop relay->peer"
)

// maxPSKFile bounds what LoadPSK reads: the hex form with a newline is 65
// bytes, and a path pointed at something huge should fail fast.
const maxPSKFile = 4096

// Errors of LoadPSK, for callers that tell them apart.
var (
	// ErrPSKPermissions: the key file is readable or writable by group or
	// others, as crypto/identity refuses for the identity key.
	ErrPSKPermissions = errors.New("hopmac: key file permissions too open")
	// ErrPSKFormat: the key file holds neither 32 bytes nor 64 hex digits.
	ErrPSKFormat = errors.New("hopmac: key file must hold 32 bytes or 64 hex digits")
)

// LoadPSK reads a pre-shared hop key from path: exactly 32 bytes, or 64 hex
// digits with optional surrounding white space (what
// `head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n'` writes, or
// `openssl rand -hex 32`). It refuses a file that is not regular or whose
// mode grants anything to group or others (ErrPSKPermissions), and a short,
// long or malformed one (ErrPSKFormat); each error names the path.
func LoadPSK(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hopmac: %w", err)
	}
	defer f.Close()
	// The mode of the file read, not of whatever the path names later.
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("hopmac: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrPSKFormat, path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, more open than 0600 (run chmod 600 %s)",
			ErrPSKPermissions, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPSKFile+1))
	if err != nil {
		return nil, fmt.Errorf("hopmac: reading %s: %w", path, err)
	}
	k, err := ParsePSK(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s, %d bytes)", err, path, len(data))
	}
	return k, nil
}

// ParsePSK decodes a key file's contents as LoadPSK does.
func ParsePSK(data []byte) ([]byte, error) {
	if len(data) == KeySize {
		return bytes.Clone(data), nil
	}
	t := bytes.TrimSpace(data)
	if len(t) != 2*KeySize {
		return nil, ErrPSKFormat
	}
	k := make([]byte, KeySize)
	if _, err := hex.Decode(k, t); err != nil {
		return nil, ErrPSKFormat
	}
	return k, nil
}

// LabKeys derives the two direction keys of a pre-shared key: toRelay
// authenticates the frames the lab peer sends the relay (the relay's
// receive key, the generator's send key), fromRelay those the relay sends
// the peer. HKDF-Expand over SHA-256 with a label per direction: the
// pre-shared key is already 32 random bytes, what Expand asks of its input.
// It panics on a key that is not KeySize bytes (LoadPSK never returns one).
func LabKeys(psk []byte) (toRelay, fromRelay []byte) {
	if len(psk) != KeySize {
		panic("hopmac: pre-shared key must be 32 bytes")
	}
	var err error
	if toRelay, err = hkdf.Expand(sha256.New, psk, pskToRelayInfo, KeySize); err != nil {
		panic(err) // only for lengths beyond 255 hashes
	}
	if fromRelay, err = hkdf.Expand(sha256.New, psk, pskFromRelayInfo, KeySize); err != nil {
		panic(err)
	}
	return toRelay, fromRelay
}

// ClockSeq is the first seq to send under a key derived from a pre-shared
// key (LabKeys): 64 times the microseconds since the Unix epoch. Such a key
// outlives the processes that use it, and a process that started its seq
// at 0 again would repeat the nonces of its previous run (a GMAC key's
// worst failure) and be refused by every receiver whose replay window saw
// them. Starting from the clock keeps each run above the last as long as
// that run averaged fewer than 64 frames per microsecond (64 Mpps), far
// above what one core sends, and stays below MaxSeq (2^60) until about the
// year 2540.
func ClockSeq(now time.Time) uint64 { return uint64(now.UnixMicro()) * 64 }

// StartAt makes the next seq handed out first (ClockSeq for pre-shared
// keys). Call it before the Sequence is shared.
func (s *Sequence) StartAt(first uint64) { s.next.Store(min(first, MaxSeq)) }
