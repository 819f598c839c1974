package main

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/cheque"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/peer"
)

const (
	network  = 1
	numPeers = 4
)

// key returns a deterministic identity, so parent and child agree on who
// is who.
func key(name string) (ed25519.PrivateKey, peer.ID) {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "crashtest/"+name)
	k := ed25519.NewKeyFromSeed(seed)
	id, _ := peer.FromPublicKey(k.Public().(ed25519.PublicKey))
	return k, id
}

func peerKey(i int) (ed25519.PrivateKey, peer.ID) { return key(fmt.Sprint("peer", i)) }

// config has small thresholds, so cheques are issued every few rounds, and
// a short checkpoint interval, so kills land inside every kind of write.
func config() ledger.Config {
	c := ledger.DefaultConfig()
	c.PaymentThreshold = 1_000_000
	c.DisconnectThreshold = 1_250_000
	c.MinPaymentThreshold = 100_000
	c.InitialCredit = 1_250_000
	c.CheckpointInterval = 20 * time.Millisecond
	c.ClassTick = 100 * time.Millisecond
	return c
}

func openLedger(dir string) (*ledger.Ledger, ledger.Recovery, error) {
	k, _ := key("relay")
	return ledger.Open(ledger.Options{Config: config(), DataDir: dir, Network: network, Signer: k,
		Clock: clock.System{}, Log: logging.Nop()})
}

// acker writes one acknowledgement per write system call, unbuffered: a
// line under PIPE_BUF reaches the parent whole or not at all, and it is
// written only after the write it acknowledges is durable.
type acker struct {
	mu sync.Mutex
	w  *os.File
}

func (a *acker) ack(format string, args ...any) {
	line := fmt.Sprintf(format+"\n", args...)
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.w.WriteString(line); err != nil {
		os.Exit(3) // the parent is gone
	}
}

// child writes until it is killed.
func child(dir string) error {
	l, _, err := openLedger(dir)
	if err != nil {
		return err
	}
	out := &acker{w: os.Stdout}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	terms := account.Terms{Prices: account.Prices{Packet: 64, Byte: 1, ControlPacket: 64},
		Payment: 1_000_000, Disconnect: 1_250_000}
	type remote struct {
		key      ed25519.PrivateKey
		id       peer.ID
		cum, seq uint64
	}
	peers := make([]*remote, numPeers)
	for i := range peers {
		k, id := peerKey(i)
		if _, err := l.Connect(id, "crashtest", terms); err != nil {
			return err
		}
		v, err := l.Peer(id)
		if err != nil {
			return err
		}
		peers[i] = &remote{key: k, id: id, cum: v.Account.ReceivedTotal, seq: v.Account.ReceivedSeq}
	}
	fail := make(chan error, 8)

	// Journal writers: concurrent durable appends, sharing fsyncs.
	for w := 0; w < 3; w++ {
		go func() {
			for n := 0; ; n++ {
				p, err := l.Journal().AppendEvent(event.Config, &event.Text{Note: fmt.Sprintf("writer %d entry %d", w, n)})
				if err != nil {
					fail <- err
					return
				}
				out.ack("J %d %x", p.Index, p.Hash[:])
			}
		}()
	}

	// Cheques from peers: durable before ReceiveCheque returns.
	go func() {
		r := rand.New(rand.NewPCG(rng.Uint64(), 1))
		for {
			i := r.IntN(numPeers)
			p := peers[i]
			c := cheque.Cheque{Network: network, Issuer: p.id, Beneficiary: l.Self(),
				Cumulative: p.cum + 1 + r.Uint64N(50_000), Sequence: p.seq + 1, Date: uint64(time.Now().Unix())}
			s, err := cheque.Sign(c, p.key)
			if err != nil {
				fail <- err
				return
			}
			raw, _ := s.MarshalBinary()
			if _, err := l.ReceiveCheque(p.id, raw); err != nil {
				fail <- fmt.Errorf("cheque %d from peer %d: %w", c.Sequence, i, err)
				return
			}
			p.cum, p.seq = c.Cumulative, c.Sequence
			out.ack("R %d %d", i, c.Cumulative)
		}
	}()

	// Traffic, ticks (cheque issuance) and checkpoints, in this goroutine,
	// the only one that calls Observe, so a checkpoint's counters are known.
	epoch := uint64(time.Now().UnixNano())
	counters := make([]account.Counters, numPeers)
	index := make(map[peer.ID]int, numPeers)
	for i, p := range peers {
		counters[i].Epoch = epoch
		index[p.id] = i
	}
	var due []ledger.Outgoing
	for round := 0; ; round++ {
		select {
		case err := <-fail:
			return err
		default:
		}
		for i, p := range peers {
			c := &counters[i]
			c.RelayedBy.Packets += 10
			c.RelayedBy.Bytes += 1 + rng.Uint64N(60_000)
			c.RelayedFor.Packets += 5
			c.RelayedFor.Bytes += 1 + rng.Uint64N(20_000)
			if err := l.Observe(p.id, *c); err != nil {
				return err
			}
		}
		if _, err := l.Tick(); err != nil {
			return err
		}
		due = l.Due(due[:0])
		for _, o := range due {
			cum := binary.BigEndian.Uint64(o.Cheque[84:92])
			out.ack("I %d %d", index[o.Peer], cum)
			if rng.IntN(2) == 0 {
				l.ChequeAcked(o.Peer, cum)
			}
		}
		if round%3 == 0 {
			usage := make([]account.Counters, numPeers)
			for i, p := range peers {
				v, err := l.Peer(p.id)
				if err != nil {
					return err
				}
				usage[i] = v.Account.Usage
			}
			if err := l.Checkpoint(); err != nil {
				return err
			}
			for i, u := range usage {
				out.ack("C %d %d %d", i, u.RelayedBy.Bytes, u.RelayedFor.Bytes)
			}
		}
	}
}
