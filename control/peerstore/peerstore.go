// Package peerstore keeps the relay peers a relay keeps sessions with in a
// small file beside its ledger, so that a relay restarted after a crash or a
// reboot enrolls with them again by itself (control.Core.Keep).
//
// The file is JSON, rewritten whole on every change: written to a temporary
// file, fsync'ed, renamed over the old one, and the directory fsync'ed. A
// crash at any instant leaves the old set or the new one, never a mix. The
// set is small (one entry per relay peer), so a rewrite costs one small
// write and two fsyncs, and happens only when a peer is added, moves, or
// announces new terms, never on a reconnection.
//
// Only peers the control core kept are here: end nodes are not (they enroll
// with us), and neither are peers a configuration declares, which the
// configuration brings back itself.
package peerstore

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/control"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/internal/atomicfile"
	"github.com/poolrelay/poolrelay/ledger/account"
)

// FileName is the store's file in the relay's data directory.
const FileName = "peers.json"

// version is the file format's version.
const version = 1

// MaxFile bounds the file read at start: thousands of peers fit in it, and a
// file past it is not one this package wrote.
const MaxFile = 4 << 20

// ErrCorrupt: the file does not decode, or holds an entry that makes no
// sense. The relay refuses to start on it rather than forget its peers
// silently; the message names the file and the entry.
var ErrCorrupt = errors.New("peerstore: corrupt file")

// entry is one peer as the file holds it.
type entry struct {
	Identity string        `json:"identity"`
	Address  string        `json:"address"`
	Terms    account.Terms `json:"terms"`
	Updated  time.Time     `json:"updated"`
}

type file struct {
	Version int     `json:"version"`
	Peers   []entry `json:"peers"`
}

// Store is the persistent set. Its methods are safe for concurrent use.
type Store struct {
	path string
	log  zerolog.Logger

	mu    sync.Mutex
	peers map[identity.PublicKey]entry
	// failing is true while the last write failed (a full disk): the
	// failure is logged once, and the next change writes the whole set.
	failing bool
}

// Open reads the store at path (a missing file is an empty set).
func Open(path string, log zerolog.Logger) (*Store, error) {
	s := &Store{path: path, log: log, peers: map[identity.PublicKey]entry{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("peerstore: %w", err)
	case len(b) > MaxFile:
		return nil, fmt.Errorf("%w: %s is %d bytes, above %d", ErrCorrupt, path, len(b), MaxFile)
	}
	peers, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	for _, p := range peers {
		s.peers[p.Key] = entry{Identity: p.Key.String(), Address: p.Address.String(), Terms: p.Terms}
	}
	return s, nil
}

// Decode parses a store file strictly: unknown fields, a wrong version, a
// bad identity or address, a peer listed twice are ErrCorrupt.
func Decode(b []byte) ([]control.KeptPeer, error) {
	var f file
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the set", ErrCorrupt)
	}
	if f.Version != version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, f.Version, version)
	}
	out := make([]control.KeptPeer, 0, len(f.Peers))
	seen := map[identity.PublicKey]bool{}
	for i, e := range f.Peers {
		var k identity.PublicKey
		raw, err := hex.DecodeString(e.Identity)
		if err != nil || len(raw) != len(k) {
			return nil, fmt.Errorf("%w: peer %d: identity %q is not %d hex bytes", ErrCorrupt, i, e.Identity, len(k))
		}
		copy(k[:], raw)
		ap, err := netip.ParseAddrPort(e.Address)
		if err != nil || !ap.Addr().IsValid() || ap.Port() == 0 {
			return nil, fmt.Errorf("%w: peer %d: address %q is not IP:PORT", ErrCorrupt, i, e.Address)
		}
		if seen[k] {
			return nil, fmt.Errorf("%w: peer %s listed twice", ErrCorrupt, e.Identity)
		}
		seen[k] = true
		out = append(out, control.KeptPeer{Key: k, Address: ap, Terms: e.Terms})
	}
	return out, nil
}

// Peers lists the set, ordered by identity.
func (s *Store) Peers() []control.KeptPeer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]control.KeptPeer, 0, len(s.peers))
	for k, e := range s.peers {
		ap, _ := netip.ParseAddrPort(e.Address)
		out = append(out, control.KeptPeer{Key: k, Address: ap, Terms: e.Terms})
	}
	slices.SortFunc(out, func(a, b control.KeptPeer) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	return out
}

// Has reports whether key is in the set.
func (s *Store) Has(key identity.PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.peers[key]
	return ok
}

// Put adds or updates a peer and writes the set (control.PeerStore). A
// failed write is logged (once until a write succeeds again) and kept in
// memory: the next change writes it all.
func (s *Store) Put(p control.KeptPeer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peers[p.Key] = entry{Identity: p.Key.String(), Address: p.Address.String(), Terms: p.Terms, Updated: time.Now().UTC()}
	s.saveLocked()
}

// Remove deletes a peer and writes the set (control.PeerStore).
func (s *Store) Remove(key identity.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.peers[key]; !ok {
		return
	}
	delete(s.peers, key)
	s.saveLocked()
}

func (s *Store) saveLocked() {
	err := s.write()
	switch {
	case err != nil && !s.failing:
		s.failing = true
		s.log.Error().Err(err).Str("path", s.path).Msg("peerstore: cannot save the kept peers; retried at the next change")
	case err == nil && s.failing:
		s.failing = false
		s.log.Info().Str("path", s.path).Msg("peerstore: kept peers saved again")
	}
}

// write replaces the file atomically with the set.
func (s *Store) write() error {
	f := file{Version: version, Peers: make([]entry, 0, len(s.peers))}
	for _, e := range s.peers {
		f.Peers = append(f.Peers, e)
	}
	slices.SortFunc(f.Peers, func(a, b entry) int { return bytes.Compare([]byte(a.Identity), []byte(b.Identity)) })
	b, err := json.MarshalIndent(&f, "", "  ")
	if err != nil {
		return fmt.Errorf("peerstore: %w", err)
	}
	b = append(b, '\n')
	if err := atomicfile.WriteFile(s.path, b, atomicfile.Options{}); err != nil {
		return fmt.Errorf("peerstore: %w", err)
	}
	return nil
}
