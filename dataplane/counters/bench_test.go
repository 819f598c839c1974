package counters

import (
	"sync/atomic"
	"testing"
)

// BenchmarkRelayed is the per-packet cost of counting a relayed frame, with a
// Publish after every 32 frames as a worker does per burst; an op is one
// frame. The peer patterns: one flow, 32 distinct peer pairs per burst, and
// peers spread over 65536 slots (a cache miss per row on a busy relay).
func BenchmarkRelayed(b *testing.B) {
	const burst, peers = 32, 1 << 16
	for _, c := range []struct {
		name string
		peer func(i uint32) uint32
	}{
		{"peers=1", func(uint32) uint32 { return 5 }},
		{"peers=32", func(i uint32) uint32 { return i % 32 }},
		{"peers=64K", func(i uint32) uint32 { return (i * 2654435761) % peers }},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, _ := New(1, peers, 32, 2)
			core := s.Core(0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += burst {
				for j := range uint32(burst) {
					p := c.peer(uint32(i) + j)
					core.Relayed(p, p^1, 1500)
				}
				core.Received(0, burst, burst*1500)
				core.Sent(1, burst, burst*1500)
				core.Publish()
			}
		})
	}
}

// BenchmarkRelayedWithReader is BenchmarkRelayed (32 peers) while another
// goroutine sums all peers in a loop: the cost a control-core reader adds to
// a worker by pulling the published lines away from it.
func BenchmarkRelayedWithReader(b *testing.B) {
	const burst = 32
	s, _ := New(1, 1024, 32, 2)
	core := s.Core(0)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		var dst []Peer
		for !stop.Load() {
			dst = s.AllPeers(dst)
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += burst {
		for j := range uint32(burst) {
			p := (uint32(i) + j) % 32
			core.Relayed(p, p^1, 1500)
		}
		core.Publish()
	}
	b.StopTimer()
	stop.Store(true)
	<-done
}

// BenchmarkAllPeers is a control-core read of 65536 peer slots over 4 cores.
func BenchmarkAllPeers(b *testing.B) {
	s, _ := New(4, 1<<16, 32, 2)
	var dst []Peer
	b.ReportAllocs()
	for range b.N {
		dst = s.AllPeers(dst)
	}
}
