package ledger

import (
	"crypto/ed25519"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/journal"
	"github.com/poolrelay/poolrelay/ledger/peer"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testConfig has small thresholds so that tests see cheques quickly: a
// newcomer may owe 125 kB, a settled peer 1.25 MB.
func testConfig() Config {
	c := DefaultConfig()
	c.PaymentThreshold = 1_000_000
	c.DisconnectThreshold = 1_250_000
	c.MinPaymentThreshold = 100_000
	c.InitialCredit = 125_000
	return c
}

type node struct {
	t   testing.TB
	l   *Ledger
	key ed25519.PrivateKey
	id  peer.ID
	dir string
	clk *clock.Fake
	cfg Config
	rec Recovery
}

func keyOf(name string) (ed25519.PrivateKey, peer.ID) {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, name)
	k := ed25519.NewKeyFromSeed(seed)
	id, _ := peer.FromPublicKey(k.Public().(ed25519.PublicKey))
	return k, id
}

func newNode(t testing.TB, name string, clk *clock.Fake, cfg Config) *node {
	t.Helper()
	k, id := keyOf(name)
	n := &node{t: t, key: k, id: id, dir: filepath.Join(t.TempDir(), name), clk: clk, cfg: cfg}
	n.open()
	return n
}

func (n *node) open() {
	n.t.Helper()
	l, rec, err := Open(Options{Config: n.cfg, DataDir: n.dir, Network: 1, Signer: n.key, Clock: n.clk,
		Log: logging.Nop(), Rand: rand.New(rand.NewPCG(1, uint64(n.id[0])))})
	if err != nil {
		n.t.Fatal(err)
	}
	n.l, n.rec = l, rec
}

func (n *node) close() {
	n.t.Helper()
	if err := n.l.Close(); err != nil {
		n.t.Fatal(err)
	}
}

// connect enrolls a and b with each other.
func connect(t testing.TB, a, b *node) {
	t.Helper()
	if _, err := a.l.Connect(b.id, "b", b.l.Terms(a.id)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.l.Connect(a.id, "a", a.l.Terms(b.id)); err != nil {
		t.Fatal(err)
	}
}

func (n *node) view(p peer.ID) View {
	n.t.Helper()
	v, err := n.l.Peer(p)
	if err != nil {
		n.t.Fatal(err)
	}
	return v
}

// entries returns the journal's records of type typ.
func (n *node) entries(typ event.Type) []event.Body {
	n.t.Helper()
	if err := n.l.j.Sync(); err != nil {
		n.t.Fatal(err)
	}
	var out []event.Body
	err := n.l.j.Records(1, func(r *journal.Record) error {
		if r.Type == typ {
			b, err := r.Event()
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		return nil
	})
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

func traffic(epoch, forBytes, byBytes uint64) account.Counters {
	return account.Counters{Epoch: epoch,
		RelayedFor: account.Traffic{Packets: forBytes / 1000, Bytes: forBytes},
		RelayedBy:  account.Traffic{Packets: byBytes / 1000, Bytes: byBytes}}
}

// pendingCheques counts issued cheques not yet acknowledged.
func (l *Ledger) pendingCheques() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := 0
	for _, e := range l.peers {
		e.mu.Lock()
		if e.pending {
			n++
		}
		e.mu.Unlock()
	}
	return n
}
