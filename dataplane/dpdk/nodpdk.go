//go:build !linux || !cgo

package dpdk

import (
	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane"
)

// This file gives builds without cgo (or outside Linux) the binding's API
// with nothing behind it: Init returns ErrNoDPDK, so no EAL, and therefore
// no port, pool, ring, burst or worker, can ever exist. The methods below
// are there for the compiler; TestStubAPI keeps them in step with the cgo
// build.

// EAL is the initialised DPDK environment; without cgo there is none.
type EAL struct{}

// Init returns ErrNoDPDK: this build cannot reach DPDK.
func Init(cfg dataplane.EALConfig, devices []string, log zerolog.Logger) (*EAL, error) {
	return nil, ErrNoDPDK
}

// Args returns nil.
func (e *EAL) Args() []string { return nil }

// TSCHz returns 0.
func (e *EAL) TSCHz() uint64 { return 0 }

// Cores returns nil.
func (e *EAL) Cores() []int { return nil }

// RuntimeDir returns "".
func (e *EAL) RuntimeDir() string { return "" }

// Close returns ErrNoDPDK.
func (e *EAL) Close() error { return ErrNoDPDK }

// Mempool is a packet-buffer pool.
type Mempool struct{}

// NewMempool returns ErrNoDPDK.
func (e *EAL) NewMempool(name string, n, cache, dataRoom, socket int) (*Mempool, error) {
	return nil, ErrNoDPDK
}

// Name returns "".
func (p *Mempool) Name() string { return "" }

// Socket returns -1.
func (p *Mempool) Socket() int { return -1 }

// Size returns 0.
func (p *Mempool) Size() int { return 0 }

// DataRoom returns 0.
func (p *Mempool) DataRoom() int { return 0 }

// Avail returns 0.
func (p *Mempool) Avail() int { return 0 }

// InUse returns 0.
func (p *Mempool) InUse() int { return 0 }

// AllocBulk returns ErrNoDPDK.
func (p *Mempool) AllocBulk(ms []*Mbuf) error { return ErrNoDPDK }

// FreeBulk does nothing.
func FreeBulk(ms []*Mbuf) {}

// Free does nothing.
func (m *Mbuf) Free() {}

// MbufVec is an array of mbuf pointers in C memory.
type MbufVec struct{}

// NewMbufVec returns ErrNoDPDK.
func NewMbufVec(n int) (*MbufVec, error) { return nil, ErrNoDPDK }

// Mbufs returns nil.
func (v *MbufVec) Mbufs() []*Mbuf { return nil }

// Close does nothing.
func (v *MbufVec) Close() {}

// Pools hands out one mempool per NUMA socket.
type Pools struct{}

// NewPools returns an empty Pools.
func (e *EAL) NewPools(name string, n, cache, dataRoom int) *Pools { return &Pools{} }

// For returns ErrNoDPDK.
func (p *Pools) For(socket int) (*Mempool, error) { return nil, ErrNoDPDK }

// Ring is an rte_ring of mbuf pointers.
type Ring struct{}

// NewRing returns ErrNoDPDK.
func (e *EAL) NewRing(name string, size, socket int, mode RingMode) (*Ring, error) {
	return nil, ErrNoDPDK
}

// Name returns "".
func (r *Ring) Name() string { return "" }

// Size returns 0.
func (r *Ring) Size() int { return 0 }

// Count returns 0.
func (r *Ring) Count() int { return 0 }

// EnqueueBurst returns 0.
func (r *Ring) EnqueueBurst(ms []*Mbuf) int { return 0 }

// DequeueBurst returns 0.
func (r *Ring) DequeueBurst(ms []*Mbuf) int { return 0 }

// Port is a started DPDK port.
type Port struct{}

// OpenPort returns ErrNoDPDK.
func (e *EAL) OpenPort(cfg dataplane.PortConfig, workers int, pools *Pools) (*Port, error) {
	return nil, ErrNoDPDK
}

// ID returns 0.
func (p *Port) ID() uint16 { return 0 }

// Name returns "".
func (p *Port) Name() string { return "" }

// Driver returns "".
func (p *Port) Driver() string { return "" }

// Socket returns -1.
func (p *Port) Socket() int { return -1 }

// Queues returns zeros.
func (p *Port) Queues() (rx, tx int) { return 0, 0 }

// Descriptors returns zeros.
func (p *Port) Descriptors() (rx, tx int) { return 0, 0 }

// RxQueue returns a zero Queue.
func (p *Port) RxQueue(i int) Queue { return Queue{} }

// TxQueue returns a zero Queue.
func (p *Port) TxQueue(i int) Queue { return Queue{} }

// MAC returns ErrNoDPDK.
func (p *Port) MAC() ([6]byte, error) { return [6]byte{}, ErrNoDPDK }

