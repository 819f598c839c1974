package relay

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/route"
	"github.com/poolrelay/poolrelay/internal/cacheline"
	"github.com/poolrelay/poolrelay/sched"
)

// Errors of the Tables' setters. Callers test them with errors.Is.
var (
	// ErrSlot means a key or peer slot beyond the sizes the Tables were made
	// with.
	ErrSlot = errors.New("relay: slot out of range")
	// ErrKeySize means a hop key that is not hopmac.KeySize bytes.
	ErrKeySize = errors.New("relay: hop key must be 32 bytes")
	// ErrNoKey means the slot has no key in the direction asked for.
	ErrNoKey = errors.New("relay: no hop key in the slot")
	// ErrSeqExhausted means the slot's transmit key has handed out its
	// last seq and must be replaced.
	ErrSeqExhausted = errors.New("relay: hop key sequence exhausted")
)

// Tables is what workers read and only the control core writes: the route
// table, the hop keys and the peers' classes. Readers never lock: routes are
// route.Table's wait-free snapshots, each key slot is an immutable hopSlot
// published through its own atomic pointer, and a peer's class and choke
// state are one atomic word.
//
// The setters may be called from any goroutine; a mutex serialises the key
// installs so that two of them never race on one slot's publication.
type Tables struct {
	routes  *route.Table
	workers int

	// mu serialises SetHopKeys and ClearHopKeys (not readers).
	mu sync.Mutex
	// keys[slot] is the slot's current keys, nil when it has none.
	keys []atomic.Pointer[hopSlot]
	// peers[slot] is the peer's peerUncredited | class<<1 | choked.
	peers []atomic.Uint32
	// trace is the running capture (Engine.Trace), nil almost always.
	trace atomic.Pointer[trace]
	// gmac is set when hop MACs go through intel-ipsec-mb (every slot's
	// keys are then expanded for it too); engine names the path taken.
	gmac   bool
	engine string
}

// hopSlot is one key slot as published: the keys of one hop session with
// one peer, prepared by the control core so that workers never clone or
// allocate. It is immutable once published, except each worker's own replay
// window, which only that worker writes.
type hopSlot struct {
	// rx[i] and tx[i] are worker i's clones of the receive and transmit
	// keys (hopmac.Key carries per-goroutine scratch); nil slices when the
	// slot has no key in that direction.
	rx, tx []*hopmac.Key
	// win[i] is worker i's replay window over the seqs the peer sends under
	// rx. A fresh slot brings fresh (empty) windows, which is how installing
	// a key resets them without the workers having to notice.
	win []paddedWindow
	// seq numbers the frames sent under tx, shared by all workers (it is
	// atomic): a nonce must never repeat under a key, whichever worker sends.
	seq *hopmac.Sequence
	// ctl is the control core's clone of the transmit key, for Stamp
	// (serialised by Tables.mu).
	ctl *hopmac.Key
	// open marks the slot of an unauthenticated lab peer
	// (SetUnauthenticated): its frames are relayed without a MAC or replay
	// check, and frames towards it leave with their hop seq and MAC as
	// they came. It has no keys.
	open bool
	// rxC and txC are the same keys expanded for intel-ipsec-mb, shared
	// read-only by every worker; nil without it (Tables.gmac) or without
	// a key in that direction.
	rxC, txC *dpdk.GMACKey
}

// paddedWindow keeps each worker's window on cache lines of its own: the
// windows of one slot are allocated together and written by different cores.
type paddedWindow struct {
	w hopmac.Window
	_ cacheline.Pad
}

// NewTables returns empty tables over routes for workers workers, peers peer
// slots (the counters' peer dimension) and keySlots hop key slots. Every
// peer starts in class sched.Normal and not choked.
func NewTables(routes *route.Table, workers, peers, keySlots int) (*Tables, error) {
	if routes == nil || workers < 1 || peers < 1 || keySlots < 1 {
		return nil, fmt.Errorf("relay: tables need a route table, workers, peers and key slots (got %d, %d, %d)", workers, peers, keySlots)
	}
	t := &Tables{
		routes:  routes,
		workers: workers,
		keys:    make([]atomic.Pointer[hopSlot], keySlots),
		peers:   make([]atomic.Uint32, peers),
	}
	for i := range t.peers {
		t.peers[i].Store(uint32(sched.Normal) << 1)
	}
	// Chosen once, for the life of the tables: intel-ipsec-mb where the
	// CPU has AES-NI, else Go's GCM (crypto/hopmac), whose tags are the
	// same (dpdk's differential tests).
	name, err := gmacEngine()
	if err == nil {
		t.gmac, t.engine = true, name
	} else {
		t.engine = "Go crypto/cipher GCM (" + err.Error() + ")"
	}
	return t, nil
}

