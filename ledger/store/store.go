// Package store keeps the ledger's per-peer state in bbolt, an embedded
// copy-on-write B+tree whose commits are atomic and fsync'ed: after a crash
// at any instant the file holds exactly the last committed state.
//
// The store is a checkpoint, not the commit point of cheques: a cheque is
// committed when its journal entry is durable, and the ledger replays journal
// cheques newer than the store on open (cheque totals are cumulative, so
// replay is idempotent). Traffic charges between checkpoints are the only
// state a crash can lose, and nothing is acknowledged on them.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/cheque"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/ledger/policy"
	"github.com/poolrelay/poolrelay/ledger/score"
)

// Sentinel errors.
var (
	// ErrWrongOwner: the store belongs to another identity or network, so its
	// balances are not ours to use.
	ErrWrongOwner = errors.New("store: belongs to another identity or network")
	// ErrLocked: another process has the store open.
	ErrLocked = errors.New("store: locked by another process")
	// ErrCorrupt: a record that does not decode.
	ErrCorrupt = errors.New("store: corrupt record")
)

var (
	bucketMeta  = []byte("meta")
	bucketPeers = []byte("peers")
	keyOwner    = []byte("owner")
)

// lockTimeout bounds the wait for bbolt's file lock: a second process must
// fail clearly, not hang.
const lockTimeout = 200 * time.Millisecond

// Peer is everything persisted about one peer.
type Peer struct {
	Account account.Account
	Policy  policy.State
	Score   score.Tracker
	// LastIn is the last cheque accepted from the peer, LastOut the last we
	// issued to it (nil when none).
	LastIn, LastOut *cheque.Signed
	// OutAcked is the cumulative total the peer has acknowledged receiving.
	OutAcked uint64
	// FirstSeen is when the account was created, Unix ns.
	FirstSeen int64
}

// Store is an open store.
type Store struct {
	db *bolt.DB
}