// Link returns ErrNoDPDK.
func (p *Port) Link() (Link, error) { return Link{}, ErrNoDPDK }

// Stats returns ErrNoDPDK.
func (p *Port) Stats() (Stats, error) { return Stats{}, ErrNoDPDK }

// XStats returns ErrNoDPDK.
func (p *Port) XStats() ([]XStat, error) { return nil, ErrNoDPDK }

// Close returns ErrNoDPDK.
func (p *Port) Close() error { return ErrNoDPDK }

// Burst is one worker's packet I/O.
type Burst struct{}

// NewBurst returns ErrNoDPDK.
func (e *EAL) NewBurst(cfg BurstConfig) (*Burst, error) { return nil, ErrNoDPDK }

// Cycle returns nil.
func (b *Burst) Cycle(q Queue) []*Mbuf { return nil }

// Flush does nothing.
func (b *Burst) Flush() {}

// Send does nothing.
func (b *Burst) Send(tx int, m *Mbuf) {}

// SendBurst does nothing.
func (b *Burst) SendBurst(tx int, ms []*Mbuf) {}

// Drop does nothing.
func (b *Burst) Drop(m *Mbuf) {}

// Punt does nothing.
func (b *Burst) Punt(m *Mbuf) {}

// DropBurst does nothing.
func (b *Burst) DropBurst(ms []*Mbuf) {}

// PuntBurst does nothing.
func (b *Burst) PuntBurst(ms []*Mbuf) {}

// FreeBulk does nothing.
func (b *Burst) FreeBulk(ms []*Mbuf) {}

// Pending returns 0.
func (b *Burst) Pending(tx int) int { return 0 }

// Unsend does nothing.
func (b *Burst) Unsend(tx, n int) {}

// TakeInjected returns nil.
func (b *Burst) TakeInjected(tx, max int) []*Mbuf { return nil }

// Opts returns false, false.
func (b *Burst) Opts() (keepRefused, collectInject bool) { return false, false }

// Size returns 0.
func (b *Burst) Size() int { return 0 }

// InDPDKMemory returns true, as the DPDK build's does.
func (b *Burst) InDPDKMemory() bool { return true }

// Flushes returns 0.
func (b *Burst) Flushes() uint64 { return 0 }

// TSC returns 0.
func (b *Burst) TSC() uint64 { return 0 }

// Stats returns zeros.
func (b *Burst) Stats() BurstStats { return BurstStats{} }

// Close does nothing.
func (b *Burst) Close() {}

// Worker is a pinned, EAL-registered data-plane goroutine.
type Worker struct{}

// StartWorker returns ErrNoDPDK.
func (e *EAL) StartWorker(core int, fn func(w *Worker) error) (*Worker, error) {
	return nil, ErrNoDPDK
}

// Core returns -1.
func (w *Worker) Core() int { return -1 }

// Lcore returns -1.
func (w *Worker) Lcore() int { return -1 }

// Stopping returns true.
func (w *Worker) Stopping() bool { return true }

// Stop does nothing.
func (w *Worker) Stop() {}

// Done returns a closed channel.
func (w *Worker) Done() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Wait returns ErrNoDPDK.
func (w *Worker) Wait() error { return ErrNoDPDK }

// GMACEngine returns ErrNoGMAC: this build cannot reach intel-ipsec-mb.
func GMACEngine() (string, error) { return "", ErrNoGMAC }

// GMACKey is a hop key expanded by intel-ipsec-mb; without cgo there is
// none.
type GMACKey struct{}

// NewGMACKey returns ErrNoGMAC.
func NewGMACKey(key []byte) (*GMACKey, error) { return nil, ErrNoGMAC }

// GMACBatch is a worker's hop MAC jobs; without cgo there is none.
type GMACBatch struct{}

// NewGMACBatch returns ErrNoGMAC.
func NewGMACBatch(size int) (*GMACBatch, error) { return nil, ErrNoGMAC }

// Add panics: no GMACBatch exists in this build.
func (b *GMACBatch) Add(m *Mbuf, off, n uint16, k *GMACKey) { panic(ErrNoGMAC) }

// AddSign panics: no batch exists to add to.
func (b *GMACBatch) AddSign(m *Mbuf, off, n uint16, k *GMACKey, csum int, old, new uint64) {
	panic(ErrNoGMAC)
}

// SetChecksum panics: no batch exists to add to.
func (b *GMACBatch) SetChecksum(m *Mbuf, csum int, old, new uint64) { panic(ErrNoGMAC) }

// Len returns 0.
func (b *GMACBatch) Len() int { return 0 }

// Verify does nothing.
func (b *GMACBatch) Verify() {}

// OK returns false.
func (b *GMACBatch) OK(i int) bool { return false }

// Sign does nothing.
func (b *GMACBatch) Sign() {}

// Reset does nothing.
func (b *GMACBatch) Reset() {}