// gmacEngine is dpdk.GMACEngine, which NewTables asks once per Tables: a
// variable so that a test can act out a CPU without AES-NI (ErrNoGMAC)
// on one that has it, and run the fallback end to end.
var gmacEngine = dpdk.GMACEngine

// MACEngine names what computes the workers' hop MACs, e.g.
// "intel-ipsec-mb 1.3.0 (avx512)", for the start-up log.
func (t *Tables) MACEngine() string { return t.engine }

// UseGoMACs makes the workers compute hop MACs with crypto/hopmac in Go
// even where intel-ipsec-mb could: for benchmarks and tests comparing the
// two. Call it before installing keys and making workers.
func (t *Tables) UseGoMACs() {
	t.gmac, t.engine = false, "Go crypto/cipher GCM (chosen)"
}

// Routes returns the route table, which the control core updates directly.
func (t *Tables) Routes() *route.Table { return t.routes }

// Workers returns the number of workers the tables prepare key clones for.
func (t *Tables) Workers() int { return t.workers }

// KeySlots returns the number of hop key slots.
func (t *Tables) KeySlots() int { return len(t.keys) }

// Peers returns the number of peer slots.
func (t *Tables) Peers() int { return len(t.peers) }

// SetHopKeys installs the keys of one hop session with one peer in slot:
// rx verifies the frames that peer sends us, tx MACs the frames we send it.
// Either may be nil for a slot used in one direction only. Installing resets
// the slot's replay windows (every worker's) and its egress sequence, since
// both belong to the key they were used under.
//
// It clones each key once per worker here, on the control core, so that
// workers pick up ready clones with one atomic load.
func (t *Tables) SetHopKeys(slot uint32, rx, tx []byte) error {
	return t.SetHopKeysAt(slot, rx, tx, 0)
}

// SetHopKeysAt is SetHopKeys with the egress sequence starting at firstSeq
// instead of 0: for keys that outlive the relay process (a static lab
// peer's pre-shared key, hopmac.ClockSeq), whose seqs must never restart.
func (t *Tables) SetHopKeysAt(slot uint32, rx, tx []byte, firstSeq uint64) error {
	if int64(slot) >= int64(len(t.keys)) {
		return fmt.Errorf("%w: key slot %d of %d", ErrSlot, slot, len(t.keys))
	}
	if (rx != nil && len(rx) != hopmac.KeySize) || (tx != nil && len(tx) != hopmac.KeySize) {
		return ErrKeySize
	}
	s := &hopSlot{win: make([]paddedWindow, t.workers), seq: new(hopmac.Sequence)}
	s.seq.StartAt(firstSeq)
	var err error
	if rx != nil {
		s.rx = clones(hopmac.New(rx), t.workers)
		if t.gmac {
			if s.rxC, err = dpdk.NewGMACKey(rx); err != nil {
				return err
			}
		}
	}
	if tx != nil {
		s.tx = clones(hopmac.New(tx), t.workers)
		s.ctl = s.tx[0].Clone()
		if t.gmac {
			if s.txC, err = dpdk.NewGMACKey(tx); err != nil {
				return err
			}
		}
	}
	t.mu.Lock()
	t.keys[slot].Store(s)
	t.mu.Unlock()
	return nil
}

func clones(k *hopmac.Key, n int) []*hopmac.Key {
	ks := make([]*hopmac.Key, n)
	ks[0] = k
	for i := 1; i < n; i++ {
		ks[i] = k.Clone()
	}
	return ks
}

// SetUnauthenticated makes slot the key slot of an unauthenticated lab
// peer: a replay tool that can compute neither hop MACs nor fresh seqs
// (Pktgen-DPDK replaying a capture). Frames whose route names it as the
// ingress key are relayed without verification (and charged to the route's
// ingress peer like any other); frames whose route names it as the egress
// key are sent without a new seq and MAC, since the tool checks none. A
// route between it and an authenticated peer still verifies or signs on
// that peer's side. Only the operator's configuration asks for this
// (control's static peers with unauthenticated = true); ClearHopKeys or
// SetHopKeys ends it.
func (t *Tables) SetUnauthenticated(slot uint32) error {
	if int64(slot) >= int64(len(t.keys)) {
		return fmt.Errorf("%w: key slot %d of %d", ErrSlot, slot, len(t.keys))
	}
	s := &hopSlot{open: true, seq: new(hopmac.Sequence)}
	t.mu.Lock()
	t.keys[slot].Store(s)
	t.mu.Unlock()
	return nil
}

// Unauthenticated reports whether slot is an unauthenticated lab peer's.
func (t *Tables) Unauthenticated(slot uint32) bool {
	if int64(slot) >= int64(len(t.keys)) {
		return false
	}
	s := t.keys[slot].Load()
	return s != nil && s.open
}

