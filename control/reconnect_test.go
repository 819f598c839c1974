package control

import (
	"sync"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/pool/transport"
)

// memStore is a PeerStore in memory, standing in for the daemon's file
// (control/peerstore, tested on its own).
type memStore struct {
	mu      sync.Mutex
	m       map[identity.PublicKey]KeptPeer
	puts    int
	removes int
}

func newMemStore() *memStore { return &memStore{m: map[identity.PublicKey]KeptPeer{}} }

func (s *memStore) Put(p KeptPeer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[p.Key] = p
	s.puts++
}

func (s *memStore) Remove(k identity.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	s.removes++
}

func (s *memStore) get(k identity.PublicKey) (KeptPeer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[k]
	return p, ok
}

func withStore(s *memStore) func(*Options) { return func(o *Options) { o.Peers = s } }

// TestRestartedRelayReconnects: R2 enrolls with R1; both keep each other.
// R2 dies without a word (its transport gone, as with kill -9), and a new
// R2 with the same identity and its persisted peers comes up elsewhere: it
// enrolls with R1 by itself, and R1 replaces the stale session at once
// rather than after peer_timeout.
func TestRestartedRelayReconnects(t *testing.T) {
	s1, s2 := newMemStore(), newMemStore()
	w1 := newWorldFull(t, 0x61, nil, nil, withStore(s1))
	w2 := newWorldFull(t, 0x62, nil, nil, withStore(s2))
	k1, k2 := w1.core.o.Identity.PublicKey(), w2.core.o.Identity.PublicKey()
	if _, err := w2.core.Enroll(ctx(t), transport.Endpoint{Addr: w1.relay.Addr()}, w1.relayA); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both ends keep the other", func() bool {
		_, ok1 := s1.get(k2)
		_, ok2 := s2.get(k1)
		return ok1 && ok2
	})
	if p, _ := s2.get(k1); p.Address != w1.relay.Addr() || p.Terms.Payment == 0 {
		t.Fatalf("R2 persisted %+v, want R1 at %v with its terms", p, w1.relay.Addr())
	}
	if p, _ := s1.get(k2); p.Address != w2.relay.Addr() {
		t.Fatalf("R1 persisted %+v, want R2 at %v", p, w2.relay.Addr())
	}
	// R2 dies: its socket goes first, so the CLOSEs of its shutdown are lost.
	w2.relay.Close()
	w2.cancel()
	w2.wg.Wait()
	if ps, _ := w1.core.Peers(ctx(t)); len(ps) != 1 {
		t.Fatalf("R1 lost R2 before it came back: %v", ps)
	}

	// The new R2: same identity, a fresh process (new port), the persisted set.
	// One clock for both, so that freshness checks agree.
	w3 := newWorldFull(t, 0x62, nil, nil, func(o *Options) { o.Peers, o.Clock = s2, w1.clk })
	w3.clk = w1.clk
	for k, p := range s2.m {
		if err := w3.core.Keep(ctx(t), Want{Key: k, Endpoint: transport.Endpoint{Addr: p.Address}}); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := w3.core.Reconnecting(ctx(t))
	if err != nil || len(rc) != 1 || rc[0].Key != k1 {
		t.Fatalf("reconnecting %+v %v", rc, err)
	}
	w1.clk.Advance(time.Second)
	w3.tickCore()
	eventually(t, "R2 back with R1", func() bool {
		ps, _ := w3.core.Peers(ctx(t))
		return len(ps) == 1 && ps[0].Key == k1
	})
	eventually(t, "R1 replaced the stale session", func() bool {
		ps, _ := w1.core.Peers(ctx(t))
		return len(ps) == 1 && ps[0].Endpoint.Addr == w3.relay.Addr()
	})
	if w1.core.Counter(PeersClosed) != 1 || w1.core.Counter(PeersTimedOut) != 0 {
		t.Fatalf("R1: closed %d timed out %d, want the stale session replaced", w1.core.Counter(PeersClosed), w1.core.Counter(PeersTimedOut))
	}
	if rc, _ := w3.core.Reconnecting(ctx(t)); len(rc) != 0 {
		t.Fatalf("still reconnecting: %+v", rc)
	}
	if p, _ := s1.get(k2); p.Address != w3.relay.Addr() {
		t.Fatalf("R1 still has R2 at %v, want %v", p.Address, w3.relay.Addr())
	}

	// Unenroll at R1: R2 is told, stops keeping R1, and does not come back.
	if err := w1.core.Unenroll(ctx(t), k2); err != nil {
		t.Fatal(err)
	}
	if _, ok := s1.get(k2); ok {
		t.Fatal("unenroll left R2 in R1's persistent set")
	}
	eventually(t, "R2 forgot R1", func() bool { _, ok := s2.get(k1); return !ok })
	for range 5 {
		w1.clk.Advance(time.Minute)
		w3.tickCore()
	}
	if ps, _ := w1.core.Peers(ctx(t)); len(ps) != 0 {
		t.Fatalf("R2 came back after being unenrolled: %+v", ps)
	}
}

// TestReconnectBacksOff: a kept peer that does not answer is tried again
// with growing, jittered delays, and shows as reconnecting meanwhile.
func TestReconnectBacksOff(t *testing.T) {
	w := newWorldFull(t, 0x63, func(c *Config) { c.EnrollTimeout = 2 * time.Second }, nil, withStore(newMemStore()))
	dead, err := transport.ListenUDP("127.0.0.1:0") // nobody answers there
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.Addr()
	dead.Close()
	k := seeded(t, 0x64).PublicKey()
	if err := w.core.Keep(ctx(t), Want{Key: k, Endpoint: transport.Endpoint{Addr: addr}}); err != nil {
		t.Fatal(err)
	}
	var starts []time.Time
	last := 0
	for range 120 {
		w.clk.Advance(500 * time.Millisecond)
		w.tickCore()
		rc, err := w.core.Reconnecting(ctx(t))
		if err != nil || len(rc) != 1 {
			t.Fatalf("%+v %v", rc, err)
		}
		if rc[0].Attempts != last {
			last = rc[0].Attempts
			starts = append(starts, w.clk.Now())
		}
	}
	if len(starts) < 4 {
		t.Fatalf("%d attempts in a minute", len(starts))
	}
	for i := 2; i < len(starts); i++ {
		gap := starts[i].Sub(starts[i-1])
		// Each attempt times out after 2 s, then waits half to all of
		// min(1s<<n, 30s).
		lo := 2*time.Second + min(reconnectMin<<(i-1), reconnectMax)/2 - 500*time.Millisecond
		if gap < lo || gap > 2*time.Second+reconnectMax+time.Second {
			t.Errorf("attempt %d came %v after the previous one, want at least %v", i+1, gap, lo)
		}
	}
	if got := w.core.Counter(Reconnects); got != uint64(len(starts)) {
		t.Errorf("reconnects counter %d, attempts seen %d", got, len(starts))
	}
}