// Open opens (or creates) the store at path for the relay with identity self
// on network.
func Open(path string, self peer.ID, network uint32) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("store: %w", err)
	}
	owner := binary.BigEndian.AppendUint32(append([]byte(nil), self[:]...), network)
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketPeers); err != nil {
			return err
		}
		switch got := meta.Get(keyOwner); {
		case got == nil:
			return meta.Put(keyOwner, owner)
		case string(got) != string(owner):
			return fmt.Errorf("%w: %s", ErrWrongOwner, path)
		}
		return nil
	})
	if err != nil {
		db.Close()
		if errors.Is(err, ErrWrongOwner) {
			return nil, err
		}
		return nil, fmt.Errorf("store: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Load returns every stored peer.
func (s *Store) Load() ([]Peer, error) {
	var out []Peer
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPeers).ForEach(func(k, v []byte) error {
			var p Peer
			if err := p.UnmarshalBinary(v); err != nil {
				return fmt.Errorf("peer %x: %w", k, err)
			}
			if string(k) != string(p.Account.Peer[:]) {
				return fmt.Errorf("%w: key %x holds peer %s", ErrCorrupt, k, p.Account.Peer)
			}
			out = append(out, p)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}

// Put writes ps in one transaction and returns once it is durable.
func (s *Store) Put(ps []Peer) error {
	if len(ps) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPeers)
		var buf []byte
		for i := range ps {
			buf, _ = ps[i].AppendBinary(buf[:0])
			// bbolt keeps the value slice until commit: give it its own copy.
			if err := b.Put(ps[i].Account.Peer[:], append([]byte(nil), buf...)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// recordVersion starts each encoded Peer.
const recordVersion = 1

// AppendBinary appends the encoding of p: a version byte, then every field in
// declaration order, integers big-endian, floats as IEEE-754 bits, each
// optional cheque behind a presence byte.
func (p *Peer) AppendBinary(dst []byte) ([]byte, error) {
	a := &p.Account
	dst = append(dst, recordVersion)
	dst = append(dst, a.Peer[:]...)
	dst, _ = a.Ours.AppendBinary(dst)
	dst, _ = a.Theirs.AppendBinary(dst)
	u := binary.BigEndian.AppendUint64
	dst = u(dst, uint64(a.Balance))
	for _, v := range [...]uint64{a.Surplus, a.SentTotal, a.SentSeq, a.ReceivedTotal, a.ReceivedSeq} {
		dst = u(dst, v)
	}
	dst = a.Usage.AppendCanonical(dst)
	dst = a.Base.AppendCanonical(dst)
	dst = u(dst, a.Forgiven)
	dst = u(dst, a.ForgivenToUs)
	dst = append(dst, boolByte(a.Connected))
	dst = u(dst, uint64(a.ConnectedAt))
	dst = u(dst, uint64(a.ForgivenUntil))
	dst = append(dst, boolByte(p.Policy.Choked))
	dst = u(dst, uint64(p.Policy.ChokedAt))
	dst = u(dst, math.Float64bits(p.Score.By))
	dst = u(dst, math.Float64bits(p.Score.For))
	dst = u(dst, uint64(p.Score.At))
	dst = append(dst, byte(p.Score.Class))
	for _, c := range [...]*cheque.Signed{p.LastIn, p.LastOut} {
		dst = append(dst, boolByte(c != nil))
		if c != nil {
			dst, _ = c.AppendBinary(dst)
		}
	}
	dst = u(dst, p.OutAcked)
	return u(dst, uint64(p.FirstSeen)), nil
}

// UnmarshalBinary decodes what AppendBinary wrote.
func (p *Peer) UnmarshalBinary(b []byte) error {
	d := dec{b: b}
	if v := d.u8(); v != recordVersion {
		return fmt.Errorf("%w: version %d", ErrCorrupt, v)
	}
	var q Peer
	a := &q.Account
	copy(a.Peer[:], d.take(len(a.Peer)))
	d.terms(&a.Ours)
	d.terms(&a.Theirs)
	a.Balance = int64(d.u64())
	a.Surplus, a.SentTotal, a.SentSeq = d.u64(), d.u64(), d.u64()
	a.ReceivedTotal, a.ReceivedSeq = d.u64(), d.u64()
	d.counters(&a.Usage)
	d.counters(&a.Base)
	a.Forgiven, a.ForgivenToUs = d.u64(), d.u64()
	a.Connected = d.u8() != 0
	a.ConnectedAt, a.ForgivenUntil = int64(d.u64()), int64(d.u64())
	q.Policy.Choked = d.u8() != 0
	q.Policy.ChokedAt = int64(d.u64())
	q.Score.By, q.Score.For = math.Float64frombits(d.u64()), math.Float64frombits(d.u64())
	q.Score.At = int64(d.u64())
	q.Score.Class = score.Class(d.u8())
	q.LastIn, q.LastOut = d.cheque(), d.cheque()
	q.OutAcked = d.u64()
	q.FirstSeen = int64(d.u64())
	switch {
	case d.err != nil:
		return fmt.Errorf("%w: %v", ErrCorrupt, d.err)
	case len(d.b) != 0:
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	case q.Score.Class >= score.NumClasses:
		return fmt.Errorf("%w: class %d", ErrCorrupt, q.Score.Class)
	}
	*p = q
	return nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// dec reads fields in order; the first error sticks.
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return make([]byte, n)
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("truncated: need %d bytes, have %d", n, len(d.b))
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) u8() uint8   { return d.take(1)[0] }
func (d *dec) u64() uint64 { return binary.BigEndian.Uint64(d.take(8)) }

func (d *dec) terms(t *account.Terms) {
	if err := t.UnmarshalBinary(d.take(account.TermsSize)); err != nil && d.err == nil {
		d.err = err
	}
}

func (d *dec) counters(c *account.Counters) {
	c.Epoch = d.u64()
	c.RelayedFor = account.Traffic{Packets: d.u64(), Bytes: d.u64()}
	c.RelayedBy = account.Traffic{Packets: d.u64(), Bytes: d.u64()}
	c.ControlIn = account.Traffic{Packets: d.u64(), Bytes: d.u64()}
	c.ControlOut = account.Traffic{Packets: d.u64(), Bytes: d.u64()}
}

func (d *dec) cheque() *cheque.Signed {
	if d.u8() == 0 {
		return nil
	}
	b := d.take(cheque.SignedSize)
	if d.err != nil {
		return nil
	}
	s, err := cheque.Parse(b)
	if err != nil {
		d.err = err
		return nil
	}
	return &s
}