// ClearHopKeys removes the keys of slot: frames of routes through it are
// dropped with ReasonNoKey from the workers' next burst on.
func (t *Tables) ClearHopKeys(slot uint32) {
	if int64(slot) >= int64(len(t.keys)) {
		return
	}
	t.mu.Lock()
	t.keys[slot].Store(nil)
	t.mu.Unlock()
}

// Stamp writes the next seq of slot's transmit key and the hop MAC into
// pool, a POOL frame (outer header and payload), as a worker does on egress:
// for frames the control core sends on a hop. The caller fixes any UDP
// checksum (wire.UDPPatch around the call). It returns ErrNoKey or
// ErrSeqExhausted and leaves pool alone when it cannot sign.
func (t *Tables) Stamp(slot uint32, pool []byte) error {
	if int64(slot) >= int64(len(t.keys)) {
		return fmt.Errorf("%w: key slot %d of %d", ErrSlot, slot, len(t.keys))
	}
	if len(pool) < hopmac.HeaderSize {
		return fmt.Errorf("relay: stamp: %d bytes, shorter than a POOL header", len(pool))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.keys[slot].Load()
	if s == nil || s.ctl == nil {
		return ErrNoKey
	}
	seq, ok := s.seq.Next()
	if !ok {
		return ErrSeqExhausted
	}
	hopmac.SetSeq(pool, seq)
	s.ctl.Sign(pool)
	return nil
}

// Sent returns how many seqs the transmit key of slot has handed out (for
// the control core's rekey decision), 0 for a slot without one.
func (t *Tables) Sent(slot uint32) uint64 {
	if int64(slot) >= int64(len(t.keys)) {
		return 0
	}
	if s := t.keys[slot].Load(); s != nil {
		return s.seq.Sent()
	}
	return 0
}

// SetPeer sets the class of the peer in slot peer (the scheduler class of
// the frames relayed for it) and whether it is choked: a choked peer's frames
// are dropped with ReasonDebt. It returns ErrSlot for a slot beyond Peers
// (the contract had no error; an out-of-range slot must not be silent).
// The credit bit (SetCredit) is kept as it was.
func (t *Tables) SetPeer(peer uint32, class sched.Class, choked bool) error {
	if int64(peer) >= int64(len(t.peers)) {
		return fmt.Errorf("%w: peer slot %d of %d", ErrSlot, peer, len(t.peers))
	}
	if !class.Valid() {
		return fmt.Errorf("relay: invalid class %d", class)
	}
	v := uint32(class) << 1
	if choked {
		v |= 1
	}
	t.update(peer, peerClassChoked, v)
	return nil
}

// The peer word's fields: class<<1 | choked, and the credit bit.
const (
	peerClassChoked = 0x7
	// peerUncredited: frames relayed for the peer give no credit to the
	// peer they are handed to.
	peerUncredited = 0x8
)

// update replaces the bits mask of peer slot peer's word with v, leaving
// the others: the control core's setters may run on more than one
// goroutine.
func (t *Tables) update(peer, mask, v uint32) {
	w := &t.peers[peer]
	for {
		old := w.Load()
		if w.CompareAndSwap(old, old&^mask|v) {
			return
		}
	}
}

// SetCredit sets whether frames relayed for the peer in slot peer count as
// contribution of the peer they are handed to (score.Config.Credits, as
// the ledger publishes it): frames of a peer that gives no credit are
// counted towards their next hop under counters.Core.RelayedUncredited
// too, which the ledger leaves out of that next hop's score. A slot
// credits until told otherwise. It returns ErrSlot for a slot beyond
// Peers.
func (t *Tables) SetCredit(peer uint32, credits bool) error {
	if int64(peer) >= int64(len(t.peers)) {
		return fmt.Errorf("%w: peer slot %d of %d", ErrSlot, peer, len(t.peers))
	}
	v := uint32(peerUncredited)
	if credits {
		v = 0
	}
	t.update(peer, peerUncredited, v)
	return nil
}

// Credit reports whether frames relayed for peer give credit (SetCredit);
// a slot beyond Peers does.
func (t *Tables) Credit(peer uint32) bool {
	if int64(peer) >= int64(len(t.peers)) {
		return true
	}
	return t.peers[peer].Load()&peerUncredited == 0
}

// Peer returns the class and choke state of peer; a slot beyond Peers reads
// as sched.Normal, not choked.
func (t *Tables) Peer(peer uint32) (class sched.Class, choked bool) {
	if int64(peer) >= int64(len(t.peers)) {
		return sched.Normal, false
	}
	v := t.peers[peer].Load()
	return sched.Class(v & peerClassChoked >> 1), v&1 != 0
}
